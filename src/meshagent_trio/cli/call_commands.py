"""`meshagent-trio call` (and `room agents call`): send a `room.call` to a URL, as the official
CLI does, so that the agent, tool, toolkit or schema served there joins the room.

A local URL (loopback or a private network, as the official CLI decides; `--local/--no-local`
overrides) gets the webhook straight from here, with a participant token minted here (the
official `send_webhook` form, unsigned). Any other URL is called by the room: the command joins
it and sends `room.call`, and the server mints the token and signs the webhook."""

from __future__ import annotations

import ipaddress
import os
import sys
from typing import Annotated, Any, Optional

import typer

from .common import ProjectIdOption, RoomOption, example, group, parse_json_option, require_room, room_session, run

#: The official CLI's private networks: a URL on one of them (or on loopback) is local.
PRIVATE_NETS = tuple(
    ipaddress.ip_network(net) for net in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16", "fc00::/7", "fe80::/10")
)
KINDS = ("tool", "agent", "toolkit", "schema")


def is_local_url(url: str) -> bool:
    """Whether `url` is on this machine or a private network (the official rule)."""
    import socket
    from urllib.parse import urlsplit

    hostname = urlsplit(url).hostname
    if hostname in (None, "localhost"):
        return True
    try:
        addresses = socket.getaddrinfo(hostname, None)
    except (socket.gaierror, UnicodeError):
        return False
    for *_, sockaddr in addresses:
        ip = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if ip.is_loopback or any(ip in net for net in PRIVATE_NETS):
            return True
    return False


def call_into_room(
    kind: str,
    *,
    project_id: Optional[str],
    room: Optional[str],
    role: str,
    local: Optional[bool],
    participant_name: Optional[str],
    url: Optional[str],
    arguments: str,
    permissions: Optional[str],
    key: Optional[str],
) -> None:
    from urllib.parse import urlsplit

    from .token_commands import read_token_spec

    name = require_room(room)
    if not participant_name:
        raise typer.BadParameter("the name the callee joins as is needed", param_hint="--participant-name")
    if not url or urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).hostname:
        raise typer.BadParameter("an http:// or https:// URL is needed", param_hint="--url")
    values = parse_json_option(arguments, "--arguments")
    if not isinstance(values, dict):
        raise typer.BadParameter("the arguments of a call are a JSON object", param_hint="--arguments")
    spec = read_token_spec(permissions, "--permissions") if permissions is not None else None
    if local is None:
        local = is_local_url(url)

    async def direct() -> None:
        import msgspec

        from meshagent_core.client.room import websocket_room_url
        from meshagent_core.client.webhook_send import send_webhook
        from meshagent_core.tokens import ApiScope
        from meshagent_core.webhooks import CallEvent

        from .common import mint_token

        token = os.environ.get("MESHAGENT_TOKEN") if os.environ.get("MESHAGENT_ROOM") in (None, "", name) else None
        if not token:
            token = mint_token(
                name=spec.identity if spec else participant_name,
                room=name,
                role=role,
                api=spec.api if spec else ApiScope.agent_default(),
                key=key,
                project_id=project_id,
            )
        event = CallEvent(room_name=name, room_url=websocket_room_url(room_name=name), token=token, arguments=values)
        await send_webhook(url=url, event=CallEvent.name, data=msgspec.to_builtins(event), secret=None)

    async def through_room() -> None:
        async with room_session(name) as client:
            await client.agents.make_call(name=participant_name, url=url, arguments=values, api=spec.api if spec else None)

    run(direct if local else through_room)
    print(f"room.call sent to {url} for {participant_name} ({kind})", file=sys.stderr)


def _command(kind: str) -> Any:
    def make_call(
        project_id: ProjectIdOption = None,
        room: RoomOption = None,
        role: Annotated[str, typer.Option(help="The role of the callee's token (local calls).")] = "agent",
        local: Annotated[
            Optional[bool], typer.Option("--local/--no-local", help="Send the webhook from here (default: when the URL is local).")
        ] = None,
        participant_name: Annotated[Optional[str], typer.Option(help="The participant name the callee joins as.")] = None,
        url: Annotated[Optional[str], typer.Option(help="The URL to call.")] = None,
        arguments: Annotated[str, typer.Option(help="JSON object of arguments for the call.")] = "{}",
        permissions: Annotated[
            Optional[str],
            typer.Option("--permissions", "-p", help="A token spec (YAML) for the callee; default: the agent default scope."),
        ] = None,
        key: Annotated[Optional[str], typer.Option("--key", help="An API key to sign the token with.")] = None,
    ) -> None:
        call_into_room(
            kind,
            project_id=project_id,
            room=room,
            role=role,
            local=local,
            participant_name=participant_name,
            url=url,
            arguments=arguments,
            permissions=permissions,
            key=key,
        )

    make_call.__doc__ = f"Send a room.call request to a {kind} webhook URL."
    make_call.__name__ = f"call_{kind}"
    return make_call


def build_call_app(prefix: str) -> typer.Typer:
    """The `tool|agent|toolkit|schema` commands, with examples under `prefix` (`call`,
    `room agents call`)."""
    calls = group("Trigger agent/tool calls in a room.")
    for kind in KINDS:
        epilog = example(
            f"meshagent-trio {prefix} {kind} --room lobby --participant-name helper --url http://127.0.0.1:8080/{kind}",
            f"meshagent-trio {prefix} {kind} --room lobby --participant-name helper --url https://example.com/{kind} --arguments '{{\"topic\": \"x\"}}'",
        )
        calls.command(kind, epilog=epilog)(_command(kind))
    return calls


app = build_call_app("call")
