"""The SQL and `watch_table` half of `room.datasets` (protocol/room-apis.md §14.4, §14.5), a base
of `DatasetsClient`: SQL run by the server's DuckDB over the room's tables, open result sets read
as Arrow batches, and a table's rows followed by its changes.
"""

from __future__ import annotations

from typing import Any, AsyncGenerator, AsyncIterator

import msgspec

from ..content import BinaryContent, EmptyContent, ErrorContent, JsonContent
from ..errors import ErrorCode, RoomException
from ..toolkits.arrow_ipc import ArrowDataError, read_schema_blob, read_stream, stream_bytes
from ..toolkits.dataset import (
    ERROR_PREFIX,
    TOOLKIT,
    CancelOutput,
    Pull,
    RowsAffectedOutput,
    SqlQueryHeaders,
    SqlStatementOutput,
    WatchData,
    WatchReady,
)
from .calls import READY, CallIterator, expect_stream_open
from .data_streams import read_arrow_stream
from .datasets_answers import RULES, Namespace, _concat, _json_answer, _tagged, _unexpected
from .datasets_models import (
    DatasetSqlCancelResult,
    DatasetSqlExecution,
    DatasetSqlQuery,
    DatasetSqlStatement,
    DatasetWatchEvent,
    SqlTableReference,
    optional_int,
)


def _table_refs(tables: list[SqlTableReference | str] | None) -> list[dict[str, Any]]:
    refs = [SqlTableReference(name=table) if isinstance(table, str) else table for table in tables or []]
    return [msgspec.to_builtins(ref) for ref in refs]


class DatasetQueries:
    """SQL and `watch_table` of `room.datasets` (its other methods are `DatasetsClient`'s)."""

    room: Any

    async def _invoke(self, operation: str, arguments: Any) -> Any:
        raise NotImplementedError

    async def _thread(self, function: Any, *args: Any) -> Any:
        raise NotImplementedError

    def watch_table(
        self, *, table: str, namespace: Namespace = None, branch: str | None = None, poll_interval_seconds: float = 0.5
    ) -> CallIterator[DatasetWatchEvent]:
        """The table's rows now (`data` events, phase `initial`, then `ready`), then its changes
        as they are committed (phase `delta`: `inserted`, `updated`, `deleted` rows with their
        `_rowid`, then `ready`), until the iterator is closed."""
        start = {"kind": "start", "table": table, "namespace": namespace, "branch": branch, "poll_interval_seconds": poll_interval_seconds}
        return CallIterator(self._watch_body(start))

    async def _watch_body(self, start: dict[str, Any]) -> AsyncGenerator[Any, None]:
        async with self.room.stream_call(TOOLKIT, "watch_table") as call:
            call.send(BinaryContent(headers=start))
            await expect_stream_open(call, toolkit=ERROR_PREFIX, operation="watch_table")
            yield READY
            pull = BinaryContent(headers=msgspec.to_builtins(Pull()))
            call.send(pull)
            stream = call.chunks()
            try:
                async for chunk in stream:
                    if isinstance(chunk, ErrorContent):
                        raise chunk.to_exception()
                    if isinstance(chunk, BinaryContent):
                        headers = _tagged(chunk.headers, WatchData, "watch_table")
                        try:
                            rows = await self._thread(read_stream, chunk.data)
                        except ArrowDataError:
                            raise _unexpected("watch_table") from None
                        event = DatasetWatchEvent(
                            kind="data",
                            phase=headers.phase,
                            table=rows,
                            version=optional_int(headers.version),
                            change_type=headers.change_type,
                            begin_version=optional_int(headers.begin_version),
                            end_version=optional_int(headers.end_version),
                            watch_event=headers.watch_event,
                        )
                    elif isinstance(chunk, JsonContent):
                        ready = _tagged(chunk.json, WatchReady, "watch_table")
                        event = DatasetWatchEvent(kind="ready", phase=ready.phase, version=optional_int(ready.version))
                    else:
                        raise _unexpected("watch_table")
                    call.send(pull)
                    yield event
            finally:
                await stream.aclose()  # type: ignore[attr-defined]

    # --- SQL ---------------------------------------------------------------------------------

    async def _sql(self, operation: str, query: str, tables: Any, params: Any, namespace: Namespace, branch: str | None) -> Any:
        data = b"" if params is None else await self._thread(stream_bytes, params)
        headers = {"query": query, "tables": _table_refs(tables), "namespace": namespace, "branch": branch}
        return await self._invoke(operation, BinaryContent(headers=headers, data=data))

    async def _opened(self, response: Any, operation: str) -> DatasetSqlQuery:
        headers = _tagged(response.headers, SqlQueryHeaders, operation)
        if not headers.query_id:
            raise _unexpected(operation)
        try:
            schema = await self._thread(read_schema_blob, response.data)
        except ArrowDataError:
            raise _unexpected(operation) from None
        return DatasetSqlQuery(schema=schema, query_id=headers.query_id)

    async def execute_sql(
        self, *, query: str, tables: list[SqlTableReference | str] | None = None, params: Any = None, namespace: Namespace = None, branch: str | None = None
    ) -> DatasetSqlExecution:
        """Run one SQL statement (DuckDB's dialect; `$name` parameters from the one row of
        `params`): a SELECT opens a result set (`DatasetSqlQuery`), an INSERT or DELETE
        returns `DatasetSqlStatement`. Tables are referred to by name (those of `namespace`
        and `branch`) or through `tables`."""
        response = await self._sql("execute_sql", query, tables, params, namespace, branch)
        if isinstance(response, BinaryContent):
            return await self._opened(response, "execute_sql")
        if isinstance(response, JsonContent):
            statement = _tagged(response.json, SqlStatementOutput, "execute_sql")
            return DatasetSqlStatement(rows_affected=statement.rows_affected)
        raise _unexpected("execute_sql")

    async def open_sql_query(
        self, *, query: str, tables: list[SqlTableReference | str] | None = None, params: Any = None, namespace: Namespace = None, branch: str | None = None
    ) -> DatasetSqlQuery:
        """Open a SELECT's result set; read it with `read_sql_query`, end it with
        `close_sql_query`."""
        response = await self._sql("open_sql_query", query, tables, params, namespace, branch)
        if not isinstance(response, BinaryContent):
            raise _unexpected("open_sql_query")
        return await self._opened(response, "open_sql_query")

    async def execute_sql_statement(
        self, *, query: str, tables: list[SqlTableReference | str] | None = None, params: Any = None, namespace: Namespace = None, branch: str | None = None
    ) -> int:
        """Run an INSERT or DELETE; the number of rows it affected."""
        response = await self._sql("execute_sql_statement", query, tables, params, namespace, branch)
        return _json_answer(response, RowsAffectedOutput, "execute_sql_statement").rows_affected

    def read_sql_query(self, *, query_id: str) -> CallIterator[Any]:
        """The rows of an open result set, as `pyarrow.Table` batches."""
        return read_arrow_stream(self.room, RULES, "read_sql_query", {"kind": "start", "query_id": query_id})

    async def close_sql_query(self, *, query_id: str) -> None:
        response = await self._invoke("close_sql_query", {"query_id": query_id})
        if not isinstance(response, EmptyContent):
            raise _unexpected("close_sql_query")

    async def cancel_sql_query(self, *, query_id: str) -> DatasetSqlCancelResult:
        response = await self._invoke("cancel_sql_query", {"query_id": query_id})
        return DatasetSqlCancelResult(status=_json_answer(response, CancelOutput, "cancel_sql_query").status)

    async def sql_stream(
        self, *, query: str, tables: list[SqlTableReference | str] | None = None, params: Any = None, namespace: Namespace = None, branch: str | None = None
    ) -> AsyncIterator[Any]:
        """A SELECT's rows as `pyarrow.Table` batches; the result set is closed however the
        iteration ends (close the generator, or exhaust it)."""
        result = await self.execute_sql(query=query, tables=tables, params=params, namespace=namespace, branch=branch)
        if isinstance(result, DatasetSqlStatement):
            raise RoomException(f"SQL statement did not return rows; rows_affected={result.rows_affected}", code=ErrorCode.INVALID_REQUEST)
        try:
            async with self.read_sql_query(query_id=result.query_id) as batches:
                async for batch in batches:
                    yield batch
        finally:
            await self.close_sql_query(query_id=result.query_id)

    async def sql(
        self, *, query: str, tables: list[SqlTableReference | str] | None = None, params: Any = None, namespace: Namespace = None, branch: str | None = None
    ) -> Any:
        """A SELECT's rows as one `pyarrow.Table` (an empty table when there are none)."""
        stream = self.sql_stream(query=query, tables=tables, params=params, namespace=namespace, branch=branch)
        try:
            return _concat([batch async for batch in stream])
        finally:
            await stream.aclose()  # type: ignore[attr-defined]

    # --- versions, maintenance, indexes, branches ------------------------------------------


__all__ = ["DatasetQueries"]
