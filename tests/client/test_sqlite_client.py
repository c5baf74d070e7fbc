"""`room.sqlite` against the real local server (a subprocess), on Trio and on AnyIO (asyncio and
Trio): every tool of the sqlite toolkit, the errors the official client expects for bad input
(each leaving the data unchanged and the connection working), and the grants."""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from typing import AsyncIterator

import pyarrow as pa
import pytest

from meshagent_core import RoomException
from meshagent_core.client.sqlite import SqliteSqlCommand, SqliteSqlQuery, SqliteSqlStatement
from meshagent_core.toolkits.records import DatasetExpression
from meshagent_core.tokens import ApiScope
from meshagent_core.tokens.grants import SqliteDatabaseGrant, SqliteGrant, SqliteTableGrant
from roomtest import mint

pytestmark = pytest.mark.anyio


def _room(name: str, client_variant: tuple[str, str]) -> str:
    return f"sqlite-{name}-{'-'.join(client_variant)}"


async def _fails(awaitable, code: int, text: str | None = None) -> RoomException:
    with pytest.raises(RoomException) as raised:
        await awaitable
    assert raised.value.code == code, raised.value
    if text is not None:
        assert text in raised.value.message, raised.value.message
    return raised.value


USERS = pa.table(
    {
        "id": pa.array([1, 2], pa.int64()),
        "email": pa.array(["alice@example.com", "bob@example.com"]),
        "active": pa.array([1, 0], pa.int64()),
    }
)


async def test_databases(client_module, client_variant, local_server) -> None:
    room_name = _room("databases", client_variant)
    async with client_module.connect(local_server.room_url(room_name), mint(local_server.credentials, room_name)) as room:
        sqlite = room.sqlite
        assert await sqlite.list_databases(namespace=["team"]) == []
        await sqlite.create_database(name="app", namespace=["team"], replication_mode="asynchronous", flush_interval_ms=250)
        await sqlite.create_database(name="app", namespace=["other"])
        await sqlite.create_database(name="analytics", namespace=["team"])
        assert await sqlite.list_databases(namespace=["team"]) == ["analytics", "app"]
        assert await sqlite.list_databases(namespace=["other"]) == ["app"]
        assert await sqlite.list_databases() == []

        await _fails(sqlite.create_database(name="app", namespace=["team"]), 1004, "already exists")
        await sqlite.create_database(name="app", namespace=["team"], mode="create_if_not_exists")
        details = await sqlite.inspect_database(name="app", namespace=["team"])
        assert (details.name, details.namespace, details.tables) == ("app", ["team"], 0)
        assert details.size_bytes > 0

        settings = await sqlite.get_database_settings(name="app", namespace=["team"])
        assert (settings.replication_mode, settings.flush_interval_ms) == ("asynchronous", 250)
        settings = await sqlite.update_database_settings(name="app", namespace=["team"], replication_mode="synchronous")
        assert (settings.replication_mode, settings.flush_interval_ms) == ("synchronous", 250)
        assert (await sqlite.get_database_settings(name="app", namespace=["team"])) == settings
        await sqlite.flush_database(name="app", namespace=["team"])

        for bad in ("../escape", "a/b", "", ".hidden", "x" * 129):
            await _fails(sqlite.create_database(name=bad), 1002, "invalid database name")
        await _fails(sqlite.create_database(name="ok", namespace=[".."]), 1002, "invalid namespace segment")
        await _fails(sqlite.inspect_database(name="missing"), 1003, "does not exist")
        await _fails(sqlite.drop_database(name="missing"), 1003, "does not exist")
        await sqlite.drop_database(name="missing", ignore_missing=True)

        await sqlite.drop_database(name="app", namespace=["team"])
        assert await sqlite.list_databases(namespace=["team"]) == ["analytics"]
        await _fails(sqlite.list_tables(database="app", namespace=["team"]), 1003)
        assert await sqlite.list_databases(namespace=["other"]) == ["app"]  # still working


async def test_tables(client_module, client_variant, local_server) -> None:
    room_name = _room("tables", client_variant)
    async with client_module.connect(local_server.room_url(room_name), mint(local_server.credentials, room_name)) as room:
        db = room.sqlite.database("app")
        await db.create_database()
        schema = pa.schema([pa.field("id", pa.int64(), nullable=False), pa.field("payload", pa.string())])
        await db.create_table_with_schema(name="records", schema=schema)
        await db.create_table_with_schema(name="mapped", schema={"when": pa.timestamp("us", tz="UTC"), "day": pa.date32()})
        assert await db.list_tables() == ["mapped", "records"]
        assert (await db.inspect(table="records")).equals(schema)
        assert (await db.inspect(table="mapped")).equals(pa.schema({"when": pa.timestamp("us", tz="UTC"), "day": pa.date32()}))

        await _fails(db.create_table_with_schema(name="records", schema=schema), 1004, "already exists")
        await db.create_table_with_schema(name="records", schema=schema, mode="create_if_not_exists")
        await _fails(db.create_table_with_schema(name="bad", schema={"x": pa.list_(pa.int64())}), 1002, "cannot store")
        await _fails(db.create_table_with_schema(name="sqlite_master", schema=schema), 1002, "invalid table name")
        assert await db.list_tables() == ["mapped", "records"]

        await db.add_columns(table="records", new_columns={"extra": pa.float64(), "flag": pa.bool_()})
        assert (await db.inspect(table="records")).names == ["id", "payload", "extra", "flag"]
        await _fails(db.add_columns(table="records", new_columns={"extra": pa.string()}), 1004, "already exists")
        await db.drop_columns(table="records", columns=["extra"])
        assert (await db.inspect(table="records")).names == ["id", "payload", "flag"]
        await _fails(db.drop_columns(table="records", columns=["nope"]), 1002, "no such column")

        await db.rename_table(name="records", new_name="renamed")
        assert await db.list_tables() == ["mapped", "renamed"]
        await _fails(db.rename_table(name="records", new_name="x"), 1003, "does not exist")
        await _fails(db.rename_table(name="renamed", new_name="mapped"), 1004, "already exists")
        await _fails(db.inspect(table="nope"), 1003, "does not exist")
        await db.drop_table(name="renamed")
        await _fails(db.drop_table(name="renamed"), 1003)
        await db.drop_table(name="renamed", ignore_missing=True)
        assert await db.list_tables() == ["mapped"]
        assert (await db.inspect_database()).tables == 1


async def _batches(*tables: pa.Table) -> AsyncIterator[pa.RecordBatch]:
    for table in tables:
        for batch in table.to_batches():
            yield batch


async def test_rows(client_module, client_variant, local_server) -> None:
    room_name = _room("rows", client_variant)
    async with client_module.connect(local_server.room_url(room_name), mint(local_server.credentials, room_name)) as room:
        db = room.sqlite.database("app", namespace=["team"])
        await db.create_database()
        await db.create_table_with_schema(name="users", schema=USERS.schema)
        await db.insert(table="users", records=USERS)
        await db.insert(table="users", records=_batches(pa.table({"id": [3], "email": ["carol@example.com"], "active": [1]})))
        await db.insert(table="users", records=[{"id": 4, "email": "dan@example.com"}])  # records: inspect + convert
        assert await db.count(table="users") == 4
        assert await db.count(table="users", where={"active": 1}) == 2
        assert await db.count(table="users", where={"active": None}) == 1
        assert await db.count(table="users", where="id > ?", params=[2]) == 2
        assert await db.count(table="users", where="email LIKE :pattern", params={"pattern": "b%"}) == 1

        found = await db.search(table="users", where={"active": 1}, select=["email"])
        assert found.to_pylist() == [{"email": "alice@example.com"}, {"email": "carol@example.com"}]
        page = await db.search(table="users", where="id >= ?", params=[1], limit=2, offset=1, select=["id"])
        assert page.to_pylist() == [{"id": 2}, {"id": 3}]
        empty = await db.search(table="users", where={"id": 99})
        assert (empty.num_rows, empty.column_names) == (0, ["id", "email", "active"])
        async with db.search_stream(table="users", select=["id"]) as stream:
            assert sum([batch.num_rows async for batch in stream]) == 4

        assert await db.update(table="users", where="id = ?", values={"email": "a@example.com"}, params=[1]) == 1
        assert await db.update(table="users", where={"id": 2}, values={"active": DatasetExpression("active + 10")}) == 1
        assert await db.update(table="users", where="id = :id", values={"active": 7}, params={"id": 3}) == 1
        rows = (await db.sql(query="SELECT id, email, active FROM users ORDER BY id")).to_pylist()
        assert rows[:3] == [
            {"id": 1, "email": "a@example.com", "active": 1},
            {"id": 2, "email": "bob@example.com", "active": 10},
            {"id": 3, "email": "carol@example.com", "active": 7},
        ]
        assert await db.delete(table="users", where="id > ?", params=[2]) == 2
        assert await db.count(table="users") == 2

        # Bad input: the official codes, nothing changed, the connection keeps working.
        await _fails(db.insert(table="users", records=pa.table({"id": ["x"]})), 1002, "holds int64 values")
        await _fails(db.insert(table="users", records=pa.table({"id": [9], "nope": [1]})), 1002, "no column named")
        await _fails(db.insert(table="missing", records=USERS), 1003, "does not exist")
        await _fails(db.update(table="users", where="id = 1", values={"active": "yes"}), 1002, "holds int64 values")
        await _fails(db.update(table="users", where="id = 1", values={"nope": 1}), 1002, "no such column")
        await _fails(db.count(table="users", where={"nope": 1}), 1002, "no such column")
        await _fails(db.count(table="users", where="nope = 1"), 1002, "no such column")
        await _fails(db.count(table="users", where="id = 1); DROP TABLE users; --"), 1002, "one statement")
        await _fails(db.delete(table="users", where="1 = 1; DELETE FROM users"), 1002)
        await _fails(db.search(table="users", select=["nope"]), 1002, "no such column")
        await _fails(db.search(table="users", where="id = ?", params=[{"bad": 1}]), 1002)
        assert await db.count(table="users") == 2
        assert await db.list_tables() == ["users"]


async def test_value_types(client_module, client_variant, local_server) -> None:
    room_name = _room("types", client_variant)
    async with client_module.connect(local_server.room_url(room_name), mint(local_server.credentials, room_name)) as room:
        db = room.sqlite.database("app")
        await db.create_database()
        moment = dt.datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=dt.timezone.utc)
        table = pa.table(
            {
                "flag": pa.array([True, None], pa.bool_()),
                "small": pa.array([-3, 4], pa.int16()),
                "ratio": pa.array([0.5, None], pa.float32()),
                "blob": pa.array([b"\x00\x01", b""], pa.binary()),
                "day": pa.array([dt.date(2024, 1, 2), None], pa.date32()),
                "at": pa.array([moment, None], pa.timestamp("us", tz="UTC")),
            }
        )
        await db.create_table_from_data(name="values", data=table)
        assert (await db.search(table="values")).equals(table)
        key = uuid.uuid4()
        assert await db.update(table="values", where={"small": -3}, values={"blob": b"\xff", "day": dt.date(2030, 1, 1)}) == 1
        assert await db.count(table="values", where={"blob": b"\xff", "day": dt.date(2030, 1, 1), "at": moment}) == 1
        await db.execute_sql_statement(query="CREATE TABLE keys (k TEXT)")
        await db.insert(table="keys", records=[{"k": key}])
        assert (await db.sql(query="SELECT k FROM keys")).to_pylist() == [{"k": str(key)}]
        inferred = await db.sql(query="SELECT 1 AS i, 2.5 AS f, 'x' AS s, x'00' AS b, NULL AS n")
        assert inferred.schema == pa.schema({"i": pa.int64(), "f": pa.float64(), "s": pa.string(), "b": pa.binary(), "n": pa.null()})


async def test_sql(client_module, client_variant, local_server) -> None:
    room_name = _room("sql", client_variant)
    async with client_module.connect(local_server.room_url(room_name), mint(local_server.credentials, room_name)) as room:
        sqlite = room.sqlite
        db = sqlite.database("app")
        await db.create_database()
        assert await db.execute_sql_statement(query="CREATE TABLE items (id INTEGER PRIMARY KEY, label TEXT NOT NULL)") == 0
        statement = await db.execute_sql(query="INSERT INTO items (label) VALUES (?), (?)", params=["a", "b"])
        assert statement == SqliteSqlStatement(rows_affected=2)
        assert (await db.sql(query="SELECT * FROM items WHERE id = ?", params=[2])).to_pylist() == [{"id": 2, "label": "b"}]
        empty = await db.sql(query="SELECT id, label FROM items WHERE id > 100")
        assert (empty.num_rows, empty.schema) == (0, pa.schema([pa.field("id", pa.int64()), pa.field("label", pa.string())]))

        query = await db.execute_sql(query="SELECT id FROM items ORDER BY id")
        assert isinstance(query, SqliteSqlQuery) and query.schema.names == ["id"]
        async with sqlite.read_sql_query(query_id=query.query_id) as batches:
            assert [row async for batch in batches for row in batch.to_pylist()] == [{"id": 1}, {"id": 2}]
        async with sqlite.read_sql_query(query_id=query.query_id) as batches:  # exhausted: ends at once
            assert [batch async for batch in batches] == []
        assert (await sqlite.cancel_sql_query(query_id=query.query_id)).status == "not_cancellable"
        await sqlite.close_sql_query(query_id=query.query_id)
        await sqlite.close_sql_query(query_id=query.query_id)  # idempotent
        assert (await sqlite.cancel_sql_query(query_id=query.query_id)).status == "not_cancellable"
        await _fails(_drain(sqlite.read_sql_query(query_id=query.query_id)), 1003, "was not found")

        opened = await db.open_sql_query(query="SELECT label FROM items")
        assert (await sqlite.cancel_sql_query(query_id=opened.query_id)).status == "cancelled"
        await _fails(_drain(sqlite.read_sql_query(query_id=opened.query_id)), 1003)

        returning = await db.execute_sql(query="INSERT INTO items (label) VALUES ('c') RETURNING id, label")
        assert isinstance(returning, SqliteSqlQuery)
        async with sqlite.read_sql_query(query_id=returning.query_id) as batches:
            assert [row async for batch in batches for row in batch.to_pylist()] == [{"id": 3, "label": "c"}]
        await sqlite.close_sql_query(query_id=returning.query_id)

        async with db.sql_stream(query="SELECT id FROM items") as stream:
            assert sum([batch.num_rows async for batch in stream]) == 3

        # Bad input: the official codes, nothing changed, the connection keeps working.
        await _fails(db.execute_sql(query="SELEC id FROM items"), 1002, "syntax error")
        await _fails(db.execute_sql(query="SELECT 1; DELETE FROM items"), 1002, "one statement")
        await _fails(db.open_sql_query(query="DELETE FROM items"), 1002, "returns no rows")
        await _fails(db.execute_sql(query="SELECT * FROM nope"), 1002, "no such table")
        await _fails(db.execute_sql(query="INSERT INTO items (label) VALUES (NULL)"), 1002, "NOT NULL")
        await _fails(db.execute_sql(query="SELECT ?", params=[1, 2]), 1002)
        await _fails(db.sql(query="DELETE FROM items WHERE id = 99"), 1002, "did not return rows")
        await _fails(db.execute_sql(query="BEGIN"), 1002, "transaction")
        await _fails(db.execute_sql(query="ATTACH DATABASE '/tmp/x.db' AS x"), 1002, "ATTACH")
        await _fails(db.execute_sql(query="PRAGMA writable_schema = ON"), 1002, "PRAGMA writable_schema")
        await _fails(db.execute_sql(query="CREATE TEMP TABLE t (x)"), 1002, "temporary")
        assert await db.count(table="items") == 3


async def _drain(batches) -> list:
    async with batches:
        return [batch async for batch in batches]


async def test_batch(client_module, client_variant, local_server) -> None:
    room_name = _room("batch", client_variant)
    async with client_module.connect(local_server.room_url(room_name), mint(local_server.credentials, room_name)) as room:
        db = room.sqlite.database("app", namespace=["team"])
        await db.create_database()
        assert await db.execute_sql_batch(commands=[]) == []
        results = await db.execute_sql_batch(
            commands=[
                SqliteSqlCommand("CREATE TABLE items(id INTEGER PRIMARY KEY, label TEXT)"),
                SqliteSqlCommand("INSERT INTO items VALUES (?, ?)", [1, "Ada"]),
                SqliteSqlCommand("SELECT label FROM items"),
                SqliteSqlCommand("UPDATE items SET label=:label WHERE id=:id", {"label": "Grace", "id": 1}),
                SqliteSqlCommand("SELECT * FROM items"),
            ]
        )
        assert results[:2] == [SqliteSqlStatement(0), SqliteSqlStatement(1)] and results[3] == SqliteSqlStatement(1)
        before, after = results[2], results[4]
        assert isinstance(before, SqliteSqlQuery) and isinstance(after, SqliteSqlQuery)
        assert after.schema.equals(pa.schema([pa.field("id", pa.int64()), pa.field("label", pa.string())]))
        assert [r for b in await _drain(room.sqlite.read_sql_query(query_id=before.query_id)) for r in b.to_pylist()] == [{"label": "Ada"}]
        assert [r for b in await _drain(room.sqlite.read_sql_query(query_id=after.query_id)) for r in b.to_pylist()] == [
            {"id": 1, "label": "Grace"}
        ]
        for query in (before, after):
            await room.sqlite.close_sql_query(query_id=query.query_id)

        await _fails(
            db.execute_sql_batch(
                commands=[SqliteSqlCommand("INSERT INTO items VALUES (2, 'rollback')"), SqliteSqlCommand("INSERT INTO items VALUES (1, 'duplicate')")]
            ),
            1002,
            "command 1 failed",
        )
        await _fails(db.execute_sql_batch(commands=[SqliteSqlCommand("DELETE FROM items"), SqliteSqlCommand("SELEC")]), 1002, "command 1 failed")
        assert await db.count(table="items") == 1


async def _source(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def test_backup_and_restore(client_module, client_variant, local_server) -> None:
    room_name = _room("transfer", client_variant)
    async with client_module.connect(local_server.room_url(room_name), mint(local_server.credentials, room_name)) as room:
        sqlite = room.sqlite
        db = sqlite.database("app", namespace=["team"])
        await db.create_database()
        big = pa.table({"id": pa.array(range(20_000), pa.int64()), "text": pa.array(["x" * 40] * 20_000)})
        await db.create_table_from_data(name="big", data=big)
        chunks = [chunk async for chunk in sqlite.backup(database="app", namespace=["team"])]
        assert len(chunks) > 1 and all(0 < len(chunk) <= 262144 for chunk in chunks)
        data = b"".join(chunks)
        assert data.startswith(b"SQLite format 3\x00")

        await sqlite.restore(database="copy", namespace=["team"], source=_source(data))
        copy = sqlite.database("copy", namespace=["team"])
        assert await copy.count(table="big") == 20_000
        assert hashlib.sha256(b"".join([c async for c in copy.backup()])).hexdigest() == hashlib.sha256(data).hexdigest()

        await _fails(sqlite.restore(database="copy", namespace=["team"], source=_source(data)), 1004, "already exists")
        await _fails(sqlite.restore(database="junk", source=_source(b"not a database" * 100)), 1002, "not a valid SQLite database")
        await _fails(sqlite.restore(database="broken", source=_source(data[: len(data) // 2])), 1002)
        assert await sqlite.list_databases() == []
        assert await sqlite.list_databases(namespace=["team"]) == ["app", "copy"]

        async def failing() -> AsyncIterator[bytes]:
            yield data[:1000]
            raise OSError("local read failed")

        with pytest.raises(OSError, match="local read failed"):
            await sqlite.restore(database="aborted", source=failing())
        assert await sqlite.list_databases() == []


def _scope(grant: SqliteGrant) -> ApiScope:
    return ApiScope(sqlite=grant)


async def test_grants(client_module, client_variant, local_server) -> None:
    room_name = _room("grants", client_variant)
    url = local_server.room_url(room_name)
    async with client_module.connect(url, mint(local_server.credentials, room_name)) as admin:
        db = admin.sqlite.database("app")
        await db.create_database()
        for table in ("public", "secret", "audit"):
            await db.create_table_from_data(name=table, data=pa.table({"id": [1, 2]}))
        await db.execute_sql_statement(query="CREATE TRIGGER copy AFTER INSERT ON audit BEGIN INSERT INTO secret VALUES (new.id); END")
        await admin.sqlite.create_database(name="other")

    limited = SqliteGrant(
        databases=[
            SqliteDatabaseGrant(
                name="app",
                tables=[
                    SqliteTableGrant(database="app", table="public", read=True, write=False),
                    SqliteTableGrant(database="app", table="audit", read=True, write=True),
                ],
            )
        ],
        create_database=False,
    )
    async with client_module.connect(url, mint(local_server.credentials, room_name, name="limited", scope=_scope(limited))) as room:
        sqlite = room.sqlite
        db = sqlite.database("app")
        assert await sqlite.list_databases() == ["app"]
        assert await db.list_tables() == ["audit", "public"]
        assert await db.count(table="public") == 2
        await _fails(db.count(table="secret"), 1001)
        await _fails(db.count(table="public", where="id IN (SELECT id FROM secret)"), 1001, "secret")
        await _fails(db.sql(query="SELECT * FROM public UNION SELECT * FROM secret"), 1001, "secret")
        await _fails(db.insert(table="public", records=pa.table({"id": [3]})), 1001)
        await _fails(db.insert(table="audit", records=pa.table({"id": [3]})), 1001, "secret")  # its trigger writes there
        assert await db.count(table="audit") == 2
        await _fails(db.execute_sql(query="DELETE FROM public"), 1001)
        await _fails(db.drop_table(name="public"), 1001)
        await _fails(_drain(db.backup()), 1001, "all of its tables")
        await _fails(sqlite.create_database(name="mine"), 1001)
        await _fails(sqlite.inspect_database(name="other"), 1001)
        await _fails(db.drop_database(), 1001)
        assert await db.count(table="public") == 2

    async with client_module.connect(url, mint(local_server.credentials, room_name, name="none", scope=ApiScope())) as room:
        await _fails(room.sqlite.list_databases(), 1001, "does not grant the sqlite API")
