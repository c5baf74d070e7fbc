"""A local room service: a spec whose container has a `command` and an empty `image` (the form a
ServiceHost advertises, and what `meshagent service run` runs) is run by the local server as a
child process for as long as the room's session lasts (protocol/webhooks.md §8).

One run:

1. The environment (`service_environment`) is made; a spec the server cannot honour (a `secret`
   variable, two `*` ports) fails here, with `last_start_error`, and is not retried until a
   `services.restart`.
2. `/bin/sh -c <command>` starts (a shell, so that a command line reads as it does in a
   terminal or a Dockerfile's shell form: quoting, `&&`, `$VARIABLES`), in its own process
   group (`supervisor`), in `container.working_dir` (relative to the room's storage folder)
   or else in the room's storage folder, the local stand-in for the container's `/data`.
3. `GET http://127.0.0.1:<port>/.well-known/meshagent-service.json` is polled (0.1 s doubling
   to 1 s, for `WELL_KNOWN_TIMEOUT` seconds in all) until it answers 200 with a ServiceSpec.
4. Each `meshagent` endpoint (of the stored spec; when it lists none, of the well-known answer)
   is called into the room: a signed `room.call` to `http://127.0.0.1:<port><path>`.
5. When the process exits, its status is recorded and it starts again after a back-off (0.5 s,
   doubling to 30 s; back to 0.5 s after a run of `STABLE_AFTER` seconds), so a service that
   crashes comes back and one that crashes at once does not spin. `services.restart` stops it
   (SIGTERM, then SIGKILL) and starts it at once.

Its stdout and stderr lines go to the room's developer log (`info`, with `extra.stream`) and
to the Python logger `meshagent_trio.server.services` (DEBUG); lifecycle lines too (INFO).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import msgspec
import trio

from meshagent_core.rest.service_spec import ContainerSpec, PortSpec, ServiceSpec, read_service_spec
from meshagent_core.toolkits.services import ServicePortRuntimeState
from meshagent_core.tokens import ApiScope

from ..signed_downloads import http_base_url
from .room_call import mint_call_token
from .service_calls import ServiceSession, call_endpoint, developer_log, lifecycle, log, meshagent_endpoints, service_claims
from .service_state import NORMAL, ServiceStatus
from .supervisor import STOP_GRACE, free_port, run_child

if TYPE_CHECKING:
    from ..rooms.room import Room

#: The path every ServiceHost answers with its spec.
WELL_KNOWN_PATH = "/.well-known/meshagent-service.json"
#: Seconds the well-known path has to answer after the process started.
WELL_KNOWN_TIMEOUT = 30.0
#: Largest well-known answer read.
MAX_WELL_KNOWN = 1024 * 1024
#: The first wait before a restart, and the longest.
RESTART_INITIAL = 0.5
RESTART_MAX = 30.0
#: Seconds a run must last for the next restart to wait `RESTART_INITIAL` again.
STABLE_AFTER = 60.0
#: The shell that runs `container.command`.
SHELL = "/bin/sh"

#: Variables of the server's own environment that a service does not inherit: the server's
#: credentials, and those the `agent` template sets (a service with template `none` must not
#: read the server's).
NOT_INHERITED = frozenset(
    {
        "MESHAGENT_API_KEY",
        "MESHAGENT_KEY_ID",
        "MESHAGENT_SECRET",
        "MESHAGENT_PROJECT_ID",
        "MESHAGENT_TOKEN",
        "MESHAGENT_ROOM",
        "MESHAGENT_ROOM_URL",
        "MESHAGENT_API_URL",
        "MESHAGENT_SESSION_ID",
        "MESHAGENT_WEBHOOK_SECRET",
        "MESHAGENT_PORT",
        "MESHAGENT_HOST",
    }
)


class ServiceConfigError(Exception):
    """The spec cannot be run by the local server as written."""


def is_local(container: ContainerSpec | None) -> bool:
    """Whether the local server runs this container itself (a command, no image)."""
    return container is not None and not container.image and bool(container.command)


@dataclass(frozen=True)
class PortPlan:
    """The ports of one run: the spec's (or one for a spec without ports), numbers assigned."""

    primary: int  # MESHAGENT_PORT
    ports: list[tuple[PortSpec | None, int]]

    def number(self, num: Any) -> int:
        """A port number of a spec: `*` is the primary port."""
        return self.primary if num == "*" else int(num)


def plan_ports(spec: ServiceSpec) -> PortPlan:
    ports = spec.ports or []
    if sum(port.num == "*" for port in ports) > 1:
        raise ServiceConfigError("a local service may have one port with num '*' (it learns its number from MESHAGENT_PORT), not several")
    if not ports:
        port = free_port()
        return PortPlan(port, [(None, port)])
    numbers = [(port, free_port() if port.num == "*" else int(port.num)) for port in ports]
    return PortPlan(numbers[0][1], numbers)


def working_dir(room: "Room", container: ContainerSpec) -> Path:
    storage = room.storage_dir
    if not container.working_dir:
        return storage
    path = storage / container.working_dir  # an absolute working_dir stays as it is
    if not path.is_dir():
        raise ServiceConfigError(f"container.working_dir {container.working_dir!r} is not a directory ({path})")
    return path


def service_environment(session: ServiceSession, spec: ServiceSpec, ports: PortPlan, base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a local service: the server's (without `NOT_INHERITED`), the port and
    webhook secret, the `agent` template's MeshAgent variables (unless the template is `none`),
    then the spec's variables, which win. `ServiceConfigError` for a `secret` variable."""
    room = session.room
    container = spec.container
    assert container is not None
    env = {name: value for name, value in (os.environ if base is None else base).items() if name not in NOT_INHERITED}
    env["MESHAGENT_PORT"] = str(ports.primary)
    env["MESHAGENT_HOST"] = "127.0.0.1"  # a local service is not reachable from other machines
    if session.secret:
        env["MESHAGENT_WEBHOOK_SECRET"] = session.secret
    claims = service_claims(spec)
    if container.template != "none":
        env["MESHAGENT_ROOM"] = room.name
        # A base, as the official clients read it: they append /rooms/<name> themselves.
        env["MESHAGENT_ROOM_URL"] = room.config.room_url(room.name).rsplit("/rooms/", 1)[0]
        env["MESHAGENT_API_URL"] = http_base_url(room.config)
        env["MESHAGENT_PROJECT_ID"] = room.project_id
        env["MESHAGENT_TOKEN"] = mint_call_token(room, spec.metadata.name, None, claims=claims)
        if session.session_id:
            env["MESHAGENT_SESSION_ID"] = session.session_id
    for index, variable in enumerate(container.environment or ()):
        if variable.secret is not None:
            raise ServiceConfigError(
                f"container.environment[{index}] ({variable.name}) takes secret {variable.secret.id!r}: the local server does not provide secrets to services"
            )
        if variable.token is not None:
            wanted = variable.token
            role = wanted.role or "agent"
            if wanted.api is not None:
                api = ApiScope.from_json(wanted.api)
            else:
                api = ApiScope.user_default() if role == "user" else ApiScope.agent_default()
            env[variable.name] = mint_call_token(room, wanted.identity, api, role=role, claims=claims)
        elif variable.value is not None:
            env[variable.name] = variable.value
    return env


class LocalService:
    """Runs one local service for one room session: `run` until cancelled."""

    def __init__(self, session: ServiceSession, spec: ServiceSpec, status: ServiceStatus) -> None:
        self.session = session
        self.spec = spec
        self.status = status
        self.stop_grace = STOP_GRACE
        self._run_scope: trio.CancelScope | None = None
        self._restart_now = False
        self._wake = trio.Event()
        self._next_run = trio.Event()  # set when the next run begins

    async def restart(self) -> None:
        """Stop the process now (if it runs) and start it again without waiting; returns once
        the old process is gone and the new run has begun (at most `stop_grace` + 5 s later)."""
        next_run = self._next_run
        self._restart_now = True
        if self._run_scope is not None:
            self._run_scope.cancel()
        self._wake.set()
        with trio.move_on_after(self.stop_grace + 5.0):
            await next_run.wait()

    async def run(self) -> None:
        backoff = RESTART_INITIAL
        while True:
            began = trio.current_time()
            runnable = True
            with trio.CancelScope() as self._run_scope:
                try:
                    runnable = await self._run_once()
                except Exception as error:  # a bug here must not take the room's other services down
                    log.exception("room %s: service %s failed", self.session.room.name, self.spec.metadata.name)
                    self.status.start_failed(f"the supervisor failed: {type(error).__name__}: {error}", state="failed")
            self._run_scope = None
            if self._restart_now:
                backoff = RESTART_INITIAL
                self.status.event(NORMAL, "Restarting", "restart requested")
                lifecycle(self.session, self.spec, "info", "restarting (requested)")
            elif not runnable:  # it cannot run as specified: wait for a restart request
                await self._wake.wait()
                backoff = RESTART_INITIAL
            else:
                if trio.current_time() - began >= STABLE_AFTER:
                    backoff = RESTART_INITIAL
                self.status.state = "restarting"
                self.status.restart_scheduled_at = time.time() + backoff
                self.status.event(NORMAL, "BackOff", f"restarting in {backoff:g} s")
                with trio.move_on_after(backoff):
                    await self._wake.wait()  # a restart request ends the wait
                backoff = min(backoff * 2, RESTART_MAX)
            self._restart_now = False
            self._wake = trio.Event()
            self.status.restart_count += 1
            self._next_run.set()
            self._next_run = trio.Event()

    async def _run_once(self) -> bool:
        """One run of the process; False when it could not be started as specified."""
        session, spec, status = self.session, self.spec, self.status
        container = spec.container
        assert container is not None and container.command
        try:
            ports = plan_ports(spec)
            env = service_environment(session, spec, ports)
            cwd = working_dir(session.room, container)
        except (ServiceConfigError, ValueError) as error:
            status.start_failed(str(error), state="failed")
            lifecycle(session, spec, "error", f"cannot start: {error}")
            return False
        status.ports = [
            ServicePortRuntimeState(num=number, liveness=port.liveness if port else None, liveness_status="not_ready" if port and port.liveness else "not_configured")
            for port, number in ports.ports
        ]
        exit_code: list[int] = []

        async def child(task_status: trio.TaskStatus[trio.Process]) -> None:
            exit_code.append(
                await run_child([SHELL, "-c", container.command or ""], cwd=cwd, env=env, on_output=self._output, stop_grace=self.stop_grace, task_status=task_status)
            )
            nursery.cancel_scope.cancel()  # the hand-off ends with the process

        async with trio.open_nursery() as nursery:
            try:
                process = await nursery.start(child)
            except OSError as error:
                status.start_failed(f"could not start {container.command!r}: {error.strerror or error}", state="failed")
                lifecycle(session, spec, "error", f"could not start {container.command!r}: {error}")
                return True  # retried after the back-off (a missing directory may appear)
            status.process_started(process.pid)
            lifecycle(session, spec, "info", f"started process {process.pid} on port {ports.primary}: {container.command}")
            nursery.start_soon(self._hand_off, ports)
        if exit_code:
            status.process_exited(exit_code[0])
            lifecycle(session, spec, "info" if exit_code[0] == 0 else "warning", f"process exited with status {exit_code[0]}")
        return True

    def _output(self, stream: str, line: str) -> None:
        developer_log(self.session.room, "info", self.spec, line, stream=stream, pid=self.status.container_id)
        log.debug("room %s: service %s [%s]: %s", self.session.room.name, self.spec.metadata.name, stream, line)

    async def _hand_off(self, ports: PortPlan) -> None:
        """Wait for the well-known answer, check liveness, call the endpoints into the room."""
        try:
            await self._hand_off_steps(ports)
        except Exception as error:  # recorded; the process runs on
            log.exception("room %s: the hand-off of service %s failed", self.session.room.name, self.spec.metadata.name)
            self.status.start_failed(f"the hand-off failed: {type(error).__name__}: {error}")

    async def _hand_off_steps(self, ports: PortPlan) -> None:
        session, spec, status = self.session, self.spec, self.status
        endpoints = meshagent_endpoints(spec.ports)
        advertised = await self._well_known(ports.primary)
        if advertised is None:
            message = f"GET {WELL_KNOWN_PATH} on port {ports.primary} did not answer within {WELL_KNOWN_TIMEOUT:g} s"
            if endpoints:
                status.start_failed(message + "; its endpoints were not called into the room")
                lifecycle(session, spec, "warning", message)
            else:
                status.event(NORMAL, "NoEndpoints", message + "; nothing was called into the room")
            status.state = "running"
            return
        await self._check_liveness(ports)
        if not endpoints:
            endpoints = meshagent_endpoints(advertised.ports)
        for port, endpoint in endpoints:
            assert endpoint.meshagent is not None
            url = f"http://127.0.0.1:{ports.number(port.num)}{endpoint.path}"
            await call_endpoint(session, spec, status, identity=endpoint.meshagent.identity, url=url, api=endpoint.meshagent.api)
        status.state = "running"

    async def _well_known(self, port: int) -> ServiceSpec | None:
        url = f"http://127.0.0.1:{port}{WELL_KNOWN_PATH}"
        delay = 0.1
        with trio.move_on_after(WELL_KNOWN_TIMEOUT):
            async with httpx.AsyncClient(timeout=2.0, trust_env=False) as client:
                while True:
                    try:
                        response = await client.get(url)
                    except httpx.HTTPError:
                        response = None
                    if response is not None and response.status_code == 200 and len(response.content) <= MAX_WELL_KNOWN:
                        try:
                            return read_service_spec(msgspec.json.decode(response.content))
                        except (msgspec.DecodeError, ValueError) as error:
                            self.status.event(NORMAL, "BadWellKnown", f"{WELL_KNOWN_PATH} is not a ServiceSpec: {error}")
                    await trio.sleep(delay)
                    delay = min(delay * 2, 1.0)
        return None

    async def _check_liveness(self, ports: PortPlan) -> None:
        async with httpx.AsyncClient(timeout=2.0, trust_env=False) as client:
            for state in self.status.ports:
                if not state.liveness:
                    continue
                try:
                    response = await client.get(f"http://127.0.0.1:{state.num}/{state.liveness.lstrip('/')}")
                    ready, error = response.status_code == 200, None if response.status_code == 200 else f"status {response.status_code}"
                except httpx.HTTPError as failure:
                    ready, error = False, str(failure) or type(failure).__name__
                state.liveness_status = "ready" if ready else "not_ready"
                state.last_checked_at = time.time()
                state.last_error = error


__all__ = ["LocalService", "PortPlan", "ServiceConfigError", "WELL_KNOWN_PATH", "is_local", "plan_ports", "service_environment"]
