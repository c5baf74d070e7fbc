"""REST handlers of the Files API (protocol/rest.md §22): none. The Files API is not in the REST
route table (see `meshagent_core.rest.files`): `files_front.serve_files` serves it under its own
prefix, with the work on disk in `files_storage`."""

from __future__ import annotations

from .context import Handler

HANDLERS: dict[str, Handler] = {}
