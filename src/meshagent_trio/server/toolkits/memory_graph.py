"""`query`: Cypher over a memory's graph, run by the embedded graph database Kùzu
(protocol/room-apis.md §15.3).

**Why Kùzu.** The graph engine made for Lance (`lance-graph`) is published as source only and
needs a Rust toolchain and crates.io to build, which a development machine (or CI) cannot be
assumed to have; Kùzu is an embedded, in-process Cypher database with binary wheels that reads
Arrow tables directly. The graph is *derived* from the memory's Lance datasets — they stay the
one place data is written — and loaded into an in-memory Kùzu database:

* node table `Entity` (primary key `entity_id`) from `entity.lance`;
* node table `Relationship` from `relationship.lance`, one node per relationship row (the
  official memories tools read relationships as `MATCH (r:RELATIONSHIP) …`);
* one relationship table per relationship type (`RELATED_TO`, `MENTIONS`, `WORKS_AT`, …) from
  `Entity` to `Entity`, with every column of the relationship row as a property — for
  `MATCH (a:Entity)-[r:RELATED_TO]->(b:Entity)` and paths like `-[:RELATED_TO*1..3]->`. A row
  whose source or target entity does not exist has no edge (it is still a `Relationship` node);
* a node table per table of `upsert_table`, labelled with the table's name.

Labels are case-insensitive (`RELATIONSHIP`, `Relationship`). A label the memory has no data
for is refused with 1003 "dataset '<label>' not found" — for an empty memory "dataset 'entity'
not found", the text the official memories tools treat as "no memories yet".

**Caching.** Loading costs far more than querying, so a loaded database is kept per memory,
keyed by the memory's id and the version of each of its datasets; a query after no change
reuses it, any write makes the next query reload. At most `MAX_GRAPHS` graphs are kept per room
(least recently used go first), each with a buffer pool of `BUFFER_POOL` bytes and at most
`MAX_DB_SIZE` bytes of address space. Measured here (2 shared cores, Kùzu 0.11.3, pylance 14)
for 10,000 entities and 30,000 relationships of three types: loading the graph took 0.7 s (reading the Lance tables, creating the tables, copying the
Arrow data in); a query on the cached graph then takes 1–3 ms including the version check (a
count over all entities 0.7 ms, a filtered one-hop count 1.3 ms, every entity within two hops of
one 2.5 ms, `ORDER BY … LIMIT 20` 1.6 ms) — the load is some 300 times a query, which is why the
cache is there.

**Read-only.** Writes go through the upserts, so a statement that would write is refused with
1002 before it runs: any of CREATE, MERGE, SET, DELETE, DETACH, REMOVE, DROP, ALTER, COPY, LOAD,
INSTALL, ATTACH, USE, IMPORT, EXPORT, BEGIN, COMMIT, ROLLBACK, CHECKPOINT or CALL outside string
literals, comments and property names (COPY and LOAD would also reach the server's files), and
more than one statement. The statement then runs inside a read-only transaction, so the engine
itself refuses any write the check did not see.

**Results** are `{"results": [row, …]}`, a row an object of the returned columns, values in the
§12.1 wire form: nodes and relationships as structs of their properties and `_label`
(Kùzu's internal ids left out), maps and structs as structs, lists as lists, dates and
timestamps (UTC) wrapped. Bounds: `MAX_ROWS` rows (1002 past that: add a `LIMIT`), and
`QUERY_TIMEOUT` seconds per statement (1009).
"""

from __future__ import annotations

import importlib
import math
import re
import threading
import uuid
from collections import OrderedDict
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from meshagent_core import ErrorCode, RoomException
from meshagent_core.toolkits.records import DatasetStruct, encode_record_value

from .memory_store import ENTITY, RELATIONSHIP, MemoryRef, MemoryStore, invalid

MAX_GRAPHS = 4
BUFFER_POOL = 256 * 1024 * 1024
#: The address space a database reserves (Kùzu's default, 8 TiB, exhausts a process's address
#: space after a dozen databases); a graph larger than this fails to load with 1008.
MAX_DB_SIZE = 1 << 32
MAX_THREADS = 2
MAX_ROWS = 10_000
QUERY_TIMEOUT = 30.0
MAX_STATEMENT = 64 * 1024
#: Properties Kùzu adds to node and relationship values that mean nothing outside it.
INTERNAL_KEYS = frozenset({"_id", "_src", "_dst", "_row"})
ROW_KEY = "_row"

WRITE_WORDS = frozenset(
    "CREATE MERGE SET DELETE DETACH REMOVE DROP ALTER COPY LOAD INSTALL ATTACH USE IMPORT EXPORT BEGIN COMMIT ROLLBACK CHECKPOINT CALL".split()
)
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_MISSING_TABLE = re.compile(r"Table (\S+?) does not exist")


def kuzu_module() -> Any:
    """The `kuzu` module; 1007 when the server was installed without it."""
    importlib.import_module("importlib.util")  # Kùzu's scan of Arrow parameters uses it unimported
    try:
        import kuzu
    except ImportError:
        raise RoomException(
            "memory.query needs the kuzu package on the server: pip install 'meshagent-trio[server]'", code=ErrorCode.DEPENDENCY_MISSING
        ) from None
    return kuzu


# --- the read-only check ---------------------------------------------------------------------


def _code_words(statement: str) -> tuple[list[str], bool]:
    """The words of `statement` outside literals, comments and property names (upper case),
    and whether a `;` is followed by more code."""
    words: list[str] = []
    more_after_semicolon = False
    seen_semicolon = False
    index, length = 0, len(statement)
    previous = ""
    while index < length:
        character = statement[index]
        if character in "'\"`":
            end = index + 1
            while end < length and statement[end] != character:
                end += 2 if statement[end] == "\\" else 1
            index = end + 1
            previous = character
            continue
        if statement.startswith("//", index) or statement.startswith("--", index):
            newline = statement.find("\n", index)
            index = length if newline < 0 else newline + 1
            continue
        if statement.startswith("/*", index):
            close = statement.find("*/", index + 2)
            index = length if close < 0 else close + 2
            continue
        if character == ";":
            seen_semicolon = True
            index += 1
            continue
        if character.isspace():
            index += 1
            continue
        if seen_semicolon:
            more_after_semicolon = True
        match = _WORD.match(statement, index)
        if match:
            if previous != ".":
                words.append(match.group().upper())
            index = match.end()
            previous = "w"
            continue
        previous = character
        index += 1
    return words, more_after_semicolon


def check_read_only(statement: str) -> str:
    """The statement if it may run (see the module docstring); 1002 otherwise."""
    if not statement.strip():
        raise invalid("the statement is empty")
    if len(statement) > MAX_STATEMENT:
        raise invalid(f"the statement is longer than {MAX_STATEMENT} characters")
    words, more = _code_words(statement)
    if more:
        raise invalid("memory.query runs one statement at a time")
    for word in words:
        if word in WRITE_WORDS:
            raise invalid(
                f"memory.query runs read-only graph queries: {word} is not allowed (the graph is derived from the memory's "
                "datasets: write with upsert_nodes, upsert_relationships or upsert_table)"
            )
    return statement.strip().rstrip(";").strip()


# --- loading -----------------------------------------------------------------------------------


def _ident(name: str) -> str:
    return "`" + name.replace("`", "") + "`"


def _kuzu_type(arrow_type: Any) -> str | None:
    """The Kùzu type of an Arrow type, or None when it has none (the column is cast to text)."""
    import pyarrow as pa

    t = arrow_type
    simple = [
        (pa.types.is_boolean, "BOOLEAN"), (pa.types.is_int8, "INT8"), (pa.types.is_int16, "INT16"), (pa.types.is_int32, "INT32"),
        (pa.types.is_int64, "INT64"), (pa.types.is_uint8, "UINT8"), (pa.types.is_uint16, "UINT16"), (pa.types.is_uint32, "UINT32"),
        (pa.types.is_uint64, "UINT64"), (pa.types.is_float32, "FLOAT"), (pa.types.is_float64, "DOUBLE"), (pa.types.is_date32, "DATE"),
        (pa.types.is_timestamp, "TIMESTAMP"), (pa.types.is_string, "STRING"), (pa.types.is_large_string, "STRING"),
        (pa.types.is_binary, "BLOB"), (pa.types.is_large_binary, "BLOB"),
    ]  # fmt: skip
    for test, name in simple:
        if test(t):
            return name
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        inner = _kuzu_type(t.value_type)
        return None if inner is None else f"{inner}[]"
    if pa.types.is_struct(t):
        fields = [(t.field(index).name, _kuzu_type(t.field(index).type)) for index in range(t.num_fields)]
        if not fields or any(kind is None or not _IDENTIFIER.match(name) for name, kind in fields):
            return None
        return "STRUCT(" + ", ".join(f"{name} {kind}" for name, kind in fields) + ")"
    if pa.types.is_map(t):
        key, value = _kuzu_type(t.key_type), _kuzu_type(t.item_type)
        return None if key is None or value is None else f"MAP({key}, {value})"
    return None


def _graph_columns(table: Any) -> tuple[Any, list[tuple[str, str]]]:
    """The table with columns Kùzu can hold (others as text; duplicate names, names Kùzu cannot
    spell and `_row` dropped), and their (name, Kùzu type)."""
    import pyarrow as pa

    arrays, fields, columns, seen = [], [], [], set()
    for index, field in enumerate(table.schema):
        name = field.name
        if not name or "`" in name or name.lower() in seen or name == ROW_KEY:
            continue
        seen.add(name.lower())
        column = table.column(index)
        kind = _kuzu_type(field.type)
        if kind is None:
            column = pa.array([None if value is None else str(value) for value in column.to_pylist()], pa.string())
            kind = "STRING"
        if pa.types.is_timestamp(field.type) and field.type.tz is not None:
            column = column.cast(pa.timestamp(field.type.unit))
        arrays.append(column)
        fields.append(pa.field(name, column.type))
        columns.append((name, kind))
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields)), columns


def _with_row_numbers(table: Any) -> Any:
    import pyarrow as pa

    return table.append_column(ROW_KEY, pa.array(range(len(table)), pa.int64()))


class Graph:
    """A memory's graph loaded into an in-memory Kùzu database."""

    def __init__(self, database: Any, labels: frozenset[str]) -> None:
        self.database = database
        self.labels = labels

    def run(self, statement: str, memory: str) -> list[dict[str, Any]]:
        """Rows of a checked statement, §12.1-encoded (blocking)."""
        kuzu = kuzu_module()
        connection = kuzu.Connection(self.database)
        try:
            connection.set_query_timeout(int(QUERY_TIMEOUT * 1000))
            connection.execute("BEGIN TRANSACTION READ ONLY")
            try:
                result = connection.execute(statement)
            except RuntimeError as error:
                raise _query_error(str(error), memory) from None
            if isinstance(result, list):  # more than one statement after all
                raise invalid("memory.query runs one statement at a time")
            columns = result.get_column_names()
            rows = []
            while result.has_next():
                if len(rows) >= MAX_ROWS:
                    raise invalid(f"the query returned more than {MAX_ROWS} rows: add a LIMIT")
                values = result.get_next()
                rows.append({column: encode_record_value(_value(value)) for column, value in zip(columns, values)})
            return rows
        finally:
            connection.close()


def _query_error(text: str, memory: str) -> RoomException:
    text = text.strip()
    missing = _MISSING_TABLE.search(text)
    if missing:
        label = missing.group(1).strip("`.").lower()
        return RoomException(f"dataset '{label}' not found in memory {memory}", code=ErrorCode.NOT_FOUND)
    if "interrupt" in text.lower() or "timeout" in text.lower():
        return RoomException(f"the query took longer than {QUERY_TIMEOUT:g} s", code=ErrorCode.TIMEOUT)
    if "read-only" in text:
        return invalid(f"memory.query runs read-only graph queries: {text}")
    return invalid(f"invalid graph query: {text}")


def _value(value: Any) -> Any:
    """A Kùzu value as a record value (see `encode_record_value`)."""
    if value is None or isinstance(value, (bool, int, str, bytes, uuid.UUID)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return DatasetStruct({str(key): _value(item) for key, item in value.items() if key not in INTERNAL_KEYS})
    if isinstance(value, (list, tuple)):
        return [_value(item) for item in value]
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)
    if isinstance(value, date):
        return value
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, timedelta):
        return str(value)
    return str(value)


def build_graph(store: MemoryStore, ref: MemoryRef) -> Graph:
    """Load the memory's datasets into a new in-memory database (blocking)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    kuzu = kuzu_module()
    database = kuzu.Database(":memory:", buffer_pool_size=BUFFER_POOL, max_num_threads=MAX_THREADS, max_db_size=MAX_DB_SIZE)
    connection = kuzu.Connection(database)
    labels: set[str] = set()
    try:

        def node_table(label: str, table: Any, key: str) -> None:
            data, columns = _graph_columns(table)
            if key == ROW_KEY:
                data, columns = _with_row_numbers(data), [*columns, (ROW_KEY, "INT64")]
            definition = ", ".join(f"{_ident(name)} {kind}" for name, kind in columns)
            connection.execute(f"CREATE NODE TABLE {_ident(label)}({definition}, PRIMARY KEY({_ident(key)}))")
            if len(data):
                connection.execute(f"COPY {_ident(label)} FROM $data", {"data": data})
            labels.add(label.upper())

        entities = store.open(ref, ENTITY)
        entity_ids = None
        if entities is not None:
            entity_table = entities.to_table()
            node_table("Entity", entity_table, "entity_id")
            entity_ids = entity_table.column("entity_id")
        relationships = store.open(ref, RELATIONSHIP)
        if relationships is not None:
            relationship_table = relationships.to_table()
            node_table("Relationship", relationship_table, ROW_KEY)
            if entity_ids is not None and len(relationship_table):
                linked = relationship_table.filter(
                    pc.and_(pc.is_in(relationship_table.column("source_entity_id"), entity_ids), pc.is_in(relationship_table.column("target_entity_id"), entity_ids))
                )
                upper = pc.utf8_upper(linked.column("relationship_type"))
                for kind in sorted(set(upper.to_pylist())):
                    if kind in labels:
                        continue  # a type named like a table (refused on write; never two meanings)
                    edges = linked.filter(pc.equal(upper, kind))
                    data, columns = _graph_columns(edges)
                    endpoints = pa.table({"_from": edges.column("source_entity_id"), "_to": edges.column("target_entity_id")})
                    for name in data.column_names:
                        endpoints = endpoints.append_column(name, data.column(name))
                    definition = "".join(f", {_ident(name)} {kind_}" for name, kind_ in columns)
                    connection.execute(f"CREATE REL TABLE {_ident(kind)}(FROM Entity TO Entity{definition})")
                    connection.execute(f"COPY {_ident(kind)} FROM $data", {"data": endpoints})
                    labels.add(kind)
        for table in store.user_tables(ref):
            dataset = store.open(ref, table)
            if dataset is not None and table.upper() not in labels:
                node_table(table, dataset.to_table(), ROW_KEY)
    finally:
        connection.close()
    return Graph(database, frozenset(labels))


class GraphCache:
    """Loaded graphs of a room's memories (see the module docstring). Thread-safe."""

    def __init__(self, capacity: int = MAX_GRAPHS) -> None:
        self.capacity = capacity
        self.loads = 0
        self._graphs: OrderedDict[tuple[tuple[str, ...], str], tuple[tuple[Any, ...], Graph]] = OrderedDict()
        self._lock = threading.Lock()

    def graph(self, store: MemoryStore, ref: MemoryRef) -> Graph:
        """The memory's graph at its current versions, loaded unless cached (blocking; call it
        holding the memory's lock)."""
        key = (ref.namespace, ref.name)
        versions = store.versions(ref)
        with self._lock:
            cached = self._graphs.get(key)
            if cached is not None and cached[0] == versions:
                self._graphs.move_to_end(key)
                return cached[1]
        graph = build_graph(store, ref)
        with self._lock:
            self.loads += 1
            self._graphs[key] = (versions, graph)
            self._graphs.move_to_end(key)
            while len(self._graphs) > self.capacity:
                self._graphs.popitem(last=False)
        return graph

    def forget(self, ref: MemoryRef) -> None:
        with self._lock:
            self._graphs.pop((ref.namespace, ref.name), None)


__all__ = ["GraphCache", "MAX_ROWS", "QUERY_TIMEOUT", "build_graph", "check_read_only"]
