"""The MeshAgent REST API, defined once: every route with its verb, path, query, body and
answer (`ROUTES`), which the `Meshagent` client and the local server both use.

Covered so far: the deployment config, projects, members, profiles and settings documents,
rooms and volumes, service accounts, API keys and participant tokens.
"""

from . import access, accounts, agents, keys, rooms, sessions, storage
from . import billing, domains, feeds, files, llm, mailboxes, oauth, registries, secrets, services, tasks, webhooks
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

ROUTES = RouteTable([*accounts.ROUTES, *rooms.ROUTES, *keys.ROUTES, *access.ROUTES, *agents.ROUTES, *sessions.ROUTES, *storage.ROUTES, *services.ROUTES, *secrets.ROUTES, *domains.ROUTES, *feeds.ROUTES, *llm.ROUTES, *registries.ROUTES, *oauth.ROUTES, *mailboxes.ROUTES, *tasks.ROUTES, *webhooks.ROUTES, *billing.ROUTES, *files.ROUTES])

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
