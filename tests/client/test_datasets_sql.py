"""`room.datasets` SQL (DuckDB over the Lance tables), branches and `watch_table`, against the
real local server, on Trio and on AnyIO (asyncio and Trio)."""

from __future__ import annotations

import anyio
import pyarrow as pa
import pytest

from meshagent_core import RoomException
from meshagent_core.client.datasets_models import DatasetSqlQuery, DatasetSqlStatement, SqlTableReference
from roomtest import mint

pytestmark = pytest.mark.anyio


def _room(name: str, client_variant: tuple[str, str]) -> str:
    return f"datasets-{name}-{'-'.join(client_variant)}"


async def _refused(call, code: int, text: str) -> None:
    with pytest.raises(RoomException) as info:
        await call
    assert (info.value.code, text in str(info.value)) == (code, True), str(info.value)


async def test_sql_queries_and_statements(client_module, client_variant, local_server) -> None:
    room_name = _room("sql", client_variant)
    async with client_module.connect(local_server.room_url(room_name), mint(local_server.credentials, room_name)) as room:
        datasets = room.datasets
        await datasets.create_table_from_data(name="items", data=pa.table({"id": pa.array(range(20_000), pa.int64()), "group": [i % 4 for i in range(20_000)]}))
        await datasets.create_table_from_data(name="groups", data=pa.table({"group": [0, 1, 2, 3], "label": ["a", "b", "c", "d"]}))
        await datasets.create_table_from_data(name="other", namespace=["ns"], data=pa.table({"x": [7]}))

        joined = await datasets.sql(
            query='SELECT g.label, count(*) AS n FROM items i JOIN groups g USING ("group") WHERE i.id < $limit GROUP BY g.label ORDER BY g.label',
            params=pa.table({"limit": [8]}),
        )
        assert joined.to_pylist() == [{"label": label, "n": 2} for label in "abcd"]
        refs = [SqlTableReference(name="other", namespace=["ns"], alias="o"), "groups"]
        assert (await datasets.sql(query="SELECT x FROM o", tables=refs)).to_pylist() == [{"x": 7}]

        # A large result comes in several batches, read one pull at a time.
        opened = await datasets.execute_sql(query="SELECT id FROM items ORDER BY id")
        assert isinstance(opened, DatasetSqlQuery) and opened.schema.names == ["id"]
        async with datasets.read_sql_query(query_id=opened.query_id) as batches:
            sizes = [batch.num_rows async for batch in batches]
        assert sum(sizes) == 20_000 and len(sizes) > 1
        await datasets.close_sql_query(query_id=opened.query_id)
        await datasets.close_sql_query(query_id=opened.query_id)  # closing twice is harmless
        await _refused(_read_all(datasets, opened.query_id), 1003, "was not found")

        idle = await datasets.open_sql_query(query="SELECT 1 AS one")
        assert (await datasets.cancel_sql_query(query_id=idle.query_id)).status == "cancelled"
        assert (await datasets.cancel_sql_query(query_id=idle.query_id)).status == "not_cancellable"

        statement = await datasets.execute_sql(query="INSERT INTO groups VALUES ($g, $l)", params=pa.table({"g": [4], "l": ["e"]}))
        assert statement == DatasetSqlStatement(rows_affected=1)
        assert await datasets.execute_sql_statement(query='INSERT INTO groups SELECT "group" + 10, label || label FROM groups WHERE "group" < 2') == 2
        assert await datasets.execute_sql_statement(query='DELETE FROM items WHERE id >= 100 AND "group" IN (SELECT "group" FROM groups WHERE label = \'a\')') == 4975
        assert await datasets.count(table="items") == 20_000 - 4975
        assert sorted(row["label"] for row in (await datasets.search(table="groups")).to_pylist()) == ["a", "aa", "b", "bb", "c", "d", "e"]
        streamed = [batch async for batch in datasets.sql_stream(query="SELECT * FROM groups WHERE label = 'e'")]
        assert [row for batch in streamed for row in batch.to_pylist()] == [{"group": 4, "label": "e"}]
        assert (await datasets.sql(query="SELECT * FROM groups WHERE label = 'zzz'")).num_rows == 0

        versions = len(await datasets.list_versions(table="groups"))
        refused = [
            (datasets.sql(query="SELEC 1"), 1002, "syntax error"),
            (datasets.sql(query="SELECT 1; SELECT 2"), 1002, "exactly one statement"),
            (datasets.sql(query="SELECT * FROM nope"), 1002, "nope"),
            (datasets.sql(query="SELECT $x"), 1002, "no values were sent"),
            (datasets.sql(query="SELECT $x", params=pa.table({"x": [1, 2]})), 1002, "holds one row"),
            (datasets.sql(query="SELECT * FROM read_csv('/etc/passwd')"), 1002, "disabled"),
            (datasets.execute_sql_statement(query="UPDATE groups SET label = 'x'"), 1002, "use datasets.update"),
            (datasets.execute_sql_statement(query="DROP TABLE groups"), 1002, "DROP statements are not supported"),
            (datasets.execute_sql_statement(query="SELECT 1"), 1002, "a SELECT returns rows"),
            (datasets.open_sql_query(query="INSERT INTO groups VALUES (9, 'z')"), 1002, "returns no rows"),
            (datasets.execute_sql_statement(query="INSERT INTO groups VALUES ('x', 'y')"), 1002, "sql error"),
            (datasets.execute_sql_statement(query="INSERT INTO o VALUES (1)", tables=[SqlTableReference(name="other", namespace=["ns"], alias="o")]), 1002, "cannot be written"),
            (datasets.sql(query="SELECT 1", namespace=["_bad"]), 1002, "may not start with '_'"),
            (datasets.cancel_sql_query(query_id="nope"), None, None),
        ]
        for call, code, text in refused:
            if code is None:
                assert (await call).status == "not_cancellable"
                continue
            await _refused(call, code, text)
        assert len(await datasets.list_versions(table="groups")) == versions  # nothing was written
        assert await datasets.count(table="groups") == 7


async def _read_all(datasets, query_id: str) -> list:
    async with datasets.read_sql_query(query_id=query_id) as batches:
        return [batch async for batch in batches]


async def test_branches(client_module, client_variant, local_server) -> None:
    room_name = _room("branches", client_variant)
    async with client_module.connect(local_server.room_url(room_name), mint(local_server.credentials, room_name)) as room:
        datasets = room.datasets
        await datasets.create_table_from_data(name="t", data=pa.table({"id": [1, 2]}))
        await datasets.create_branch(branch="exp")
        await datasets.insert(table="t", records=pa.table({"id": [3]}), branch="exp")
        await datasets.delete(table="t", where="id = 1")
        assert await datasets.count(table="t") == 1 and await datasets.count(table="t", branch="exp") == 3
        assert (await datasets.sql(query="SELECT sum(id) AS s FROM t", branch="exp")).to_pylist() == [{"s": 6}]

        await datasets.create_table_from_data(name="only_exp", data=pa.table({"v": ["x"]}), branch="exp")
        assert await datasets.list_tables() == ["t"]
        assert await datasets.list_tables(branch="exp") == ["only_exp", "t"]
        await _refused(datasets.search(table="only_exp"), 1003, "table 'only_exp' does not exist")
        await datasets.create_branch(branch="deeper", from_branch="exp")
        assert await datasets.count(table="t", branch="deeper") == 3
        branches = {branch.name: branch for branch in await datasets.list_branches()}
        assert sorted(branches) == ["deeper", "exp", "main"]
        assert branches["deeper"].parent_branch == "exp" and branches["exp"].created_at is not None

        await _refused(datasets.create_branch(branch="exp"), 1004, "branch 'exp' already exists")
        await _refused(datasets.create_branch(branch="main"), 1002, "default branch")
        await _refused(datasets.count(table="t", branch="gone"), 1003, "branch 'gone' does not exist")
        await datasets.drop_table(name="t", branch="deeper")
        assert await datasets.list_tables(branch="deeper") == ["only_exp"]
        await _refused(datasets.delete_branch(branch="exp"), 1006, "branch 'exp' has branches made from it (deeper)")
        await datasets.delete_branch(branch="deeper")
        await datasets.delete_branch(branch="exp")
        assert [branch.name for branch in await datasets.list_branches()] == ["main"]
        assert await datasets.list_tables() == ["t"] and await datasets.count(table="t") == 1
        await _refused(datasets.delete_branch(branch="main"), 1002, "cannot be deleted")


async def test_watch_table(client_module, client_variant, local_server) -> None:
    room_name = _room("watch", client_variant)
    async with client_module.connect(local_server.room_url(room_name), mint(local_server.credentials, room_name)) as room:
        datasets = room.datasets
        await datasets.create_table_from_data(name="w", data=pa.table({"id": [1, 2], "v": ["a", "b"]}))
        seen: list = []
        with anyio.fail_after(20):
            async with datasets.watch_table(table="w", poll_interval_seconds=0.05) as watch:
                async for event in watch:
                    seen.append(event)
                    if event.kind == "ready" and event.phase == "initial":
                        await datasets.insert(table="w", records=pa.table({"id": [3], "v": ["c"]}))
                    elif event.kind == "ready" and event.version == 2:
                        await datasets.update(table="w", where="id = 1", values={"v": "A"})
                    elif event.kind == "ready" and event.version == 3:
                        await datasets.delete(table="w", where="id = 2")
                    elif event.kind == "ready" and event.version == 4:
                        break
        initial = [row for event in seen if event.phase == "initial" and event.kind == "data" for row in event.table.to_pylist()]
        assert sorted(initial, key=lambda row: row["id"]) == [{"id": 1, "v": "a", "_rowid": 0}, {"id": 2, "v": "b", "_rowid": 1}]
        deltas = [(event.change_type, event.begin_version, event.end_version, event.table.to_pylist()) for event in seen if event.phase == "delta" and event.kind == "data"]
        assert deltas == [
            ("inserted", 1, 2, [{"id": 3, "v": "c", "_rowid": 2}]),
            ("updated", 2, 3, [{"id": 1, "v": "A", "_rowid": 0}]),
            ("deleted", 3, 4, [{"_rowid": 1}]),
        ]
        # The server noticed the watch was closed; the room goes on.
        assert await datasets.count(table="w") == 2
        await _refused(_watch_once(datasets, "missing"), 1003, "table 'missing' does not exist")


async def _watch_once(datasets, table: str) -> None:
    async with datasets.watch_table(table=table) as watch:
        async for _ in watch:
            break
