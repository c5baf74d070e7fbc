"""`room.sqlite.database(name, namespace=...)`: the official 0.56 `SqliteDatabaseClient`, every
`SqliteClient` method bound to one database (protocol/room-apis.md §13)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, AsyncIterable, Literal, Mapping

if TYPE_CHECKING:
    import pyarrow

    from .calls import CallIterator
    from .sqlite import CreateMode, SqliteClient, SqliteDatabaseDetails, SqliteSqlCommand, SqliteSqlExecution


class SqliteDatabaseClient:
    """One database of `room.sqlite`: the same methods without `database` / `namespace`."""

    def __init__(self, *, client: "SqliteClient", database: str, namespace: list[str] | None = None) -> None:
        self._client = client
        self.database = database
        self.namespace = namespace

    def _where(self) -> dict[str, Any]:
        return {"database": self.database, "namespace": self.namespace}

    async def create_database(
        self,
        *,
        mode: "CreateMode | None" = "create",
        replication_mode: Literal["synchronous", "asynchronous"] | None = None,
        flush_interval_ms: int | None = None,
    ) -> None:
        await self._client.create_database(
            name=self.database, namespace=self.namespace, mode=mode or "create", replication_mode=replication_mode,
            flush_interval_ms=flush_interval_ms,
        )  # fmt: skip

    async def drop_database(self, *, ignore_missing: bool = False) -> None:
        await self._client.drop_database(name=self.database, namespace=self.namespace, ignore_missing=ignore_missing)

    async def inspect_database(self) -> "SqliteDatabaseDetails":
        return await self._client.inspect_database(name=self.database, namespace=self.namespace)

    def backup(self) -> "CallIterator[bytes]":
        return self._client.backup(**self._where())

    async def restore(self, *, source: AsyncIterable[bytes]) -> None:
        await self._client.restore(source=source, **self._where())

    async def list_tables(self) -> list[str]:
        return await self._client.list_tables(**self._where())

    async def create_table_with_schema(self, *, name: str, schema: Any = None, data: Any = None, mode: "CreateMode | None" = "create") -> None:
        await self._client.create_table_with_schema(name=name, schema=schema, data=data, mode=mode, **self._where())

    async def create_table_from_data(self, *, name: str, data: Any = None, mode: "CreateMode | None" = "create") -> None:
        await self._client.create_table_from_data(name=name, data=data, mode=mode, **self._where())

    async def drop_table(self, *, name: str, ignore_missing: bool = False) -> None:
        await self._client.drop_table(name=name, ignore_missing=ignore_missing, **self._where())

    async def rename_table(self, *, name: str, new_name: str) -> None:
        await self._client.rename_table(name=name, new_name=new_name, **self._where())

    async def inspect(self, *, table: str) -> "pyarrow.Schema":
        return await self._client.inspect(table=table, **self._where())

    async def add_columns(self, *, table: str, new_columns: Any) -> None:
        await self._client.add_columns(table=table, new_columns=new_columns, **self._where())

    async def drop_columns(self, *, table: str, columns: list[str]) -> None:
        await self._client.drop_columns(table=table, columns=columns, **self._where())

    async def insert(self, *, table: str, records: Any) -> None:
        await self._client.insert(table=table, records=records, **self._where())

    async def update(self, *, table: str, where: Any, values: Mapping[str, Any], params: Any = None) -> int:
        return await self._client.update(table=table, where=where, values=values, params=params, **self._where())

    async def delete(self, *, table: str, where: Any, params: Any = None) -> int:
        return await self._client.delete(table=table, where=where, params=params, **self._where())

    async def search(
        self,
        *,
        table: str,
        where: Any = None,
        params: Any = None,
        offset: int | None = None,
        limit: int | None = None,
        select: list[str] | None = None,
    ) -> "pyarrow.Table":
        return await self._client.search(
            table=table, where=where, params=params, offset=offset, limit=limit, select=select, **self._where()
        )

    def search_stream(
        self,
        *,
        table: str,
        where: Any = None,
        params: Any = None,
        offset: int | None = None,
        limit: int | None = None,
        select: list[str] | None = None,
    ) -> "CallIterator[pyarrow.Table]":
        return self._client.search_stream(
            table=table, where=where, params=params, offset=offset, limit=limit, select=select, **self._where()
        )

    async def count(self, *, table: str, where: Any = None, params: Any = None) -> int:
        return await self._client.count(table=table, where=where, params=params, **self._where())

    async def sql(self, *, query: str, params: Any = None) -> "pyarrow.Table":
        return await self._client.sql(query=query, params=params, **self._where())

    def sql_stream(self, *, query: str, params: Any = None) -> "CallIterator[pyarrow.Table]":
        return self._client.sql_stream(query=query, params=params, **self._where())

    async def execute_sql_batch(self, *, commands: "list[SqliteSqlCommand]") -> "list[SqliteSqlExecution]":
        return await self._client.execute_sql_batch(commands=commands, **self._where())

    async def execute_sql(self, *, query: str, params: Any = None) -> "SqliteSqlExecution":
        return await self._client.execute_sql(query=query, params=params, **self._where())

    async def execute_sql_statement(self, *, query: str, params: Any = None) -> int:
        return await self._client.execute_sql_statement(query=query, params=params, **self._where())

    async def open_sql_query(self, *, query: str, params: Any = None) -> Any:
        return await self._client.open_sql_query(query=query, params=params, **self._where())

    async def get_database_settings(self) -> Any:
        return await self._client.get_database_settings(name=self.database, namespace=self.namespace)

    async def update_database_settings(
        self, *, replication_mode: Literal["synchronous", "asynchronous"] | None = None, flush_interval_ms: int | None = None
    ) -> Any:
        return await self._client.update_database_settings(
            name=self.database, namespace=self.namespace, replication_mode=replication_mode, flush_interval_ms=flush_interval_ms
        )

    async def flush_database(self) -> None:
        await self._client.flush_database(name=self.database, namespace=self.namespace)


__all__ = ["SqliteDatabaseClient"]
