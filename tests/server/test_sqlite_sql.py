"""The `sqlite` toolkit's handling of the caller's SQL: parameters (record values) as bound
values, the scan that finds parameters for the type probe, and the authorizer — the statements it
refuses whatever the grant, and per-table grants enforced through views and triggers."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meshagent_core import BinaryContent, RoomException
from meshagent_core.client.sqlite import wire_params
from meshagent_core.tokens import ApiScope
from meshagent_core.tokens.grants import SqliteDatabaseGrant, SqliteGrant, SqliteTableGrant
from meshagent_trio.connection import RoomConnection
from meshagent_trio.server.toolkits.sqlite_sql import parameters, without_parameters
from meshagent_trio.server.toolkits.sqlite_types import format_timestamp
from roomtest import mint, room_url

VALUES = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)  # JSON has neither
    | st.text(max_size=10)
    | st.binary(max_size=10)
    | st.uuids()
    | st.dates()
    | st.datetimes(timezones=st.none() | st.just(dt.timezone.utc))
)


def stored(value: Any) -> Any:
    """How SQLite gets a value bound as a parameter."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dt.datetime):
        return format_timestamp(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


@settings(deadline=None, max_examples=200)
@given(positional=st.lists(VALUES, max_size=5), named=st.dictionaries(st.text(min_size=1, max_size=5), VALUES, max_size=5))
def test_parameters_round_trip_from_the_client(positional: list[Any], named: dict[str, Any]) -> None:
    import msgspec

    for params, expected in ((positional, [stored(v) for v in positional]), (named, {k: stored(v) for k, v in named.items()})):
        wire = msgspec.json.decode(msgspec.json.encode(wire_params(params)))  # as it travels
        assert parameters(wire) == expected
    assert parameters(None) == []
    assert parameters([{"json": {"a": [1]}}]) == ['{"a":[1]}']
    with pytest.raises(RoomException):
        parameters([[1, 2]])  # a bare array is not a value
    with pytest.raises(RoomException):
        parameters([{"a": 1, "b": 2}])


def test_the_parameter_scan_leaves_strings_identifiers_and_comments_alone() -> None:
    text, first = without_parameters("SELECT '?', \"a:b\", [x?], `@y` -- ? :c\nFROM t WHERE a = ? AND b = :name AND c = @v AND d = $w AND e = ?12 /* :z */")
    assert first == "SELECT"
    assert text == "SELECT '?', \"a:b\", [x?], `@y` -- ? :c\nFROM t WHERE a = NULL AND b = NULL AND c = NULL AND d = NULL AND e = NULL /* :z */"
    assert without_parameters("  with x as (select 1) select * from x")[1] == "WITH"
    assert without_parameters("'it''s ?'")[0] == "'it''s ?'"


@settings(deadline=None, max_examples=200)
@given(st.text(max_size=40))
def test_the_parameter_scan_keeps_text_without_parameters(sql: str) -> None:
    text, first = without_parameters(sql)
    assert first == first.upper()
    if not set(sql) & set("?:@$"):
        assert text == sql


# --- the authorizer, over real sockets --------------------------------------------------------

ROOM = "test-room"


def join(server, credentials, name: str = "alice", scope: ApiScope | None = None):
    return RoomConnection.open(room_url(server, ROOM), mint(credentials, ROOM, name=name, scope=scope))


async def run(room: RoomConnection, query: str, tool: str = "execute_sql_statement") -> Any:
    return await room.invoke("sqlite", tool, BinaryContent(headers={"database": "app", "query": query, "params": None, "namespace": None}))


async def refused(room: RoomConnection, query: str, code: int, text: str) -> None:
    for tool in ("execute_sql_statement", "execute_sql"):  # on the writer, and tried as a read first
        with pytest.raises(RoomException) as raised:
            await run(room, query, tool)
        assert raised.value.code == code and text in raised.value.message, (query, tool, raised.value)


async def test_statements_refused_whatever_the_grant(server, credentials, tmp_path: Path) -> None:
    target = tmp_path / "copy.db"
    async with join(server, credentials) as room:
        await room.invoke("sqlite", "create_database", {"name": "app", "namespace": None, "mode": "create"})
        await run(room, "CREATE TABLE t (x INTEGER)")
        await refused(room, f"ATTACH DATABASE '{target}' AS other", 1002, "ATTACH")
        await refused(room, f"VACUUM INTO '{target}'", 1002, "VACUUM")
        await refused(room, "VACUUM", 1002, "VACUUM")
        await refused(room, "DETACH DATABASE main", 1002, "DETACH")
        await refused(room, "BEGIN", 1002, "transaction")
        await refused(room, "COMMIT", 1002, "transaction")
        await refused(room, "SAVEPOINT s", 1002, "savepoints")
        await refused(room, "CREATE TEMP TABLE x (a)", 1002, "temporary tables")
        await refused(room, "CREATE TEMP VIEW v AS SELECT 1", 1002, "temporary views")
        await refused(room, "PRAGMA journal_mode = DELETE", 1002, "may be read, not set")
        await refused(room, "PRAGMA synchronous = OFF", 1002, "may be read, not set")
        await refused(room, "PRAGMA writable_schema = ON", 1002, "PRAGMA writable_schema")
        await refused(room, "PRAGMA database_list", 1002, "PRAGMA database_list")  # would show server paths
        await refused(room, "SELECT load_extension('x')", 1002, "load_extension")
        await refused(room, "UPDATE sqlite_master SET sql = ''", 1002, "")
        await refused(room, "SELECT 1; SELECT 2", 1002, "one statement at a time")
        assert not target.exists()
        # What stays allowed: reading the schema, informational pragmas, user_version.
        await run(room, "SELECT name FROM sqlite_schema", "execute_sql")
        await run(room, "PRAGMA table_info(t)", "execute_sql")
        await run(room, "PRAGMA user_version = 3")
        answer = await run(room, "CREATE VIRTUAL TABLE docs USING fts5(body)")
        assert answer.json == {"rows_affected": 0}


async def test_table_grants_hold_through_views_and_triggers(server, credentials) -> None:
    async with join(server, credentials) as admin:
        await admin.invoke("sqlite", "create_database", {"name": "app", "namespace": None, "mode": "create"})
        for statement in (
            "CREATE TABLE public (x INTEGER)",
            "CREATE TABLE secret (x INTEGER)",
            "INSERT INTO secret VALUES (42)",
            "CREATE VIEW leak AS SELECT x FROM secret",
            "CREATE TRIGGER copy AFTER INSERT ON public BEGIN INSERT INTO secret VALUES (new.x); END",
        ):
            await run(admin, statement)
    grant = SqliteGrant(
        databases=[SqliteDatabaseGrant(name="app", tables=[SqliteTableGrant(database="app", table="public", read=True, write=True)])]
    )
    async with join(server, credentials, name="limited", scope=ApiScope(sqlite=grant)) as room:
        with pytest.raises(RoomException) as raised:
            await run(room, "SELECT * FROM leak", "execute_sql")
        assert raised.value.code == 1001 and "secret" in raised.value.message
        with pytest.raises(RoomException) as raised:  # the trigger would write to secret
            await run(room, "INSERT INTO public VALUES (1)")
        assert raised.value.code == 1001 and "secret" in raised.value.message
        with pytest.raises(RoomException) as raised:
            await run(room, "CREATE INDEX i ON secret (x)")
        assert raised.value.code == 1001
    async with join(server, credentials) as admin:
        counted = await admin.invoke("sqlite", "count", {"database": "app", "table": "public", "where": None, "params": None, "namespace": None})
        assert counted.json == {"count": 0}
