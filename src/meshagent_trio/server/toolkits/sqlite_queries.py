"""The `sqlite` toolkit's SQL tools (protocol/room-apis.md §13.4): `execute_sql`,
`open_sql_query`, `execute_sql_statement`, `execute_sql_batch`, and the open-query tools
(`read_sql_query`, `close_sql_query`, `cancel_sql_query`, in `open_queries`).

A statement is first compiled on a connection of its own, under an authorizer that refuses any
change: if it compiles, it is a read — its cursor becomes an open query whose rows stream from a
consistent snapshot, and no lock is held while the caller reads. If it would change the database
it runs instead on the database's writer, in a transaction of its own; the rows it returns, if
any (`INSERT … RETURNING`), are kept in memory (at most `MAX_RESULT_BYTES`).
`execute_sql_batch` runs every command on the writer in one transaction: a failing command
rolls them all back and is reported as `command <index> failed: <reason>` (0-based); the rows of
its queries are read inside the transaction, so each sees the commands before it.
"""

from __future__ import annotations

import base64
from typing import Any, Literal

import msgspec
import trio

from meshagent_core import BinaryContent, Content, ErrorCode, JsonContent, RoomException
from meshagent_core.toolkits.arrow_ipc import schema_blob
from meshagent_core.toolkits.sql_queries import RowsAffectedOutput, StatementOutput
from meshagent_core.toolkits.sqlite import BatchOutput, BatchQuery, ExecuteSqlBatchInput, QueryOpened, SqlHeaders

from ..toolkit import ToolCall, invalid_request
from . import open_queries
from .sqlite_access import Authorizer, sqlite_grant
from .sqlite_context import RULES, Target, open_database
from .sqlite_sql import MAX_RESULT_BYTES, WRITES, MemoryCursor, SqliteCursor, run_write, try_read


def _headers(call: ToolCall) -> SqlHeaders:
    arguments = call.arguments
    value = arguments.headers if isinstance(arguments, BinaryContent) else arguments.json if isinstance(arguments, JsonContent) else None
    if value is None:
        raise invalid_request(f"sqlite.{call.tool} expects a binary argument whose headers are {{database, query, params, namespace}}")
    try:
        return msgspec.convert(value, type=SqlHeaders)
    except msgspec.ValidationError as error:
        raise invalid_request(f"invalid arguments for sqlite.{call.tool}: {error}") from None


def _opened(call: ToolCall, target: Target, cursor: Any) -> BinaryContent:
    query = open_queries.queries_of(call.room, "sqlite").add(call.caller, cursor, tag=target.key)
    return BinaryContent(headers=msgspec.to_builtins(QueryOpened(query_id=query.id)), data=schema_blob(cursor.schema))


def _no_rows(tool: str) -> RoomException:
    return invalid_request(f"the statement returns no rows: sqlite.{tool} opens queries (use execute_sql_statement)")


async def _run(call: ToolCall, form: Literal["any", "query"]) -> Content:
    headers = _headers(call)
    target = await open_database(call, headers.database, headers.namespace, "execute", "execute SQL")
    database, access = target.database, target.access

    connection = await trio.to_thread.run_sync(database.borrow)
    try:
        result = await open_queries.run_interruptible(
            try_read, connection, Authorizer(access), headers.query, headers.params, database.give_back, interrupt=connection.interrupt
        )
    except BaseException:
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(connection.close)
        raise
    if not isinstance(result, SqliteCursor):
        await trio.to_thread.run_sync(database.give_back, connection)
    if result is WRITES:
        budget = [MAX_RESULT_BYTES]

        def write(connection: Any) -> Any:
            outcome = run_write(connection, Authorizer(access), headers.query, headers.params, budget, want_rows=True)
            if form == "query" and isinstance(outcome, int):
                raise _no_rows(call.tool)  # rolls the statement back
            return outcome

        result = await database.write(write)
    if isinstance(result, int):
        if form == "query":
            raise _no_rows(call.tool)
        return JsonContent(json=msgspec.to_builtins(StatementOutput(rows_affected=result)))
    return _opened(call, target, result)


async def execute_sql(call: ToolCall) -> Content:
    """A query answers `binary {"kind": "query", "query_id"}` with its schema blob; a statement
    `json {"kind": "statement", "rows_affected"}`."""
    return await _run(call, "any")


async def open_sql_query(call: ToolCall) -> Content:
    """As `execute_sql`, for queries only (1002 for a statement, which is not run)."""
    return await _run(call, "query")


async def execute_sql_statement(call: ToolCall) -> Content:
    """Runs on the writer; rows it returns are dropped. `json {"rows_affected"}`."""
    headers = _headers(call)
    target = await open_database(call, headers.database, headers.namespace, "execute", "execute SQL")
    budget = [MAX_RESULT_BYTES]
    rows = await target.database.write(
        lambda connection: run_write(connection, Authorizer(target.access), headers.query, headers.params, budget, want_rows=False)
    )
    return JsonContent(json=msgspec.to_builtins(RowsAffectedOutput(rows_affected=rows)))


_PLAIN = "the statement failed: "


async def execute_sql_batch(call: ToolCall) -> Content:
    arguments = call.json_arguments(ExecuteSqlBatchInput)
    target = await open_database(call, arguments.database, arguments.namespace, "execute", "execute SQL")
    if not arguments.commands:
        return JsonContent(json=msgspec.to_builtins(BatchOutput(results=[])))
    queries = open_queries.queries_of(call.room, "sqlite")
    free = queries.limit - len(queries.owned_by(call.caller))
    budget = [MAX_RESULT_BYTES]

    def work(connection: Any) -> list[Any]:
        results: list[Any] = []
        opened = 0
        for index, command in enumerate(arguments.commands):
            try:
                result = run_write(connection, Authorizer(target.access), command.query, command.params, budget, want_rows=True)
                if isinstance(result, MemoryCursor):
                    opened += 1
                    if opened > free:
                        raise RoomException(f"too many open sql queries (limit {queries.limit})", code=ErrorCode.OPERATION_FAILED)
            except RoomException as error:
                reason = error.message[len(_PLAIN) :] if error.message.startswith(_PLAIN) else error.message
                raise RoomException(f"command {index} failed: {reason}", code=error.code) from None
            results.append(result)
        return results

    results = await target.database.write(work)
    answers: list[Any] = []
    for result in results:
        if isinstance(result, int):
            answers.append(StatementOutput(rows_affected=result))
        else:
            query = queries.add(call.caller, result, tag=target.key)
            answers.append(BatchQuery(query_id=query.id, schema_base64=base64.b64encode(schema_blob(result.schema)).decode("ascii")))
    return JsonContent(json=msgspec.to_builtins(BatchOutput(results=answers)))


async def read_sql_query(call: ToolCall) -> None:
    sqlite_grant(call)
    await open_queries.read_sql_query(call, RULES)


async def close_sql_query(call: ToolCall) -> None:
    sqlite_grant(call)
    await open_queries.close_sql_query(call, "sqlite")


async def cancel_sql_query(call: ToolCall) -> Content:
    sqlite_grant(call)
    return await open_queries.cancel_sql_query(call, "sqlite")


TOOLS = {
    "execute_sql": execute_sql,
    "open_sql_query": open_sql_query,
    "execute_sql_statement": execute_sql_statement,
    "execute_sql_batch": execute_sql_batch,
    "read_sql_query": read_sql_query,
    "close_sql_query": close_sql_query,
    "cancel_sql_query": cancel_sql_query,
}

__all__ = ["TOOLS"]
