"""The `sqlite` toolkit: per-room SQLite databases (protocol/room-apis.md §13).

The tools live in modules of their own — databases and tables (`sqlite_databases`), rows
(`sqlite_rows`), SQL and open queries (`sqlite_queries`), whole-file transfers
(`sqlite_transfer`) — on stdlib `sqlite3` in worker threads (`sqlite_files` keeps the files and
connections, `sqlite_types` maps Arrow types, `sqlite_access` checks grants and the caller's
SQL). This module gathers them into the toolkit.
"""

from __future__ import annotations

from ..toolkit import Toolkit
from . import sqlite_databases, sqlite_queries, sqlite_rows, sqlite_transfer

toolkit = Toolkit("sqlite")
for _tools in (sqlite_databases.TOOLS, sqlite_rows.TOOLS, sqlite_queries.TOOLS, sqlite_transfer.TOOLS):
    toolkit.tools.update(_tools)

__all__ = ["toolkit"]
