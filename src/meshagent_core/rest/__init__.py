"""The MeshAgent REST API, defined once: every route with its verb, path, query, body and
answer (`ROUTES`), which the `Meshagent` client and the local server both use.

Every group of the official 0.56 client, and the seed documents' methods 0.56 lacks (room,
agent and agent-room grants, project/room/agent secrets, external OAuth registrations,
webhooks and shares); protocol/rest.md describes them. The Files API has its own table
(`files`), as it lives on another base URL.
"""

from . import access, accounts, agents, keys, rooms, sessions, storage
from . import billing, domains, feeds, files, llm, mailboxes, oauth, registries, secrets, services, tasks, webhooks
from . import external_oauth
from .answers import (
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    RestError,
    RoomDisabledError,
    ServerError,
    ValidationErrorResponse,
    error_for,
    read_answer,
)
from .routes import RestRequest, Route, RouteError, RouteTable, encode_query

ROUTES = RouteTable([*accounts.ROUTES, *rooms.ROUTES, *keys.ROUTES, *access.ROUTES, *agents.ROUTES, *sessions.ROUTES, *storage.ROUTES, *services.ROUTES, *secrets.ROUTES, *domains.ROUTES, *feeds.ROUTES, *llm.ROUTES, *registries.ROUTES, *oauth.ROUTES, *mailboxes.ROUTES, *tasks.ROUTES, *webhooks.ROUTES, *billing.ROUTES, *files.ROUTES, *external_oauth.ROUTES])

__all__ = [
    "ROUTES",
    "ConflictError",
    "NotFoundError",
    "PermissionDeniedError",
    "RestError",
    "RestRequest",
    "RoomDisabledError",
    "Route",
    "RouteError",
    "RouteTable",
    "ServerError",
    "ValidationErrorResponse",
    "encode_query",
    "error_for",
    "read_answer",
]
