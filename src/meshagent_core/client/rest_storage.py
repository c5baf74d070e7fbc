"""The project storage methods of `Meshagent` (protocol/rest.md §7), written out for their types: raw
bytes both ways, as the official client has them (`upload(project_id=, path=, data=)` and
`download(project_id=, path=) -> bytes`). `Meshagent` inherits them; they call `self.call`.

Errors are the official ones: any error status of `upload` raises `RoomException("Failed to
upload file. Status code: N, body: B")`; `download` raises `RoomException("file was not found")`
for a 404 and `Failed to download file. …` for the others (all `RestError`s here, with the real
status in `http_status`)."""

from __future__ import annotations

from typing import Any


class StorageMethods:
    async def call(self, route_name: str, /, **arguments: Any) -> Any:  # provided by Meshagent
        raise NotImplementedError

    async def upload(self, *, project_id: str, path: str, data: bytes) -> None:
        """Write `data` to `path` in the project's storage (replacing what was there)."""
        await self.call("upload", project_id=project_id, path=path, data=data)

    async def download(self, *, project_id: str, path: str) -> bytes:
        """The bytes of the file at `path` in the project's storage."""
        return await self.call("download", project_id=project_id, path=path)
