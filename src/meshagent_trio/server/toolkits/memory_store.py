"""Where a room's memories live and what they are made of (protocol/room-apis.md §15.1).

Everything here blocks (files, Lance): the toolkit calls it in worker threads, holding the
memory's lock for anything that writes.

Layout under the room's data dir (names checked by `check_name`; namespace segments may not
start with `_`, so they never meet the folders of a namespace):

    memories/<segment>/…/_memories/<name>/
        memory.json            the marker: name, namespace, a random id, created_at
        entity.lance           the entities (nodes), keyed by `entity_id`
        relationship.lance     the relationships (edges), keyed by (source, target, type)
        <table>.lance          the tables of `upsert_table`
        _sources.lance         what was ingested (source id, content hash, entity ids)
    memories/…/_memories/.staging-<random>/   a memory being created, renamed into place
    memories/…/_memories/.drop-<random>/      a dropped memory whose files are going

A memory exists once its marker exists; `create` writes the folder under a staging name and
renames it, so a crash leaves no half-made memory (and `drop` renames it away before removing
its files). Datasets appear on first write: an empty memory has none, and `query` says
"dataset 'entity' not found", the text the official memories tools look for. The random id of
the marker changes when a memory is dropped and made again, so a cached graph of the old one is
never mistaken for the new one.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import cache
from pathlib import Path
from typing import Any

from meshagent_core import ErrorCode, RoomException
from meshagent_core.toolkits.memory import MemoryDatasetSummary, MemoryDetails

#: The folder of a room's data dir that holds its memories.
MEMORIES_FOLDER = "memories"
MEMORY_FOLDER = "_memories"
MARKER = "memory.json"
ENTITY = "entity"
RELATIONSHIP = "relationship"
SOURCES = "_sources"
#: Table names `upsert_table` may not use: the graph's own datasets.
RESERVED_TABLES = frozenset({ENTITY, RELATIONSHIP})
MAX_NAME = 128
MAX_TABLE_NAME = 64
MAX_NAMESPACE_DEPTH = 16
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
#: Table names double as graph labels, so they are identifiers.
_TABLE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_LANCE_SOURCE = re.compile(r",?\s*/\S+?\.rs:\d+:\d+")

PERMISSION_DENIED = "you do not have permission to perform the requested action"


def invalid(message: str) -> RoomException:
    return RoomException(message, code=ErrorCode.INVALID_REQUEST)


def lance_error(what: str, error: BaseException) -> RoomException:
    """A Lance or Arrow failure as the caller's error (1002), without Rust source locations."""
    text = _LANCE_SOURCE.sub("", str(error)).strip()
    text = re.sub(r"^(Invalid user input:\s*)+", "", text)
    return invalid(f"{what}: {text}" if text else what)


def lance_module() -> Any:
    import lance

    return lance


def now_iso() -> str:
    """The current time, ISO 8601 in UTC with `Z` (how memory records carry times)."""
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")


def check_name(name: Any, what: str = "memory name") -> str:
    """A memory name or namespace segment: 1–128 letters, digits, `_`, `-`, `.`, starting with
    a letter or digit."""
    if not isinstance(name, str) or not name.strip():
        raise invalid(f"{what} must not be empty")
    name = name.strip()
    if len(name) > MAX_NAME or not _NAME.match(name):
        raise invalid(f"invalid {what} {name!r}: use up to {MAX_NAME} letters, digits, '_', '-' and '.', starting with a letter or digit")
    return name


def check_table_name(name: Any) -> str:
    """A table of `upsert_table`: an identifier (it is the table's graph label), not `entity`
    or `relationship`."""
    if not isinstance(name, str) or not _TABLE_NAME.match(name) or len(name) > MAX_TABLE_NAME:
        raise invalid(f"invalid table name {name!r}: use up to {MAX_TABLE_NAME} letters, digits and '_', starting with a letter")
    if name.lower() in RESERVED_TABLES:
        raise invalid(f"table name {name!r} is reserved for the memory's graph: upsert entities with upsert_nodes and relationships with upsert_relationships")
    return name


def check_namespace(namespace: list[str] | None) -> tuple[str, ...]:
    if not namespace:
        return ()
    if len(namespace) > MAX_NAMESPACE_DEPTH:
        raise invalid(f"a namespace has at most {MAX_NAMESPACE_DEPTH} segments")
    return tuple(check_name(segment, "namespace segment") for segment in namespace)


@dataclass(frozen=True)
class MemoryRef:
    """A memory: its namespace and name."""

    namespace: tuple[str, ...]
    name: str

    @classmethod
    def of(cls, name: Any, namespace: list[str] | None) -> "MemoryRef":
        return cls(check_namespace(namespace), check_name(name))

    @property
    def show(self) -> str:
        """How errors name the memory: `team/notes`."""
        return "/".join((*self.namespace, self.name))

    @property
    def namespace_list(self) -> list[str] | None:
        return list(self.namespace) if self.namespace else None


def memory_not_found(ref: MemoryRef) -> RoomException:
    return RoomException(f"memory does not exist: {ref.show}", code=ErrorCode.MEMORY_NOT_FOUND)


def memory_exists(ref: MemoryRef) -> RoomException:
    return RoomException(f"memory already exists: {ref.show}", code=ErrorCode.MEMORY_ALREADY_EXISTS)


# --- schemas (pyarrow is imported on first use) ------------------------------------------------


@cache
def entity_schema() -> Any:
    import pyarrow as pa

    return pa.schema(
        [
            pa.field("entity_id", pa.string(), nullable=False),
            pa.field("name", pa.string(), nullable=False),
            pa.field("entity_type", pa.string()),
            pa.field("context", pa.string()),
            pa.field("confidence", pa.float64()),
            pa.field("created_at", pa.string()),
            pa.field("valid_at", pa.string()),
            pa.field("metadata", pa.map_(pa.string(), pa.string())),
        ]
    )


@cache
def relationship_schema() -> Any:
    import pyarrow as pa

    return pa.schema(
        [
            pa.field("source_entity_id", pa.string(), nullable=False),
            pa.field("target_entity_id", pa.string(), nullable=False),
            pa.field("relationship_type", pa.string(), nullable=False),
            pa.field("description", pa.string()),
            pa.field("confidence", pa.float64()),
            pa.field("created_at", pa.string()),
            pa.field("valid_at", pa.string()),
            pa.field("expired_at", pa.string()),
            pa.field("invalid_at", pa.string()),
            pa.field("source_entity_name", pa.string()),
            pa.field("target_entity_name", pa.string()),
            pa.field("metadata", pa.map_(pa.string(), pa.string())),
        ]
    )


@cache
def sources_schema() -> Any:
    import pyarrow as pa

    return pa.schema(
        [
            pa.field("source_id", pa.string(), nullable=False),
            pa.field("kind", pa.string(), nullable=False),
            pa.field("location", pa.string()),
            pa.field("content_hash", pa.string(), nullable=False),
            pa.field("entity_ids", pa.list_(pa.string())),
            pa.field("entities", pa.int64()),
            pa.field("relationships", pa.int64()),
            pa.field("ingested_at", pa.string()),
        ]
    )


RELATIONSHIP_KEY = ["source_entity_id", "target_entity_id", "relationship_type"]


# --- the store ---------------------------------------------------------------------------------


class MemoryStore:
    """A room's memories (see the module docstring)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def namespace_dir(self, namespace: tuple[str, ...]) -> Path:
        return self.root.joinpath(*namespace) / MEMORY_FOLDER

    def memory_dir(self, ref: MemoryRef) -> Path:
        return self.namespace_dir(ref.namespace) / ref.name

    def dataset_path(self, ref: MemoryRef, table: str) -> Path:
        return self.memory_dir(ref) / f"{table}.lance"

    def prepare(self) -> None:
        """Create the root; finish what interrupted creates and drops left."""
        self.root.mkdir(parents=True, exist_ok=True)
        for folder in self.root.rglob(MEMORY_FOLDER):
            for leftover in folder.glob(".staging-*"):
                shutil.rmtree(leftover, ignore_errors=True)
            for leftover in folder.glob(".drop-*"):
                shutil.rmtree(leftover, ignore_errors=True)

    # --- memories -------------------------------------------------------------------------

    def exists(self, ref: MemoryRef) -> bool:
        return (self.memory_dir(ref) / MARKER).is_file()

    def require(self, ref: MemoryRef) -> None:
        if not self.exists(ref):
            raise memory_not_found(ref)

    def marker(self, ref: MemoryRef) -> dict[str, Any]:
        try:
            return dict(json.loads((self.memory_dir(ref) / MARKER).read_text(encoding="utf-8")))
        except FileNotFoundError:
            raise memory_not_found(ref) from None

    def list(self, namespace: tuple[str, ...]) -> list[str]:
        folder = self.namespace_dir(namespace)
        try:
            entries = sorted(entry.name for entry in folder.iterdir() if not entry.name.startswith("."))
        except FileNotFoundError:
            return []
        return [name for name in entries if (folder / name / MARKER).is_file()]

    def create(self, ref: MemoryRef, *, overwrite: bool, ignore_exists: bool) -> bool:
        """Make an empty memory; False when it existed and `ignore_exists` kept it. `overwrite`
        replaces an existing memory with an empty one."""
        if self.exists(ref):
            if overwrite:
                self.drop(ref, ignore_missing=True)
            elif ignore_exists:
                return False
            else:
                raise memory_exists(ref)
        folder = self.namespace_dir(ref.namespace)
        folder.mkdir(parents=True, exist_ok=True)
        staging = folder / f".staging-{uuid.uuid4().hex}"
        staging.mkdir()
        try:
            marker = {"name": ref.name, "namespace": list(ref.namespace), "id": uuid.uuid4().hex, "created_at": now_iso()}
            _write_atomically(staging / MARKER, json.dumps(marker, indent=1).encode())
            target = self.memory_dir(ref)
            if target.exists():  # a folder without a marker: what a crash in `drop` can leave
                _remove(target)
            os.rename(staging, target)
            _fsync_folder(folder)
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
        return True

    def drop(self, ref: MemoryRef, *, ignore_missing: bool) -> None:
        if not self.exists(ref):
            if ignore_missing:
                return
            raise memory_not_found(ref)
        _remove(self.memory_dir(ref))

    # --- datasets -------------------------------------------------------------------------

    def has_dataset(self, ref: MemoryRef, table: str) -> bool:
        return (self.dataset_path(ref, table) / "_versions").is_dir()

    def open(self, ref: MemoryRef, table: str) -> Any | None:
        """The Lance dataset `table` of the memory, or None when it has none yet."""
        if not self.has_dataset(ref, table):
            return None
        return lance_module().dataset(str(self.dataset_path(ref, table)))

    def user_tables(self, ref: MemoryRef) -> list[str]:
        """The tables of `upsert_table`, sorted."""
        try:
            entries = sorted(entry.name for entry in self.memory_dir(ref).iterdir())
        except FileNotFoundError:
            return []
        names = [entry[: -len(".lance")] for entry in entries if entry.endswith(".lance")]
        return [name for name in names if name not in RESERVED_TABLES and not name.startswith("_") and self.has_dataset(ref, name)]

    def datasets(self, ref: MemoryRef) -> list[str]:
        """Every dataset a caller sees: `entity`, `relationship` (when they exist), the tables."""
        graph = [table for table in (ENTITY, RELATIONSHIP) if self.has_dataset(ref, table)]
        return graph + self.user_tables(ref)

    def write(self, ref: MemoryRef, table: str, data: Any, mode: str) -> Any:
        """Write `data` (an Arrow table) as a new version of `table` (`append` or `overwrite`),
        creating the dataset when it has none; the dataset after the write."""
        lance = lance_module()
        path = self.dataset_path(ref, table)
        if not self.has_dataset(ref, table):
            if path.exists():  # a first write that never committed
                shutil.rmtree(path, ignore_errors=True)
            return lance.write_dataset(data, str(path), mode="create")
        return lance.write_dataset(data, str(path), mode=mode)

    def inspect(self, ref: MemoryRef) -> MemoryDetails:
        self.require(ref)
        summaries = []
        for table in self.datasets(ref):
            dataset = self.open(ref, table)
            if dataset is None:
                continue
            summaries.append(MemoryDatasetSummary(name=table, rows=dataset.count_rows(), columns=list(dataset.schema.names)))
        return MemoryDetails(
            name=ref.name,
            namespace=ref.namespace_list,
            path="/".join(("", MEMORIES_FOLDER, *ref.namespace, ref.name)),
            datasets=summaries,
        )

    def versions(self, ref: MemoryRef) -> tuple[Any, ...]:
        """What identifies the memory's current data: its id and each dataset's version."""
        key: list[Any] = [self.marker(ref).get("id")]
        for table in self.datasets(ref):
            dataset = self.open(ref, table)
            if dataset is not None:
                key.append((table, dataset.version))
        return tuple(key)


def _remove(folder: Path) -> None:
    trash = folder.with_name(f".drop-{uuid.uuid4().hex}")
    os.rename(folder, trash)  # gone at once; the files go next
    shutil.rmtree(trash, ignore_errors=True)


def _write_atomically(path: Path, data: bytes) -> None:
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _fsync_folder(folder: Path) -> None:
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


__all__ = [
    "ENTITY",
    "MEMORIES_FOLDER",
    "PERMISSION_DENIED",
    "RELATIONSHIP",
    "RELATIONSHIP_KEY",
    "SOURCES",
    "MemoryRef",
    "MemoryStore",
    "check_name",
    "check_namespace",
    "check_table_name",
    "entity_schema",
    "invalid",
    "lance_error",
    "lance_module",
    "memory_exists",
    "memory_not_found",
    "now_iso",
    "relationship_schema",
    "sources_schema",
]
