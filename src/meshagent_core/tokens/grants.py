"""The per-family grants of an `ApiScope` (protocol/tokens.md §4) and their matching rules (protocol/tokens.md §5).

Note: several grants have a field called `list`; inside those class bodies the builtin is
shadowed, so list types are spelled through the module-level aliases below.
"""

from __future__ import annotations

import functools
from typing import Literal

import msgspec

from .file_permissions import FileAction, FilesPolicy, legacy_storage_rules, storage_request_path
from .model import GrantModel
from .patterns import matches_grant_pattern, namespace_matches

StrList = list[str]

MemoryPermission = Literal[
    "create", "drop", "inspect", "query", "upsert", "ingest", "recall", "optimize"
]


class LivekitGrant(GrantModel):
    """LiveKit access; `breakout_rooms=None` allows every breakout room."""

    breakout_rooms: StrList | None = None

    def can_join_breakout_room(self, name: str) -> bool:
        """Exact-name membership in `breakout_rooms` (unrestricted when `None`)."""
        return self.breakout_rooms is None or name in self.breakout_rooms


class QueuesGrant(GrantModel):
    """Queues; `send`/`receive` of `None` allow every queue, lists hold exact names."""

    send: StrList | None = None
    receive: StrList | None = None
    list: bool = True

    def can_send(self, queue: str) -> bool:
        """Whether messages may be sent to `queue`."""
        return self.send is None or queue in self.send

    def can_receive(self, queue: str) -> bool:
        """Whether messages may be received from `queue`."""
        return self.receive is None or queue in self.receive


class MessagingGrant(GrantModel):
    """Participant messaging flags."""

    broadcast: bool = True
    list: bool = True
    send: bool = True


class TableGrant(GrantModel):
    """Access to one dataset table; `namespace=None` matches any namespace."""

    name: str
    namespace: StrList | None = None
    write: bool = False
    read: bool = True
    alter: bool = False


TableGrantList = list[TableGrant]


class DatasetGrant(GrantModel):
    """Dataset (table) access; `tables=None` allows every table."""

    tables: TableGrantList | None = None
    list_tables: bool = True

    def _matching(self, table: str, namespace: StrList | None) -> TableGrantList:
        return [
            grant
            for grant in self.tables or ()
            if grant.name == table and namespace_matches(grant.namespace, namespace)
        ]

    def _allows(self, table: str, namespace: StrList | None, flag: str) -> bool:
        if self.tables is None:
            return True
        return any(getattr(grant, flag) for grant in self._matching(table, namespace))

    def can_read(self, table: str, *, namespace: StrList | None = None) -> bool:
        """Some matching table grant has `read`."""
        return self._allows(table, namespace, "read")

    def can_write(self, table: str, *, namespace: StrList | None = None) -> bool:
        """Some matching table grant has `write`."""
        return self._allows(table, namespace, "write")

    def can_alter(self, table: str, *, namespace: StrList | None = None) -> bool:
        """Some matching table grant has `alter`."""
        return self._allows(table, namespace, "alter")

    def can_access(self, table: str, *, namespace: StrList | None = None) -> bool:
        """Read, write or alter is allowed."""
        return (
            self.can_read(table, namespace=namespace)
            or self.can_write(table, namespace=namespace)
            or self.can_alter(table, namespace=namespace)
        )


class SqliteTableGrant(GrantModel):
    """Access to one table of a SQLite database."""

    database: str
    table: str
    namespace: StrList | None = None
    write: bool = False
    read: bool = True
    alter: bool = False


SqliteTableGrantList = list[SqliteTableGrant]


class SqliteDatabaseGrant(GrantModel):
    """Access to one SQLite database; `tables=None` allows every table in it."""

    name: str
    namespace: StrList | None = None
    create_table: bool = True
    drop: bool = False
    inspect: bool = True
    list_tables: bool = True
    execute: bool = True
    tables: SqliteTableGrantList | None = None


SqliteDatabaseGrantList = list[SqliteDatabaseGrant]


class SqliteGrant(GrantModel):
    """SQLite access; `databases=None` allows every database and table."""

    databases: SqliteDatabaseGrantList | None = None
    create_database: bool = True
    list_databases: bool = True

    def _matching_databases(
        self, database: str, namespace: StrList | None
    ) -> SqliteDatabaseGrantList:
        return [
            grant
            for grant in self.databases or ()
            if grant.name == database and namespace_matches(grant.namespace, namespace)
        ]

    def _database_allows(self, database: str, namespace: StrList | None, flag: str) -> bool:
        if self.databases is None:
            return True
        return any(getattr(grant, flag) for grant in self._matching_databases(database, namespace))

    def _table_allows(
        self, database: str, table: str, namespace: StrList | None, flag: str
    ) -> bool:
        if self.databases is None:
            return True
        databases = self._matching_databases(database, namespace)
        tables = [
            grant
            for db in databases
            for grant in db.tables or ()
            if grant.database == database
            and grant.table == table
            and namespace_matches(grant.namespace, namespace)
        ]
        if tables:
            return any(getattr(grant, flag) for grant in tables)
        return any(db.tables is None for db in databases)

    def can_create_database(self) -> bool:
        """The `create_database` flag."""
        return self.create_database

    def can_list_databases(self) -> bool:
        """The `list_databases` flag."""
        return self.list_databases

    def can_drop_database(self, *, database: str, namespace: StrList | None = None) -> bool:
        """Some matching database grant has `drop`."""
        return self._database_allows(database, namespace, "drop")

    def can_inspect_database(self, *, database: str, namespace: StrList | None = None) -> bool:
        """Some matching database grant has `inspect`."""
        return self._database_allows(database, namespace, "inspect")

    def can_list_tables(self, *, database: str, namespace: StrList | None = None) -> bool:
        """Some matching database grant has `list_tables`."""
        return self._database_allows(database, namespace, "list_tables")

    def can_create_table(self, *, database: str, namespace: StrList | None = None) -> bool:
        """Some matching database grant has `create_table`."""
        return self._database_allows(database, namespace, "create_table")

    def can_execute(self, *, database: str, namespace: StrList | None = None) -> bool:
        """Some matching database grant has `execute`."""
        return self._database_allows(database, namespace, "execute")

    def can_read(self, *, database: str, table: str, namespace: StrList | None = None) -> bool:
        """Matching table grants decide `read`; without any, a matching database grant
        with `tables=None` allows it."""
        return self._table_allows(database, table, namespace, "read")

    def can_write(self, *, database: str, table: str, namespace: StrList | None = None) -> bool:
        """As `can_read`, for `write`."""
        return self._table_allows(database, table, namespace, "write")

    def can_alter(self, *, database: str, table: str, namespace: StrList | None = None) -> bool:
        """As `can_read`, for `alter`."""
        return self._table_allows(database, table, namespace, "alter")

    def can_access(self, *, database: str, table: str, namespace: StrList | None = None) -> bool:
        """Read, write or alter is allowed."""
        return (
            self.can_read(database=database, table=table, namespace=namespace)
            or self.can_write(database=database, table=table, namespace=namespace)
            or self.can_alter(database=database, table=table, namespace=namespace)
        )


class MemoryPermissions(GrantModel):
    """What may be done with a memory."""

    create: bool = True
    drop: bool = True
    inspect: bool = True
    query: bool = True
    upsert: bool = True
    ingest: bool = True
    recall: bool = True
    optimize: bool = True


class MemoryEntryGrant(GrantModel):
    """Permissions on one memory; `namespace=None` matches any namespace."""

    name: str
    namespace: StrList | None = None
    permissions: MemoryPermissions = msgspec.field(default_factory=MemoryPermissions)


MemoryEntryGrantList = list[MemoryEntryGrant]


class MemoryGrant(GrantModel):
    """Memory access; `memories=None` allows every memory."""

    list: bool = True
    memories: MemoryEntryGrantList | None = None

    def _can(self, name: str, namespace: StrList | None, permission: MemoryPermission) -> bool:
        if self.memories is None:
            return True
        return any(
            getattr(grant.permissions, permission)
            for grant in self.memories
            if grant.name == name and namespace_matches(grant.namespace, namespace)
        )

    def can_create(self, *, name: str, namespace: StrList | None = None) -> bool:
        """A matching memory grant allows `create`."""
        return self._can(name, namespace, "create")

    def can_drop(self, *, name: str, namespace: StrList | None = None) -> bool:
        """A matching memory grant allows `drop`."""
        return self._can(name, namespace, "drop")

    def can_inspect(self, *, name: str, namespace: StrList | None = None) -> bool:
        """A matching memory grant allows `inspect`."""
        return self._can(name, namespace, "inspect")

    def can_query(self, *, name: str, namespace: StrList | None = None) -> bool:
        """A matching memory grant allows `query`."""
        return self._can(name, namespace, "query")

    def can_upsert(self, *, name: str, namespace: StrList | None = None) -> bool:
        """A matching memory grant allows `upsert`."""
        return self._can(name, namespace, "upsert")

    def can_ingest(self, *, name: str, namespace: StrList | None = None) -> bool:
        """A matching memory grant allows `ingest`."""
        return self._can(name, namespace, "ingest")

    def can_recall(self, *, name: str, namespace: StrList | None = None) -> bool:
        """A matching memory grant allows `recall`."""
        return self._can(name, namespace, "recall")

    def can_optimize(self, *, name: str, namespace: StrList | None = None) -> bool:
        """A matching memory grant allows `optimize`."""
        return self._can(name, namespace, "optimize")

    def can_access_existing(self, *, name: str, namespace: StrList | None = None) -> bool:
        """Any permission other than `create` is allowed."""
        return any(
            self._can(name, namespace, permission)
            for permission in ("drop", "inspect", "query", "upsert", "ingest", "recall", "optimize")
        )


class SyncPathGrant(GrantModel):
    """One document path (a trailing `*` makes it a prefix)."""

    path: str
    read_only: bool = False

    def matches(self, path: str) -> bool:
        """Equal to `path`, or a `*`-terminated prefix of it."""
        return self.path == path or (self.path.endswith("*") and path.startswith(self.path[:-1]))


SyncPathGrantList = list[SyncPathGrant]


class SyncGrant(GrantModel):
    """Document sync; `paths=None` allows every document. The first matching entry decides."""

    paths: SyncPathGrantList | None = None

    def _first_match(self, path: str) -> SyncPathGrant | None:
        for grant in self.paths or ():
            if grant.matches(path):
                return grant
        return None

    def can_read(self, path: str) -> bool:
        """Some entry matches `path`."""
        return self.paths is None or self._first_match(path) is not None

    def can_write(self, path: str) -> bool:
        """The first matching entry is not `read_only`."""
        if self.paths is None:
            return True
        grant = self._first_match(path)
        return grant is not None and not grant.read_only


class StoragePathGrant(GrantModel):
    """A legacy storage prefix (converted to a `FilePathRule` by `StorageGrant.file_policy`)."""

    path: str
    read_only: bool = False


StoragePathGrantList = list[StoragePathGrant]


class StorageGrant(GrantModel):
    """Room file storage: an explicit `files` policy, or legacy `paths` prefixes."""

    paths: StoragePathGrantList | None = None
    files: FilesPolicy | None = None

    def file_policy(self) -> FilesPolicy:
        """`files` if set, else the policy converted from `paths` (see
        `legacy_storage_rules`); raises `ValueError` when a legacy path is not canonical."""
        if self.files is not None:
            return self.files
        legacy = None if self.paths is None else ((p.path, p.read_only) for p in self.paths)
        return FilesPolicy(paths=legacy_storage_rules(legacy))

    def _checked_policy(self) -> FilesPolicy:
        """`file_policy()` for the checks below: a legacy policy is built once per distinct
        list of prefixes and shared, so it never leaves this class (`file_policy()` hands out
        a fresh one)."""
        if self.files is not None:
            return self.files
        return _legacy_policy(None if self.paths is None else tuple((p.path, p.read_only) for p in self.paths))

    def allows(self, action: FileAction, path: str, *, subtree: bool = False) -> bool:
        """Whether `action` is allowed on the request `path` (normalised first). An invalid
        path, or an invalid legacy policy, denies."""
        try:
            return self._checked_policy()._allows_valid(action, storage_request_path(path), subtree)
        except ValueError:
            return False

    def allows_canonical(self, action: FileAction, path: str) -> bool:
        """`allows(action, path)` for a `path` that is already canonical (what
        `storage_request_path` returned), without normalising and validating it again."""
        try:
            return self._checked_policy()._allows_valid(action, path, False)
        except ValueError:
            return False

    def can_read(self, path: str, *, subtree: bool = False) -> bool:
        """`read` on `path` (on its whole tree with `subtree=True`)."""
        return self.allows("read", path, subtree=subtree)

    def can_write(self, path: str, *, subtree: bool = False) -> bool:
        """`write` on `path` (on its whole tree with `subtree=True`)."""
        return self.allows("write", path, subtree=subtree)

    def can_delete(self, path: str, *, recursive: bool = False) -> bool:
        """`delete` on `path`; `recursive=True` is a subtree check."""
        return self.allows("delete", path, subtree=recursive)

    def can_list(self, path: str) -> bool:
        """`list` on `path` itself."""
        return self.allows("list", path)

    def can_list_directory(self, path: str) -> bool:
        """`path` is listable, or is a parent of a listable granted folder."""
        try:
            return self._checked_policy()._can_list_directory_valid(storage_request_path(path))
        except ValueError:
            return False

    def can_list_directory_canonical(self, path: str) -> bool:
        """`can_list_directory` for a `path` that is already canonical (see `allows_canonical`)."""
        try:
            return self._checked_policy()._can_list_directory_valid(path)
        except ValueError:
            return False

    def can_presign(self, path: str) -> bool:
        """`presign` on `path` (only ever granted by an explicit `files` policy)."""
        return self.allows("presign", path)


@functools.lru_cache(maxsize=256)
def _legacy_policy(prefixes: tuple[tuple[str, bool], ...] | None) -> FilesPolicy:
    return FilesPolicy(paths=legacy_storage_rules(prefixes))


class ContainerRegistryGrant(GrantModel):
    """Room container registry; every list is a set of patterns, `None` = unrestricted."""

    list: StrList | None = None
    pull: StrList | None = None
    run: StrList | None = None
    write: StrList | None = None

    def can_list(self, repository: str) -> bool:
        """`list` patterns if set; otherwise any of the set `pull`/`run`/`write` patterns
        (everything when none is set)."""
        if self.list is not None:
            return matches_grant_pattern(self.list, repository, allow_if_unset=False)
        restricted = [p for p in (self.pull, self.run, self.write) if p is not None]
        if not restricted:
            return True
        return any(
            matches_grant_pattern(patterns, repository, allow_if_unset=False)
            for patterns in restricted
        )

    def can_pull(self, repository: str) -> bool:
        """`pull` patterns."""
        return matches_grant_pattern(self.pull, repository, allow_if_unset=True)

    def can_run(self, repository: str) -> bool:
        """`run` patterns."""
        return matches_grant_pattern(self.run, repository, allow_if_unset=True)

    def can_write(self, repository: str) -> bool:
        """`write` patterns."""
        return matches_grant_pattern(self.write, repository, allow_if_unset=True)


class ContainersGrant(GrantModel):
    """Containers; `pull`/`run` are image-tag patterns, `registry` restricts the registry."""

    logs: bool = True
    pull: StrList | None = None
    run: StrList | None = None
    registry: ContainerRegistryGrant | None = None
    use_containers: bool = True

    def can_pull(self, tag: str) -> bool:
        """`pull` patterns (exact, or prefix with a trailing `*`)."""
        return matches_grant_pattern(self.pull, tag, allow_if_unset=True)

    def can_run(self, tag: str) -> bool:
        """`run` patterns."""
        return matches_grant_pattern(self.run, tag, allow_if_unset=True)

    def can_registry_list(self, repository: str) -> bool:
        """Unrestricted without `registry`, else `registry.can_list`."""
        return self.registry is None or self.registry.can_list(repository)

    def can_registry_pull(self, repository: str) -> bool:
        """Unrestricted without `registry`, else `registry.can_pull`."""
        return self.registry is None or self.registry.can_pull(repository)

    def can_registry_run(self, repository: str) -> bool:
        """Unrestricted without `registry`, else `registry.can_run`."""
        return self.registry is None or self.registry.can_run(repository)

    def can_registry_write(self, repository: str) -> bool:
        """Unrestricted without `registry`, else `registry.can_write`."""
        return self.registry is None or self.registry.can_write(repository)


class DeveloperGrant(GrantModel):
    """Developer logs."""

    logs: bool = True


class AgentsGrant(GrantModel):
    """Agent and toolkit flags (enforced by the room server)."""

    register_agent: bool = True
    register_public_toolkit: bool = True
    register_private_toolkit: bool = True
    call: bool = True
    use_agents: bool = True
    use_tools: bool = True
    allowed_toolkits: StrList | None = None


class LLMGrant(GrantModel):
    """LLM router access; `models` holds `provider/model` patterns, `None` = unrestricted."""

    models: StrList | None = None

    def can_use_provider(self, provider: str) -> bool:
        """Some (trimmed) pattern starts with `provider/`."""
        provider = provider.strip()
        if provider == "":
            return False
        if self.models is None:
            return True
        prefix = provider + "/"
        return any(pattern.strip().startswith(prefix) for pattern in self.models)

    def can_use_model(self, *, provider: str, model: str) -> bool:
        """`provider/model` (both trimmed, non-empty) matches a pattern."""
        provider = provider.strip()
        model = model.strip()
        if provider == "" or model == "":
            return False
        return matches_grant_pattern(self.models, f"{provider}/{model}", allow_if_unset=True)


class AdminGrant(GrantModel):
    """Room configuration."""

    config: bool = True


class SecretsGrant(GrantModel, forbid_unknown_fields=True):
    """Secrets (no fields in 0.56; the legacy `request_oauth_token` is rejected)."""


class TunnelsGrant(GrantModel):
    """Tunnels; `ports=None` allows every port (enforced by the room server)."""

    ports: StrList | None = None


class ServicesGrant(GrantModel):
    """Services listing."""

    list: bool = True
