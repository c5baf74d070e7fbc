"""The wire shapes of open SQL queries, the same in the `sqlite` and `dataset` toolkits
(protocol/room-apis.md §13.4): `close_sql_query` / `cancel_sql_query` inputs and answers, the
start chunk of `read_sql_query`, and the statement answers of `execute_sql` /
`execute_sql_statement`. The answer of a query (`execute_sql`, `open_sql_query`) differs between
the toolkits (the `dataset` one may carry a `content_type`), so each toolkit's contract has its
own.
"""

from __future__ import annotations

from typing import Literal

import msgspec

#: What `cancel_sql_query` answers: the query was stopped and closed (`cancelled`), it is being
#: interrupted while it runs and closes when it stops (`cancelling`), or there is nothing to
#: cancel — an unknown, closed or exhausted query (`not_cancellable`).
CancelStatus = Literal["cancelled", "cancelling", "not_cancellable"]


class QueryIdInput(msgspec.Struct):
    """`close_sql_query`, `cancel_sql_query`."""

    query_id: str


class CancelOutput(msgspec.Struct):
    """`cancel_sql_query` (strict on the client)."""

    status: CancelStatus


class ReadQueryStart(msgspec.Struct, tag_field="kind", tag="start"):
    """First request chunk of `read_sql_query` (`binary`, empty data)."""

    query_id: str


class StatementOutput(msgspec.Struct, tag_field="kind", tag="statement"):
    """`execute_sql` of a statement that returns no rows (strict on the client)."""

    rows_affected: int


class RowsAffectedOutput(msgspec.Struct):
    """`execute_sql_statement`, and the sqlite toolkit's `update` / `delete` (strict)."""

    rows_affected: int


__all__ = ["CancelOutput", "CancelStatus", "QueryIdInput", "ReadQueryStart", "RowsAffectedOutput", "StatementOutput"]
