"""The official 0.56 `room.sqlite` against our server (runs under the OFFICIAL interpreter, never
ours). Environment as in `_official.py`.

`python sqlite_official.py live`: the official client's own batch integration scenario, every
other tool of `SqliteClient` / `SqliteDatabaseClient` (streamed creates and inserts of Arrow
tables and record dicts, searches, SQL, open queries, backup and restore), and bad input. Prints
one JSON line of observations: values as JSON, errors as `{"type", "code", "message"}`.
"""

from __future__ import annotations

import hashlib

import pyarrow as pa
from meshagent.api import SqliteSqlCommand, SqliteSqlQuery, SqliteSqlStatement

from _official import connect, expect_error, observed, run, timed


def rows(table: pa.Table) -> list[dict]:
    return table.to_pylist()


async def source(*parts: bytes):
    for part in parts:
        yield part


async def main() -> dict:
    async with connect("alice") as room:
        sqlite = room.sqlite
        # The official client's batch parity test (sqlite_batch_integration_test.py), as written.
        db = sqlite.database("python_batch", namespace=["team"])
        await timed("create_database", db.create_database())
        observed["empty_batch"] = await timed("empty batch", db.execute_sql_batch(commands=[]))
        results = await timed(
            "batch",
            db.execute_sql_batch(
                commands=[
                    SqliteSqlCommand("CREATE TABLE items(id INTEGER PRIMARY KEY, label TEXT)"),
                    SqliteSqlCommand("INSERT INTO items VALUES (?, ?)", [1, "Ada"]),
                    SqliteSqlCommand("UPDATE items SET label=:label WHERE id=:id", {"label": "Grace", "id": 1}),
                    SqliteSqlCommand("SELECT * FROM items"),
                ]
            ),
        )
        observed["batch_statement"] = results[1] == SqliteSqlStatement(1)
        query = results[3]
        observed["batch_query_is_query"] = isinstance(query, SqliteSqlQuery)
        chunks = [chunk async for chunk in room.sqlite.read_sql_query(query_id=query.query_id)]
        observed["batch_rows"] = pa.concat_tables(chunks).to_pylist()
        observed["batch_schema_names"] = query.schema.names
        await timed("close batch query", room.sqlite.close_sql_query(query_id=query.query_id))
        observed["batch_failure"] = await expect_error(
            "failing batch",
            db.execute_sql_batch(
                commands=[
                    SqliteSqlCommand("INSERT INTO items VALUES (2, 'rollback')"),
                    SqliteSqlCommand("INSERT INTO items VALUES (1, 'duplicate')"),
                ]
            ),
        )
        observed["count_after_failure"] = await timed("count", db.count(table="items"))

        # Every other tool.
        app = sqlite.database("app", namespace=["team"])
        await timed("create app", sqlite.create_database(name="app", namespace=["team"], replication_mode="asynchronous", flush_interval_ms=250))
        observed["databases"] = await timed("list_databases", sqlite.list_databases(namespace=["team"]))
        observed["details"] = (await timed("inspect_database", app.inspect_database())).model_dump(mode="json")
        observed["settings"] = (await timed("settings", sqlite.get_database_settings(name="app", namespace=["team"]))).model_dump()
        observed["updated_settings"] = (
            await timed("update settings", sqlite.update_database_settings(name="app", namespace=["team"], flush_interval_ms=500))
        ).model_dump()
        await timed("flush", sqlite.flush_database(name="app", namespace=["team"]))
        users = pa.table(
            {"id": pa.array([1, 2], pa.int64()), "email": ["alice@example.com", "bob@example.com"], "active": pa.array([1, 0], pa.int64())}
        )
        schema = pa.schema([pa.field("id", pa.int64(), nullable=False), pa.field("email", pa.string()), pa.field("active", pa.int64())])
        await timed("create users", app.create_table_with_schema(name="users", schema=schema))
        await timed("insert users", app.insert(table="users", records=users))
        await timed("insert records", app.insert(table="users", records=[{"id": 3, "email": "carol@example.com", "active": 1}]))
        await timed("create from data", app.create_table_from_data(name="events", data=pa.table({"n": list(range(300))})))
        observed["tables"] = await timed("list_tables", app.list_tables())
        observed["inspect_equal"] = (await timed("inspect", app.inspect(table="users"))).equals(schema)
        await timed("add_columns", app.add_columns(table="users", new_columns={"nickname": pa.string()}))
        observed["columns_after_add"] = (await app.inspect(table="users")).names
        await timed("drop_columns", app.drop_columns(table="users", columns=["nickname"]))
        observed["count"] = await timed("count", app.count(table="users"))
        observed["count_where"] = await timed("count where", app.count(table="users", where={"active": 1}))
        observed["search"] = rows(await timed("search", app.search(table="users", where={"active": 1}, select=["email"])))
        observed["search_params"] = rows(await timed("search params", app.search(table="users", where="id > ?", params=[1], limit=1)))
        observed["sql"] = rows(await timed("sql", app.sql(query="SELECT id, email FROM users WHERE id = ?", params=[2])))
        observed["statement"] = await timed("statement", app.execute_sql_statement(query="UPDATE users SET active = ? WHERE id = ?", params=[1, 2]))
        observed["update"] = await timed("update", app.update(table="users", where="id = ?", values={"email": "a@example.com"}, params=[1]))
        observed["delete"] = await timed("delete", app.delete(table="users", where="id = ?", params=[3]))
        executed = await timed("execute_sql", app.execute_sql(query="SELECT id FROM users ORDER BY id"))
        observed["execute_sql_schema"] = executed.schema.names
        observed["read_sql_query"] = [row for table in [t async for t in sqlite.read_sql_query(query_id=executed.query_id)] for row in rows(table)]
        await timed("close", sqlite.close_sql_query(query_id=executed.query_id))
        observed["cancel_closed"] = (await timed("cancel", sqlite.cancel_sql_query(query_id=executed.query_id))).status
        opened = await timed("open_sql_query", sqlite.open_sql_query(database="app", namespace=["team"], query="SELECT * FROM events"))
        observed["cancel_open"] = (await timed("cancel open", sqlite.cancel_sql_query(query_id=opened.query_id))).status
        statement = await timed("execute_sql statement", app.execute_sql(query="DELETE FROM events WHERE n >= 100"))
        observed["execute_sql_statement_result"] = statement.rows_affected
        observed["events_streamed"] = sum([t.num_rows async for t in app.search_stream(table="events")])
        await timed("rename", app.rename_table(name="events", new_name="log"))
        observed["tables_after_rename"] = await app.list_tables()

        backup = b"".join([chunk async for chunk in sqlite.backup(database="app", namespace=["team"])])
        observed["backup_header"] = backup[:16].decode("latin-1")
        await timed("restore", sqlite.restore(database="copy", namespace=["team"], source=source(*[backup[i : i + 100_000] for i in range(0, len(backup), 100_000)])))
        observed["restored_count"] = await sqlite.database("copy", namespace=["team"]).count(table="users")
        copy_bytes = b"".join([chunk async for chunk in sqlite.backup(database="copy", namespace=["team"])])
        observed["restored_identical"] = hashlib.sha256(copy_bytes).hexdigest() == hashlib.sha256(backup).hexdigest()

        # Bad input: errors with codes, nothing changed, the connection keeps working.
        observed["errors"] = {
            "missing_database": await expect_error("missing db", sqlite.list_tables(database="nope")),
            "existing_database": await expect_error("existing db", sqlite.create_database(name="app", namespace=["team"])),
            "missing_table": await expect_error("missing table", app.count(table="nope")),
            "syntax": await expect_error("syntax", app.sql(query="SELEC 1")),
            "second_statement": await expect_error("second statement", app.count(table="users", where="1=1); DROP TABLE users; --")),
            "type_mismatch": await expect_error("type mismatch", app.insert(table="users", records=pa.table({"id": ["x"]}))),
            "unknown_column": await expect_error("unknown column", app.search(table="users", select=["nope"])),
            "unknown_query": await expect_error("unknown query", _read(sqlite, "0" * 32)),
            "restore_existing": await expect_error("restore existing", sqlite.restore(database="copy", namespace=["team"], source=source(backup[:1000]))),
            "restore_garbage": await expect_error("restore garbage", sqlite.restore(database="junk", source=source(b"junk" * 100))),
        }
        observed["count_after_errors"] = await timed("count after errors", app.count(table="users"))
        observed["tables_after_errors"] = await app.list_tables()
        observed["databases_after_errors"] = await sqlite.list_databases()
        await timed("drop table", app.drop_table(name="log"))
        await timed("drop database", sqlite.drop_database(name="copy", namespace=["team"]))
        observed["databases_end"] = await sqlite.list_databases(namespace=["team"])
    return observed


async def _read(sqlite, query_id: str) -> list:
    return [table async for table in sqlite.read_sql_query(query_id=query_id)]


if __name__ == "__main__":
    run(main)
