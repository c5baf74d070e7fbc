"""What every tool of the `dataset` toolkit shares: the toolkit object, the room's store, the
caller's grant (protocol/room-apis.md §14.1) and the stream rules.

Grants (`DatasetGrant` of the caller's `api` scope; no `dataset` grant at all is 1001): a
table grant's `read` covers `inspect`, `search`, `count`, `watch_table`, `list_versions`,
`list_indexes`, `stats` and the tables a SQL query reads; `write` covers `insert`, `merge`,
`update`, `delete` and the target of a SQL statement; `alter` covers `create_table`,
`drop_table`, `rename_table` (both names), `add_columns`, `drop_columns`, `create_index`,
`drop_index`, `optimize` and `restore`. `list_tables` and `list_branches` need the grant's
`list_tables` (and list only tables the caller can access); `create_branch` and
`delete_branch` change every table of a namespace, so they need a grant without a table list.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, TypeVar

import msgspec
import trio

from meshagent_core import BinaryContent, Content, JsonContent
from meshagent_core.tokens.grants import DatasetGrant
from meshagent_core.toolkits.arrow_ipc import ARROW_STREAM

from ..toolkit import Toolkit, ToolCall, invalid_request, permission_denied
from .data_streams import StreamRules
from .dataset_store import DatasetStore, show_table

T = TypeVar("T")

toolkit = Toolkit("dataset")

#: The folder of a room's data dir that holds its datasets.
DATASETS_FOLDER = "datasets"


def dataset_pull(chunk: Content) -> int | None:
    """A caller's pull in a read stream: `binary` (or `json`) `{"kind": "pull", "chunk_size"?}`."""
    headers = chunk.headers if isinstance(chunk, BinaryContent) else chunk.json if isinstance(chunk, JsonContent) else None
    if not isinstance(headers, dict) or headers.get("kind") != "pull" or set(headers) - {"kind", "chunk_size"}:
        raise invalid_request(f"expected a pull chunk {{kind: pull}}, got {getattr(chunk, 'type', type(chunk).__name__)} {headers!r}"[:300])
    size = headers.get("chunk_size")
    return size if isinstance(size, int) and not isinstance(size, bool) and size > 0 else None


RULES = StreamRules(
    toolkit="dataset",
    read_pull=dataset_pull,
    data_headers={"kind": "data", "content_type": ARROW_STREAM},
)


class DatasetState:
    """A room's dataset store, prepared in a worker thread on first use."""

    def __init__(self, room: Any) -> None:
        self.store = DatasetStore(Path(room.data_dir) / DATASETS_FOLDER)
        self._ready = False

    async def get(self) -> DatasetStore:
        if not self._ready:
            await trio.to_thread.run_sync(self.store.prepare)
            self._ready = True
        return self.store


async def store_of(call: ToolCall) -> DatasetStore:
    state: DatasetState = call.room.toolkit_state("dataset", DatasetState)
    return await state.get()


async def run(function: Callable[..., T], *args: Any) -> T:
    """Blocking work (Lance, DuckDB, files) in a worker thread."""
    return await trio.to_thread.run_sync(function, *args)


def grant_of(call: ToolCall) -> DatasetGrant:
    grant = call.scope.dataset if call.scope is not None else None
    if grant is None:
        raise permission_denied("the token does not grant the dataset API")
    return grant


def _namespace(namespace: tuple[str, ...]) -> list[str] | None:
    return list(namespace) if namespace else None


def allows(grant: DatasetGrant, action: str, namespace: tuple[str, ...], table: str) -> bool:
    check = {"read": grant.can_read, "write": grant.can_write, "alter": grant.can_alter, "access": grant.can_access}[action]
    return check(table, namespace=_namespace(namespace))


def require(grant: DatasetGrant, action: str, namespace: tuple[str, ...], table: str) -> None:
    if not allows(grant, action, namespace, table):
        raise permission_denied(f"you do not have permission to {action} table {show_table(namespace, table)!r}")


def authorizer(grant: DatasetGrant, action: str) -> Callable[[tuple[str, ...], str], None]:
    return lambda namespace, table: require(grant, action, namespace, table)


def require_listing(grant: DatasetGrant) -> None:
    if not grant.list_tables:
        raise permission_denied("you do not have permission to list tables")


def require_every_table(grant: DatasetGrant, what: str) -> None:
    if grant.tables is not None:
        raise permission_denied(f"you do not have permission to {what}: it changes every table of the namespace")


def json_answer(value: msgspec.Struct) -> JsonContent:
    return JsonContent(json=msgspec.to_builtins(value))


__all__ = [
    "DATASETS_FOLDER",
    "RULES",
    "DatasetState",
    "allows",
    "authorizer",
    "dataset_pull",
    "grant_of",
    "json_answer",
    "require",
    "require_every_table",
    "require_listing",
    "run",
    "store_of",
    "toolkit",
]
