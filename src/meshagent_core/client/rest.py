"""`Meshagent`: the MeshAgent REST client, written once for Trio and asyncio and exported by both
adapters. It speaks to `https://` servers (the cloud) through httpx, and to plain-HTTP servers
(the local one) through the lean keep-alive client of `http11`, which costs half the CPU per
call; an `http=` httpx client of the caller's (proxies, custom TLS, mocks) is used for both.

Its methods are made from the route table (`meshagent_core.rest.ROUTES`): each route's official
name, with the route's arguments as keyword arguments, sends the request the official 0.56
client sends and reads the answer as it does (`read_answer`: typed errors by status, the
answer's model). The few official methods that are conveniences over a route (`list_rooms`,
`get_users_in_project`, the settings documents by name, profiles with or without a project) are
written out below.

    async with Meshagent() as api:           # MESHAGENT_API_URL and MESHAGENT_API_KEY, read now
        room = await api.create_room(project_id=project, name="lobby", if_not_exists=True)
        info = await api.connect_room(project_id=project, room="lobby")

Unlike the official client, `base_url` and `token` fall back to the environment when the client
is created, not when the module is imported. Requests that are safe to repeat (GET, PUT,
DELETE) are retried on connection errors, `retries` times; every request has a `timeout`
(seconds, for the whole call).
"""

from __future__ import annotations

import inspect
import os
from urllib.parse import quote, urlencode, urlsplit
from typing import Any, Literal

import msgspec

from ..errors import ConnectionLost
from ..rest import ROUTES, RestRequest, Route, read_answer
from ..rest.accounts import SETTINGS_DOCUMENTS
from ..rest.models import Room
from .http11 import Http11Pool, TransportFailed
from .rest_access import AccessMethods
from .rest_services import ServicesMethods
from .rest_secrets import SecretsMethods
from .rest_domains import DomainsMethods
from .rest_feeds import FeedsMethods
from .rest_llm import LlmMethods
from .rest_registries import RegistriesMethods
from .rest_oauth import OauthMethods
from .rest_mailboxes import MailboxesMethods
from .rest_tasks import TasksMethods
from .rest_webhooks import WebhooksMethods
from .rest_billing import BillingMethods
from .rest_files import FilesMethods
from .rest_agents import AgentMethods
from .rest_keys import KeyMethods
from .rest_sessions import SessionMethods
from .rest_storage import StorageMethods
from .room import meshagent_base_url

MeshagentConsistency = Literal["fast", "high"]
CONSISTENCY_HEADER = "Consistency"
IDEMPOTENT_VERBS = frozenset({"GET", "PUT", "DELETE"})


def normalize_consistency(value: str) -> MeshagentConsistency:
    normalized = value.strip().lower()
    if normalized not in ("fast", "high"):
        raise ValueError(f"consistency must be 'fast' or 'high', not {value!r}")
    return normalized  # type: ignore[return-value]


class Meshagent(AccessMethods, AgentMethods, KeyMethods, SessionMethods, StorageMethods, ServicesMethods, SecretsMethods, DomainsMethods, FeedsMethods, LlmMethods, RegistriesMethods, OauthMethods, MailboxesMethods, TasksMethods, WebhooksMethods, BillingMethods, FilesMethods):
    """The MeshAgent REST API (see the module docstring)."""

    def __init__(
        self,
        *,
        base_url: str | None = None,
        token: str | None = None,
        consistency: str = "fast",
        timeout: float = 30.0,
        retries: int = 2,
        http: Any = None,
    ) -> None:
        import httpx

        self.base_url = meshagent_base_url(base_url)
        self.token = token if token is not None else os.environ.get("MESHAGENT_API_KEY")
        self.consistency = normalize_consistency(consistency)
        self.retries = retries
        self.timeout = timeout
        self._own_http = http is None
        parts = urlsplit(self.base_url)
        #: plain HTTP without a client of the caller's: the lean pool (see `http11`)
        self._pool = Http11Pool() if http is None and parts.scheme == "http" else None
        self._origin = (parts.hostname or "localhost", parts.port or 80, parts.path.rstrip("/"))
        self._http = http if http is not None or self._pool is not None else httpx.AsyncClient(timeout=timeout)
        self._transport_errors: tuple[type[BaseException], ...] = (httpx.TransportError, TransportFailed)

    async def __aenter__(self) -> "Meshagent":
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.close()

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.aclose()
        elif self._own_http:
            await self._http.aclose()

    def _headers(self, route: Route, content_type: str = "application/json") -> dict[str, str]:
        headers = {"Content-Type": content_type, CONSISTENCY_HEADER: self.consistency}
        if route.auth:
            headers["Authorization"] = f"Bearer {self.token}"
        return headers

    async def call(self, route_name: str, /, **arguments: Any) -> Any:
        """Call the route named `route_name` with its keyword arguments."""
        route = ROUTES[route_name]
        request = route.build(**arguments)
        url = self.base_url + request.path
        attempt = 0
        while True:
            try:
                status, content = await self._send(request, {**self._headers(route, request.content_type), **dict(request.headers)})
            except self._transport_errors as error:
                if request.verb in IDEMPOTENT_VERBS and attempt < self.retries:
                    attempt += 1
                    continue
                raise ConnectionLost(f"{request.verb} {url}: {error or type(error).__name__}") from None
            return read_answer(route, status, content)

    async def _send(self, request: RestRequest, headers: dict[str, str]) -> tuple[int, bytes]:
        if self._pool is None:
            response = await self._http.request(request.verb, self.base_url + request.path, params=request.query or None, content=request.body, headers=headers)
            return response.status_code, response.content
        host, port, prefix = self._origin
        target = prefix + request.path + ("?" + urlencode(request.query, quote_via=quote) if request.query else "")
        encoded = [(name.encode(), value.encode()) for name, value in headers.items()]
        return await self._pool.request(request.verb, host, port, target, encoded, request.body, timeout=self.timeout)

    # --- the official conveniences over a route -----------------------------------------------

    async def list_rooms(self, *, project_id: str, **query: Any) -> list[Room]:
        """The rooms of one page (`list_rooms_page(...).rooms`)."""
        return (await self.call("list_rooms_page", project_id=project_id, **query)).rooms

    async def get_users_in_project(self, project_id: str, *, view: str = "merged") -> dict[str, Any]:
        """The first page of the project's users, as JSON."""
        page = await self.call("get_users_in_project_page", project_id=project_id, view=view)
        return msgspec.to_builtins(page)

    async def get_project_settings_document(self, project_id: str, name: str) -> dict[str, Any] | None:
        return await self.call("get_project_settings_document", project_id=project_id, document=_settings_path(name))

    async def set_project_settings_document(self, project_id: str, name: str, document: dict[str, Any]) -> Any:
        return await self.call(
            "set_project_settings_document", project_id=project_id, document=_settings_path(name), document_body=document
        )

    async def delete_project_settings_document(self, project_id: str, name: str) -> Any:
        return await self.call("delete_project_settings_document", project_id=project_id, document=_settings_path(name))

    async def get_user_profile(self, user_id: str, *, project_id: str | None = None, view: str = "merged") -> Any:
        if project_id is None:
            if view == "project":
                raise ValueError("project_id is required for the project view")
            return await self.call("get_user_profile", user_id=user_id)
        return await self.call("get_project_user_profile", project_id=project_id, user_id=user_id, view=view)

    async def update_user_profile(self, user_id: str, *, project_id: str | None = None, inherit: list[str] | None = None, **fields: Any) -> Any:
        if project_id is None:
            if inherit is not None:
                raise ValueError("inherit needs a project_id")
            return await self.call("update_user_profile", user_id=user_id, **fields)
        return await self.call("update_project_user_profile", project_id=project_id, user_id=user_id, inherit=inherit, **fields)


def _settings_path(name: str) -> str:
    try:
        return SETTINGS_DOCUMENTS[name]
    except KeyError:
        raise ValueError(f"unknown settings document {name!r} (one of {', '.join(SETTINGS_DOCUMENTS)})") from None


def _route_method(name: str, route: Route) -> Any:
    async def method(self: Meshagent, **arguments: Any) -> Any:
        return await self.call(name, **arguments)

    parameters = [inspect.Parameter(argument, inspect.Parameter.KEYWORD_ONLY) for argument in route.arguments]
    method.__signature__ = inspect.Signature([inspect.Parameter("self", inspect.Parameter.POSITIONAL_ONLY), *parameters])  # type: ignore[attr-defined]
    method.__name__ = method.__qualname__ = name
    method.__doc__ = f"`{route.verb} {route.path}`"
    return method


for _name, _route in ROUTES.routes.items():
    if not hasattr(Meshagent, _name):
        setattr(Meshagent, _name, _route_method(_name, _route))


__all__ = ["CONSISTENCY_HEADER", "Meshagent", "MeshagentConsistency", "normalize_consistency"]
