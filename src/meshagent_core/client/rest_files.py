"""`Meshagent.files`: the Files API client (protocol/rest.md §22), with the official 0.56 names:
`api.files.for_room(project_id=, room_name=)` (or `for_agent(project_id=, agent_name=)`) gives a
`TargetFilesClient` with `permissions`, `list_page`, `list`, `stat`, `exists`, `download_stream`,
`download`, `upload`, `delete`, `mkdir`, `copy`, `move`, `presign` and `location`.

It finds the Files API's base URL once, from `get_config().domains.files` (`https://` added when
it has no scheme; a URL with credentials, a query or a fragment, or not http(s), is refused), and
builds object URLs with `meshagent_core.rest.files.object_path`. Requests carry the parent
client's current token and `Consistency`, do not follow redirects, and fail as the official
client's do: the typed errors by status (`NotFoundError`, which `exists` reads as False, …),
then any other non-2xx status as `RoomException("Files request returned unexpected HTTP status
N")`. Paths are checked before anything is sent (`ValueError`).
"""

from __future__ import annotations

from typing import Any, AsyncIterable, AsyncIterator, Literal
from urllib.parse import urlsplit

import msgspec

from ..errors import ErrorCode, RoomException
from ..rest.answers import NotFoundError, error_for
from ..rest.files import (
    IS_FOLDER_HEADER,
    MAX_LIST_LIMIT,
    MAX_PRESIGN_SECONDS,
    PRESIGN_METHODS,
    PRESIGN_PATH,
    FileEntry,
    FileLocation,
    FileMetadata,
    FilePermissions,
    FilesPage,
    FilesTarget,
    PresignedFileUrl,
    object_path,
)
from ..tokens.file_permissions import validate_file_path

MAX_DOWNLOAD_CHUNK = 16 * 1024 * 1024


def _failure(message: str) -> RoomException:
    return RoomException(message, code=ErrorCode.INVALID_REQUEST)


def files_base_url(domain: str | None) -> str:
    """The Files API's base URL from `domains.files` (the official checks)."""
    if not domain:
        raise _failure("The files API is unavailable: deployment config has no domains.files")
    base = domain if "://" in domain else f"https://{domain}"
    parts = urlsplit(base)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.username is not None or parts.password is not None or "?" in base or "#" in base:
        raise _failure("Deployment config contains an invalid files endpoint")
    return base.rstrip("/")


class FilesMethods:
    async def call(self, route_name: str, /, **arguments: Any) -> Any:  # provided by Meshagent
        raise NotImplementedError

    @property
    def files(self) -> "FilesClient":
        """The Files API client, sharing this client's credentials (made on first use)."""
        client = self.__dict__.get("_files_client")
        if client is None:
            client = self.__dict__["_files_client"] = FilesClient(self)
        return client


class FilesClient:
    def __init__(self, client: Any) -> None:
        self._client = client
        self._base_url: str | None = None

    def for_room(self, *, project_id: str, room_name: str) -> "TargetFilesClient":
        return self.for_target(FilesTarget(project_id=project_id, kind="room", name=room_name))

    def for_agent(self, *, project_id: str, agent_name: str) -> "TargetFilesClient":
        return self.for_target(FilesTarget(project_id=project_id, kind="agent", name=agent_name))

    def for_target(self, target: FilesTarget) -> "TargetFilesClient":
        return TargetFilesClient(self, target)

    async def _endpoint(self) -> str:
        if self._base_url is None:
            config = await self._client.call("get_config")
            self._base_url = files_base_url(config.domains.files)
        return self._base_url

    def _headers(self, content_type: str = "application/json") -> dict[str, str]:
        return {"Authorization": f"Bearer {self._client.token}", "Content-Type": content_type, "Consistency": self._client.consistency}

    def _http(self) -> Any:
        import httpx

        return httpx.AsyncClient(timeout=self._client.timeout, follow_redirects=False)

    async def _request(self, verb: str, url: str, *, params: dict[str, str] | None = None, content: Any = None, json: Any = None, content_type: str = "application/json") -> Any:
        body = msgspec.json.encode(json) if json is not None else content
        async with self._http() as http:
            response = await http.request(verb, url, params=params, content=body, headers=self._headers(content_type))
        check_status(response.status_code, response.content)
        return response


def check_status(status: int, body: bytes) -> None:
    if status >= 400:
        raise error_for(status, body)
    if not 200 <= status < 300:
        raise _failure(f"Files request returned unexpected HTTP status {status}")


def _model(response: Any, model: type[msgspec.Struct]) -> Any:
    try:
        return msgspec.json.decode(response.content, type=model)
    except (msgspec.ValidationError, msgspec.DecodeError) as error:
        raise _failure(f"Invalid {model.__name__} payload: {error}") from None


class TargetFilesClient:
    def __init__(self, files: FilesClient, target: FilesTarget) -> None:
        self._files = files
        self.target = target

    def location(self, path: str) -> FileLocation:
        return FileLocation(target=self.target, path=path)

    async def _url(self, path: str) -> str:
        validate_file_path(path)
        return await self._files._endpoint() + object_path(self.target, path)

    async def permissions(self, path: str = "") -> FilePermissions:
        response = await self._files._request("GET", await self._url(path), params={"permissions": ""})
        return _model(response, FilePermissions)

    async def list_page(self, path: str = "", *, continuation_token: str | None = None, limit: int = MAX_LIST_LIMIT) -> FilesPage:
        validate_file_path(path)
        if not 1 <= limit <= MAX_LIST_LIMIT:
            raise ValueError(f"Files listing limit must be between 1 and {MAX_LIST_LIMIT}")
        params = {"list": "", "prefix": path, "limit": str(limit)}
        if continuation_token is not None:
            params["continuation_token"] = continuation_token
        response = await self._files._request("GET", await self._url(""), params=params)
        return _model(response, FilesPage)

    async def list(self, path: str = "") -> AsyncIterator[FileEntry]:
        token: str | None = None
        seen: set[str] = set()
        while True:
            page = await self.list_page(path, continuation_token=token)
            for entry in page.entries:
                yield entry
            token = page.continuation_token
            if token is None:
                return
            if token in seen:
                raise _failure("Files server returned a repeated pagination token")
            seen.add(token)

    async def stat(self, path: str) -> FileMetadata:
        response = await self._files._request("HEAD", await self._url(path))
        headers = response.headers
        return FileMetadata(
            path=path,
            size=int(headers.get("content-length", "0")),
            is_folder=headers.get(IS_FOLDER_HEADER) == "true",
            content_type=headers.get("content-type"),
            etag=headers.get("etag"),
            last_modified=headers.get("last-modified"),
        )

    async def exists(self, path: str) -> bool:
        """Only a 404 means absent; refusals and transport errors propagate."""
        try:
            await self.stat(path)
        except NotFoundError:
            return False
        return True

    async def download_stream(self, path: str, *, chunk_size: int = 256 * 1024) -> AsyncIterator[bytes]:
        if not 1 <= chunk_size <= MAX_DOWNLOAD_CHUNK:
            raise ValueError("Download chunk size must be between 1 byte and 16 MiB")
        url = await self._url(path)
        async with self._files._http() as http:
            async with http.stream("GET", url, headers=self._files._headers()) as response:
                if response.status_code >= 300:
                    check_status(response.status_code, await response.aread())
                async for chunk in response.aiter_raw(chunk_size):
                    yield chunk

    async def download(self, path: str) -> bytes:
        return b"".join([chunk async for chunk in self.download_stream(path)])

    async def upload(self, path: str, data: bytes | AsyncIterable[bytes], *, content_type: str = "application/octet-stream", overwrite: bool = True) -> None:
        url = await self._url(path)
        await self._files._request("PUT", url, params={"overwrite": str(overwrite).lower()}, content=data, content_type=content_type)

    async def delete(self, path: str, *, recursive: bool = False) -> None:
        await self._files._request("DELETE", await self._url(path), params={"recursive": str(recursive).lower()})

    async def mkdir(self, path: str) -> None:
        await self._action(path, "mkdir", {})

    async def copy(self, source: FileLocation, destination: str, *, overwrite: bool = False) -> None:
        await self._action(destination, "copy", {"source": msgspec.to_builtins(source), "overwrite": overwrite})

    async def move(self, source: FileLocation, destination: str, *, overwrite: bool = False) -> None:
        await self._action(destination, "move", {"source": msgspec.to_builtins(source), "overwrite": overwrite})

    async def _action(self, path: str, action: str, body: dict[str, Any]) -> None:
        await self._files._request("POST", await self._url(path), params={"action": action}, json=body)

    async def presign(self, path: str, *, method: Literal["GET", "HEAD", "PUT", "DELETE"] = "GET", expires_in: int = 3600) -> PresignedFileUrl:
        validate_file_path(path)
        if method not in PRESIGN_METHODS:
            raise ValueError("Unsupported presigned file method")
        if not 1 <= expires_in <= MAX_PRESIGN_SECONDS:
            raise ValueError("Presigned URL lifetime must be between 1 second and 7 days")
        body = {"target": msgspec.to_builtins(self.target), "path": path, "method": method, "expires_in": expires_in}
        response = await self._files._request("POST", await self._files._endpoint() + PRESIGN_PATH, json=body)
        return _model(response, PresignedFileUrl)


__all__ = ["FilesClient", "FilesMethods", "TargetFilesClient", "files_base_url"]
