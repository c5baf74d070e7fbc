"""Every REST handler of the local server, by route name (`HANDLERS`). A handler takes the
context, the route's keyword arguments and the caller, and returns the answer (a model, JSON,
or None for `{}`); refusals are `ControlError`s (404, 409, …). Routes without a handler answer
501 naming the method."""

from __future__ import annotations

from . import access, accounts, agents, keys, projects, rooms, sessions, storage
from . import billing, domains, feeds, files, llm, mailboxes, oauth, registries, secrets, services, tasks, webhooks
from . import external_oauth
from .context import Handler

HANDLERS: dict[str, Handler] = {}
for _group in (projects, rooms, accounts, keys, access, agents, sessions, storage, services, secrets, domains, feeds, llm, registries, oauth, mailboxes, tasks, webhooks, billing, files, external_oauth):
    for _name, _handler in _group.HANDLERS.items():
        if _name in HANDLERS:
            raise RuntimeError(f"two handlers for the REST route {_name!r}")
        HANDLERS[_name] = _handler

__all__ = ["HANDLERS"]
