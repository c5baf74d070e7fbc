"""SQL over a room's Lance tables, run by DuckDB (protocol/room-apis.md §14.5).

Each `execute_sql` gets its own in-memory DuckDB connection, with external access (files,
URLs, extensions) disabled and its configuration locked, so a query sees only what the server
registers in it: every table of the request's namespace and branch the caller may read (by
name), and the request's `tables` references (by `alias` or name; each with its own namespace,
branch and version). DuckDB scans the Lance datasets as Arrow datasets, pushing filters and
projections down. `$name` parameters take their values from the one row of the parameters table.

One statement per request (DuckDB's parser says how many there are and of which type):

* `SELECT` (any query, `WITH … SELECT`, `VALUES`): opens a result set read with
  `read_sql_query`, one Arrow batch per pull (`DuckCursor`).
* `INSERT INTO t …`: DuckDB computes the rows (into a temporary table shaped like `t`, a copy
  of `t` when the statement also reads `t`); they are appended to the Lance table in one commit.
* `DELETE FROM t …`: DuckDB runs the delete on a copy of `t` that carries Lance's row ids; the
  rows it removed are deleted from the Lance table in one commit (by row id).
* Anything else, `UPDATE` included, is refused (1002): an update changes rows in place, which
  Lance does only by SQL expressions per column (`datasets.update(table, where, values)`).

The target of `INSERT`/`DELETE` is found in DuckDB's token stream (the identifier after
`INSERT INTO` / `DELETE FROM`); it must be a table of the request's namespace and branch that
the caller may write. A statement copies at most `MAX_STATEMENT_ROWS` rows of its target.
Everything here blocks: the toolkit runs it in worker threads.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Callable

from meshagent_core import ErrorCode, RoomException
from meshagent_core.toolkits.arrow_ipc import ArrowDataError, read_stream
from meshagent_core.toolkits.dataset import SqlTableRef

from .dataset_rows import conform
from .dataset_store import DatasetStore, branch_key, check_name, check_namespace, invalid, lance_error, not_found

#: Rows of one batch of a result set.
RESULT_BATCH_ROWS = 8192
#: Rows a SQL INSERT that reads its own target, or a SQL DELETE, may copy into DuckDB.
MAX_STATEMENT_ROWS = 2_000_000
#: DuckDB's threads and memory (shared by every query of the process).
DUCKDB_THREADS = 2
DUCKDB_MEMORY = "1GB"

#: May the caller read / write a table: (namespace, table) -> bool.
Allowed = Callable[[tuple[str, ...], str], bool]


def _duckdb() -> Any:
    import duckdb

    return duckdb


_database: Any = None
_database_lock = threading.Lock()


def database() -> Any:
    """The process's DuckDB database (in memory, made on first use): external access (files,
    URLs, extensions) disabled, its configuration locked. Each request gets its own connection
    to it (`connect`), whose registered tables and temporary tables no other request sees;
    nothing else can be created in it (only SELECT, INSERT and DELETE are run)."""
    global _database
    with _database_lock:
        if _database is None:
            duckdb = _duckdb()
            database = duckdb.connect(
                config={
                    "enable_external_access": False,
                    "autoinstall_known_extensions": False,
                    "autoload_known_extensions": False,
                    "threads": DUCKDB_THREADS,
                    "memory_limit": DUCKDB_MEMORY,
                }
            )
            database.execute("SET enable_progress_bar = false")
            database.execute("SET lock_configuration = true")
            _database = database
        return _database


def connect() -> Any:
    """A connection of its own for one request (a DuckDB cursor: cheap, unlike a database)."""
    return database().cursor()


def _sql_error(error: BaseException) -> Exception:
    text = str(error).strip()
    return invalid(f"sql error: {text}")


def _arrow_table(relation: Any) -> Any:
    """A relation's rows as an Arrow table (`to_arrow_table` in DuckDB 1.4+, `fetch_arrow_table`
    before)."""
    return (getattr(relation, "to_arrow_table", None) or relation.fetch_arrow_table)()


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@dataclass
class Parsed:
    kind: str  # "query" | "insert" | "delete"
    parameters: set[str]
    target: str | None = None
    target_mentions: int = 0


def parse(query: str) -> Parsed:
    """What the one statement of `query` is (1002 for none, several, or an unsupported kind)."""
    duckdb = _duckdb()
    try:
        statements = duckdb.extract_statements(query)
    except Exception as error:
        raise _sql_error(error) from None
    if len(statements) != 1:
        raise invalid(f"a sql request holds exactly one statement, this one holds {len(statements)}")
    statement = statements[0]
    kind = statement.type.name
    parameters = set(statement.named_parameters)
    if kind == "SELECT":
        return Parsed("query", parameters)
    if kind in ("INSERT", "DELETE"):
        target, mentions = _target(query, kind)
        return Parsed(kind.lower(), parameters, target, mentions)
    if kind == "UPDATE":
        raise invalid("UPDATE statements are not supported on dataset tables: use datasets.update(table=…, where=…, values=…)")
    raise invalid(f"{kind} statements are not supported: a dataset sql request is a SELECT, INSERT or DELETE")


def _identifier(text: str) -> str:
    if len(text) >= 2 and text[0] == '"' and text[-1] == '"':
        return text[1:-1].replace('""', '"')
    return text


def _target(query: str, kind: str) -> tuple[str, int]:
    """The table after `INSERT [OR …] INTO` / `DELETE FROM` at the top level, and how often that
    name appears as an identifier in the statement."""
    duckdb = _duckdb()
    tokens = duckdb.tokenize(query)
    words: list[tuple[str, str]] = []
    for index, (position, token_type) in enumerate(tokens):
        end = tokens[index + 1][0] if index + 1 < len(tokens) else len(query)
        words.append((query[position:end].strip(), token_type.name))
    depth = 0
    target_index = None
    for index, (word, token_type) in enumerate(words):
        if word == "(":
            depth += 1
        elif word == ")":
            depth -= 1
        elif depth == 0 and token_type == "keyword" and word.upper() == kind:
            follow = "INTO" if kind == "INSERT" else "FROM"
            for later in range(index + 1, len(words)):
                if words[later][1] == "keyword" and words[later][0].upper() == follow:
                    target_index = later + 1
                    break
            break
    if target_index is None or target_index >= len(words) or words[target_index][1] not in ("identifier", "keyword"):
        raise invalid(f"could not find the table of the {kind} statement")
    parts = [_identifier(words[target_index][0])]
    while target_index + 2 < len(words) and words[target_index + 1][0] == ".":
        target_index += 2
        parts.append(_identifier(words[target_index][0]))
    target = parts[-1]
    mentions = sum(1 for word, token_type in words if token_type in ("identifier", "keyword") and _identifier(word).lower() == target.lower())
    return target, mentions


def parameters_of(data: bytes, wanted: set[str]) -> dict[str, Any]:
    """The `$name` values: one row of an Arrow IPC stream (or nothing when `data` is empty)."""
    if not data:
        if wanted:
            raise invalid(f"the query has parameters ({', '.join(sorted('$' + name for name in wanted))}) but no values were sent")
        return {}
    try:
        table = read_stream(data)
    except ArrowDataError as error:
        raise invalid(f"the parameters are not an Arrow IPC stream: {error}") from None
    if table.num_columns and table.num_rows != 1:
        raise invalid(f"the parameters table holds one row, this one holds {table.num_rows}")
    values = {name: table.column(name)[0].as_py() for name in table.column_names}
    missing = sorted(wanted - set(values))
    if missing:
        raise invalid(f"no value for the parameter(s) {', '.join('$' + name for name in missing)}")
    return {name: value for name, value in values.items() if name in wanted}


class DuckCursor:
    """An open result set (a `QueryCursor` of `open_queries`). The query runs when the first
    batch is fetched, so a long one can be cancelled (`interrupt`) once it is registered."""

    def __init__(self, connection: Any, relation: Any) -> None:
        self.connection = connection
        self.relation = relation
        try:
            self.schema = _arrow_table(relation.limit(0)).schema
        except Exception as error:
            raise _sql_error(error) from None
        self.reader: Any = None
        self._pending: Any = None

    def _open_reader(self) -> Any:
        reader = getattr(self.relation, "to_arrow_reader", None) or self.relation.fetch_arrow_reader
        return reader(RESULT_BATCH_ROWS)

    def fetch(self, max_rows: int | None) -> Any:
        limit = max_rows if max_rows and max_rows > 0 else RESULT_BATCH_ROWS
        batch = self._pending
        self._pending = None
        try:
            if self.reader is None:
                self.reader = self._open_reader()
            while batch is None or batch.num_rows == 0:
                batch = self.reader.read_next_batch()
        except StopIteration:
            return None
        except Exception as error:
            raise _sql_error(error) from None
        if batch.num_rows > limit:
            self._pending = batch.slice(limit)
            batch = batch.slice(0, limit)
        return batch

    def interrupt(self) -> None:
        self.connection.interrupt()

    def close(self) -> None:
        try:
            if self.reader is not None:
                self.reader.close()
        finally:
            self.connection.close()


class SqlRequest:
    """One SQL request over a store: the registered tables and the statement."""

    def __init__(
        self,
        store: DatasetStore,
        namespace: list[str] | None,
        branch: str | None,
        tables: list[SqlTableRef],
        can_read: Allowed,
        can_write: Allowed,
    ) -> None:
        self.store = store
        self.namespace = check_namespace(namespace)
        self.branch = branch_key(branch)
        self.refs = tables
        self.can_read = can_read
        self.can_write = can_write
        self.datasets: dict[str, Any] = {}

    def _register(self, connection: Any) -> None:
        store = self.store
        store.require_branch(self.namespace, self.branch)
        for name in store.list_tables(self.namespace, self.branch):
            if self.can_read(self.namespace, name):
                self.datasets[name] = store.open(self.namespace, name, self.branch)
        for ref in self.refs:
            namespace = check_namespace(ref.namespace) if ref.namespace is not None else self.namespace
            name = check_name(ref.name)
            if not self.can_read(namespace, name):
                raise _denied(name)
            branch = branch_key(ref.branch) if ref.branch is not None else self.branch
            self.datasets[ref.alias or name] = store.open(namespace, name, branch, ref.version)
        for alias, dataset in self.datasets.items():
            connection.register(alias, dataset)

    def open(self, query: str, data: bytes) -> tuple[str, Any]:
        """Run the statement: ("query", DuckCursor) or ("statement", rows_affected)."""
        parsed = parse(query)
        parameters = parameters_of(data, parsed.parameters)
        connection = connect()
        try:
            self._register(connection)
            if parsed.kind == "query":
                try:
                    relation = connection.sql(query, params=parameters or None)
                except Exception as error:
                    raise _sql_error(error) from None
                return "query", DuckCursor(connection, relation)
            rows = self._statement(connection, parsed, query, parameters)
            connection.close()
            return "statement", rows
        except BaseException:
            connection.close()
            raise

    def _target_dataset(self, parsed: Parsed) -> tuple[str, Any]:
        assert parsed.target is not None
        name = parsed.target
        matches = [alias for alias in self.datasets if alias.lower() == name.lower()]
        if not matches:
            raise not_found(f"table {name!r} does not exist")
        alias = matches[0]
        if not self.can_write(self.namespace, alias) or any(ref.alias == alias or (ref.alias is None and ref.name == alias) for ref in self.refs if ref.version is not None):
            raise _denied(alias, "write")
        if not self.store.exists(self.namespace, alias, self.branch):
            raise invalid(f"{alias!r} is not a table of the request's namespace and branch, so it cannot be written")
        return alias, self.store.open(self.namespace, alias, self.branch)

    def _statement(self, connection: Any, parsed: Parsed, query: str, parameters: dict[str, Any]) -> int:
        alias, dataset = self._target_dataset(parsed)
        quoted = _quote(alias)
        connection.unregister(alias)
        source = "__meshagent_source"
        if parsed.kind == "insert":
            copy_rows = parsed.target_mentions > 1
            if copy_rows:
                self._check_size(dataset)
            connection.register(source, dataset)
            connection.execute(f"CREATE TEMP TABLE {quoted} AS SELECT * FROM {source}" + ("" if copy_rows else " LIMIT 0"))
            before = connection.execute(f"SELECT count(*) FROM {quoted}").fetchone()[0]
            rows = self._run(connection, query, parameters)
            added = _arrow_table(connection.sql(f"SELECT * FROM {quoted} WHERE rowid >= {int(before)}"))
            if added.num_rows:
                try:
                    table = conform(added, dataset.schema)
                    import lance

                    lance.write_dataset(table, dataset, mode="append")
                except (OSError, ValueError, RuntimeError) as error:
                    raise lance_error("the inserted rows do not fit the table", error) from None
            return rows
        self._check_size(dataset)
        connection.register(source, dataset.scanner(with_row_id=True).to_reader())
        connection.execute(f"CREATE TEMP TABLE {quoted} AS SELECT * FROM {source}")
        connection.execute(f"CREATE TEMP TABLE __meshagent_ids AS SELECT _rowid FROM {quoted}")
        rows = self._run(connection, query, parameters)
        gone = [row[0] for row in connection.execute(f"SELECT _rowid FROM __meshagent_ids EXCEPT SELECT _rowid FROM {quoted}").fetchall()]
        if gone:
            try:
                dataset.delete("_rowid IN (" + ", ".join(str(int(row_id)) for row_id in gone) + ")")
            except (OSError, ValueError, RuntimeError) as error:
                raise lance_error("the delete failed", error) from None
        return rows

    def _check_size(self, dataset: Any) -> None:
        if dataset.count_rows() > MAX_STATEMENT_ROWS:
            raise invalid(
                f"a sql statement may work on tables of at most {MAX_STATEMENT_ROWS} rows: use datasets.insert / datasets.delete instead"
            )

    def _run(self, connection: Any, query: str, parameters: dict[str, Any]) -> int:
        try:
            result = connection.execute(query, parameters or None).fetchall()
        except Exception as error:
            raise _sql_error(error) from None
        return int(result[0][0]) if result and result[0] and isinstance(result[0][0], int) else 0


def _denied(name: str, action: str = "read") -> Exception:
    return RoomException(f"you do not have permission to {action} table {name!r}", code=ErrorCode.PERMISSION_DENIED)


__all__ = ["DuckCursor", "SqlRequest", "parse", "parameters_of"]
