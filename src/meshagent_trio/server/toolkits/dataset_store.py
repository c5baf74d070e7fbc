"""Where a room's datasets live, and their namespaces, tables and branches (protocol/room-apis.md §14.1).

Everything here blocks (files, Lance): the toolkit calls it in worker threads.

Layout under the room's `datasets` folder (names are validated by `check_name`):

    _tables/<table>/           a Lance dataset of the root namespace
    _branches.json             the root namespace's branches (below)
    _staging/<random>/         a table being created; renamed into `_tables` when committed
    <segment>/…                a child namespace, laid out the same way

Namespace segments may not start with `_`, so they never meet the folders above.

Tables are Lance datasets with stable row ids (so `watch_table` can name the rows a version
inserted, updated or deleted). A table appears only once its first version is committed: it is
written under `_staging` and renamed into place, so a crash leaves no half-made table (stale
staging folders are removed the first time the store is used).

**Branches** are per namespace: `create_branch` makes a Lance branch of every table the parent
branch has, and records the branch in `_branches.json` (its parent and creation time). A table
created later on the parent is not on the branch. A table created *on* a branch gets an empty
first version on `main`, hidden there (it is listed, and found, only on its branches) until
something creates it on `main`. `delete_branch` deletes the branch of every table (and a hidden
table that has no other branch). `main` (or null) is the default branch and cannot be created
or deleted.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import threading
import uuid
from collections import OrderedDict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from meshagent_core import ErrorCode, RoomException

# Vector index statistics would otherwise carry every centroid (large, and Lance warns).
os.environ.setdefault("LANCE_INCLUDE_VECTOR_CENTROIDS", "false")

MAIN = "main"
TABLES = "_tables"
STAGING = "_staging"
BRANCHES_FILE = "_branches.json"
MAX_NAME = 128
#: Tables whose Lance caches (opened indexes, file metadata) are kept between calls, and their
#: sizes: a table's session is reused while the table is the same (same folder, never dropped,
#: renamed or branch-deleted since), so a search does not reload its index each time.
CACHED_TABLES = 32
INDEX_CACHE_BYTES = 32 * 1024 * 1024
METADATA_CACHE_BYTES = 8 * 1024 * 1024
MAX_NAMESPACE_DEPTH = 16
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")
_LANCE_SOURCE = re.compile(r",?\s*/\S+?\.rs:\d+:\d+")


def lance_module() -> Any:
    import lance

    return lance


def not_found(message: str) -> RoomException:
    return RoomException(message, code=ErrorCode.NOT_FOUND)


def invalid(message: str) -> RoomException:
    return RoomException(message, code=ErrorCode.INVALID_REQUEST)


def lance_error(what: str, error: BaseException) -> RoomException:
    """A Lance (or Arrow) failure as the caller's error: Lance's reason without its source
    locations, code 1002 (the input did not fit the table)."""
    text = _LANCE_SOURCE.sub("", str(error)).strip()
    text = re.sub(r"^(Invalid user input:\s*|LanceError\(\w+\):\s*)+", "", text)
    return invalid(f"{what}: {text}" if text else what)


def check_name(name: Any, what: str = "table name") -> str:
    """A table, branch or namespace name: 1–128 letters, digits, `_`, `-`, `.`, not starting
    with `.` or `-`."""
    if not isinstance(name, str) or not name.strip():
        raise invalid(f"{what} must not be empty")
    name = name.strip()
    if len(name) > MAX_NAME or not _NAME.match(name):
        raise invalid(
            f"invalid {what} {name!r}: use up to {MAX_NAME} letters, digits, '_', '-' and '.', starting with a letter, digit or '_'"
        )
    return name


def check_namespace(namespace: list[str] | None) -> tuple[str, ...]:
    if not namespace:
        return ()
    if len(namespace) > MAX_NAMESPACE_DEPTH:
        raise invalid(f"a namespace has at most {MAX_NAMESPACE_DEPTH} segments")
    segments = tuple(check_name(segment, "namespace segment") for segment in namespace)
    for segment in segments:
        if segment.startswith("_"):
            raise invalid(f"invalid namespace segment {segment!r}: it may not start with '_'")
    return segments


def branch_key(branch: str | None) -> str | None:
    """None for the main branch, else the validated branch name."""
    if branch is None or branch == MAIN:
        return None
    return check_name(branch, "branch name")


def show_table(namespace: tuple[str, ...], name: str) -> str:
    return "/".join((*namespace, name))


def iso(moment: datetime) -> str:
    """ISO 8601 in UTC with `Z` (a naive time, as Lance gives version times, is local time)."""
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


class DatasetStore:
    """A room's datasets (see the module docstring). Thread-safe: structural changes (create,
    drop, rename, branches) take one lock; data changes rely on Lance's commits."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.lock = threading.RLock()
        self._swept = False
        self._sessions: OrderedDict[str, tuple[tuple[int, int], Any]] = OrderedDict()
        self._sessions_lock = threading.Lock()

    def _session(self, path: Path) -> Any:
        """The Lance session (caches) of the table at `path`, made anew when the folder there is
        another one than last time (dropped and created again)."""
        info = path.stat()
        identity = (info.st_ino, info.st_ctime_ns)
        key = str(path)
        with self._sessions_lock:
            cached = self._sessions.get(key)
            if cached is not None and cached[0] == identity:
                self._sessions.move_to_end(key)
                return cached[1]
            session = lance_module().Session(index_cache_size_bytes=INDEX_CACHE_BYTES, metadata_cache_size_bytes=METADATA_CACHE_BYTES)
            self._sessions[key] = (identity, session)
            while len(self._sessions) > CACHED_TABLES:
                self._sessions.popitem(last=False)
            return session

    def _forget(self, path: Path) -> None:
        with self._sessions_lock:
            self._sessions.pop(str(path), None)

    # --- paths --------------------------------------------------------------------------

    def namespace_dir(self, namespace: tuple[str, ...]) -> Path:
        return self.root.joinpath(*namespace)

    def table_path(self, namespace: tuple[str, ...], name: str) -> Path:
        return self.namespace_dir(namespace) / TABLES / name

    def prepare(self) -> None:
        """Create the root and remove what interrupted creates left (once)."""
        if self._swept:
            return
        with self.lock:
            if self._swept:
                return
            self.root.mkdir(parents=True, exist_ok=True)
            for staging in self.root.rglob(STAGING):
                if staging.is_dir():
                    shutil.rmtree(staging, ignore_errors=True)
            self._swept = True

    # --- branches registry ----------------------------------------------------------------

    def _registry(self, namespace: tuple[str, ...]) -> dict[str, Any]:
        path = self.namespace_dir(namespace) / BRANCHES_FILE
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {"branches": {}, "hidden": {}}
        data.setdefault("branches", {})
        data.setdefault("hidden", {})
        return data

    def _save_registry(self, namespace: tuple[str, ...], data: dict[str, Any]) -> None:
        folder = self.namespace_dir(namespace)
        folder.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=folder, prefix=".branches-", suffix=".tmp")
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as file:
                json.dump(data, file, indent=1, sort_keys=True)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, folder / BRANCHES_FILE)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def branches(self, namespace: tuple[str, ...]) -> dict[str, dict[str, Any]]:
        return self._registry(namespace)["branches"]

    def require_branch(self, namespace: tuple[str, ...], branch: str | None) -> None:
        if branch is not None and branch not in self.branches(namespace):
            raise not_found(f"branch {branch!r} does not exist")

    def _hidden(self, namespace: tuple[str, ...]) -> dict[str, list[str]]:
        return self._registry(namespace)["hidden"]

    # --- tables ---------------------------------------------------------------------------

    def _table_names(self, namespace: tuple[str, ...]) -> list[str]:
        folder = self.namespace_dir(namespace) / TABLES
        try:
            entries = sorted(entry.name for entry in folder.iterdir() if entry.is_dir())
        except FileNotFoundError:
            return []
        return [name for name in entries if (folder / name / "_versions").is_dir()]

    def list_tables(self, namespace: tuple[str, ...], branch: str | None) -> list[str]:
        self.require_branch(namespace, branch)
        names = self._table_names(namespace)
        if branch is None:
            hidden = self._hidden(namespace)
            return [name for name in names if name not in hidden]
        return [name for name in names if self._has_branch(self.table_path(namespace, name), branch)]

    def _has_branch(self, path: Path, branch: str) -> bool:
        return (path / "_refs" / "branches" / f"{branch}.json").is_file()

    def exists(self, namespace: tuple[str, ...], name: str, branch: str | None) -> bool:
        path = self.table_path(namespace, name)
        if not (path / "_versions").is_dir():
            return False
        if branch is None:
            return name not in self._hidden(namespace)
        return self._has_branch(path, branch)

    def open(self, namespace: tuple[str, ...], name: str, branch: str | None = None, version: int | None = None) -> Any:
        """The Lance dataset of a table (at `version` of `branch`); 1003 when there is none."""
        self.require_branch(namespace, branch)
        if not self.exists(namespace, name, branch):
            where = "" if branch is None else f" on branch {branch!r}"
            raise not_found(f"table {show_table(namespace, name)!r} does not exist{where}")
        lance = lance_module()
        path = self.table_path(namespace, name)
        dataset = lance.dataset(str(path), session=self._session(path))
        try:
            if branch is not None:
                dataset = dataset.checkout_version((branch, None))
            if version is not None:
                dataset = dataset.checkout_version(version if branch is None else (branch, version))
        except (ValueError, OSError) as error:
            raise not_found(f"version {version} of table {show_table(namespace, name)!r} does not exist") from error
        return dataset

    def create(
        self,
        namespace: tuple[str, ...],
        name: str,
        branch: str | None,
        mode: str,
        write: Callable[[Any, str], Any],
        empty_schema: Any,
    ) -> bool:
        """Create (or overwrite) a table: `write(target, lance_mode)` writes its first version to
        `target` (a path, or a dataset on a branch) and returns the dataset. False when
        `create_if_not_exists` found the table (nothing is written)."""
        self.require_branch(namespace, branch)
        exists = self.exists(namespace, name, branch)
        if exists and mode == "create":
            raise RoomException(f"table {show_table(namespace, name)!r} already exists", code=ErrorCode.ALREADY_EXISTS)
        if exists and mode == "create_if_not_exists":
            return False
        path = self.table_path(namespace, name)
        if exists:  # overwrite: a new version of the same dataset
            write(self.open(namespace, name, branch), "overwrite")
            return True
        if (path / "_versions").is_dir():
            # The dataset exists, but not on this branch (hidden on main, or not branched).
            self._create_where_missing(namespace, name, branch, write)
            return True
        if branch is not None:
            self._create_new(namespace, name, lambda target, mode: write_empty(target, empty_schema), hidden_for=branch)
            with self.lock:
                self._branch_table(namespace, name, branch)
            write(self.open(namespace, name, branch), "overwrite")
            return True
        self._create_new(namespace, name, write)
        return True

    def _create_new(self, namespace: tuple[str, ...], name: str, write: Callable[[Any, str], Any], hidden_for: str | None = None) -> None:
        staging_root = self.namespace_dir(namespace) / STAGING
        staging_root.mkdir(parents=True, exist_ok=True)
        staging = staging_root / uuid.uuid4().hex
        try:
            write(str(staging), "create")
            with self.lock:
                target = self.table_path(namespace, name)
                target.parent.mkdir(parents=True, exist_ok=True)
                if target.exists():
                    raise RoomException(f"table {show_table(namespace, name)!r} already exists", code=ErrorCode.ALREADY_EXISTS)
                if hidden_for is not None:
                    registry = self._registry(namespace)
                    registry["hidden"][name] = [hidden_for]
                    self._save_registry(namespace, registry)
                os.rename(staging, target)
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)

    def _create_where_missing(self, namespace: tuple[str, ...], name: str, branch: str | None, write: Callable[[Any, str], Any]) -> None:
        with self.lock:
            if branch is None:  # hidden on main: its first real version there
                write(lance_module().dataset(str(self.table_path(namespace, name))), "overwrite")
                registry = self._registry(namespace)
                registry["hidden"].pop(name, None)
                self._save_registry(namespace, registry)
                return
            self._branch_table(namespace, name, branch)
            registry = self._registry(namespace)
            if name in registry["hidden"]:
                registry["hidden"][name].append(branch)
                self._save_registry(namespace, registry)
        write(self.open(namespace, name, branch), "overwrite")

    def _branch_table(self, namespace: tuple[str, ...], name: str, branch: str) -> None:
        dataset = lance_module().dataset(str(self.table_path(namespace, name)))
        parent = self.branches(namespace)[branch].get("parent_branch")
        if parent is not None and self._has_branch(self.table_path(namespace, name), parent):
            dataset.create_branch(branch, (parent, None))
        else:
            dataset.create_branch(branch)

    def drop(self, namespace: tuple[str, ...], name: str, branch: str | None, ignore_missing: bool) -> None:
        """Drop a table: on main, the whole dataset (every branch of it); on a branch, that
        branch of it only."""
        with self.lock:
            if not self.exists(namespace, name, branch):
                self.require_branch(namespace, branch)
                if ignore_missing:
                    return
                raise not_found(f"table {show_table(namespace, name)!r} does not exist")
            path = self.table_path(namespace, name)
            self._forget(path)
            registry = self._registry(namespace)
            if branch is None:
                trash = path.with_name(f".drop-{uuid.uuid4().hex}")
                os.rename(path, trash)  # gone at once; the files go next
                if registry["hidden"].pop(name, None) is not None:
                    self._save_registry(namespace, registry)
                shutil.rmtree(trash, ignore_errors=True)
                return
            lance_module().dataset(str(path)).branches.delete(branch)
            hidden_on = registry["hidden"].get(name)
            if hidden_on is not None:
                remaining = [other for other in hidden_on if other != branch]
                if remaining:
                    registry["hidden"][name] = remaining
                else:
                    del registry["hidden"][name]
                    shutil.rmtree(path, ignore_errors=True)
                self._save_registry(namespace, registry)

    def rename(self, namespace: tuple[str, ...], name: str, new_name: str, branch: str | None) -> None:
        """Rename a table (the whole dataset, with its branches)."""
        with self.lock:
            if not self.exists(namespace, name, branch):
                self.require_branch(namespace, branch)
                raise not_found(f"table {show_table(namespace, name)!r} does not exist")
            target = self.table_path(namespace, new_name)
            if target.exists():
                raise RoomException(f"table {show_table(namespace, new_name)!r} already exists", code=ErrorCode.ALREADY_EXISTS)
            self._forget(self.table_path(namespace, name))
            os.rename(self.table_path(namespace, name), target)
            registry = self._registry(namespace)
            if name in registry["hidden"]:
                registry["hidden"][new_name] = registry["hidden"].pop(name)
                self._save_registry(namespace, registry)

    # --- branches -------------------------------------------------------------------------

    def create_branch(self, namespace: tuple[str, ...], branch: str, parent: str | None) -> None:
        with self.lock:
            registry = self._registry(namespace)
            if branch in registry["branches"]:
                raise RoomException(f"branch {branch!r} already exists", code=ErrorCode.ALREADY_EXISTS)
            self.require_branch(namespace, parent)
            tables = self.list_tables(namespace, parent)
            registry["branches"][branch] = {"parent_branch": parent, "created_at": iso(datetime.now(timezone.utc))}
            self._save_registry(namespace, registry)
            made: list[str] = []
            try:
                for name in tables:
                    self._branch_table(namespace, name, branch)
                    made.append(name)
                    if name in registry["hidden"]:
                        registry["hidden"][name].append(branch)
                if made and registry["hidden"]:
                    self._save_registry(namespace, registry)
            except BaseException:
                for name in made:
                    lance_module().dataset(str(self.table_path(namespace, name))).branches.delete(branch)
                registry = self._registry(namespace)
                registry["branches"].pop(branch, None)
                self._save_registry(namespace, registry)
                raise

    def delete_branch(self, namespace: tuple[str, ...], branch: str) -> None:
        """Delete a branch (its children first: Lance keeps what a child branched from)."""
        with self.lock:
            self.require_branch(namespace, branch)
            children = sorted(name for name, info in self.branches(namespace).items() if info.get("parent_branch") == branch)
            if children:
                raise RoomException(
                    f"branch {branch!r} has branches made from it ({', '.join(children)}): delete them first",
                    code=ErrorCode.INVALID_STATE,
                )
            for name in self._table_names(namespace):
                path = self.table_path(namespace, name)
                if self._has_branch(path, branch):
                    self.drop(namespace, name, branch, ignore_missing=True)
            registry = self._registry(namespace)
            registry["branches"].pop(branch, None)
            self._save_registry(namespace, registry)


def write_empty(target: Any, schema: Any) -> Any:
    """The first, empty version of a table that is created on a branch."""
    lance = lance_module()
    return lance.write_dataset(schema.empty_table(), target, mode="create", enable_stable_row_ids=True)


__all__ = [
    "MAIN",
    "DatasetStore",
    "branch_key",
    "check_name",
    "check_namespace",
    "invalid",
    "iso",
    "lance_error",
    "lance_module",
    "not_found",
    "show_table",
]
