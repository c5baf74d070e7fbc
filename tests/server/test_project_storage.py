"""Project storage over REST (`upload`, `download`: protocol/rest.md §7) against a real server with our
`Meshagent` client: raw binary round trips, uploads larger than `max_request_body` streamed to
disk and bounded by `max_upload_size` (nothing half-written), bad paths 400, missing files and
projects 404, another project's key 403. (The official client: tests/interop/
test_project_storage_interop.py.)"""

from __future__ import annotations

import os
from pathlib import Path
from typing import AsyncIterator

import httpx
import pytest
import trio

from meshagent_core.client.rest import Meshagent
from meshagent_core.rest import RestError
from meshagent_trio.server import Credentials, Server, ServerConfig


def base(server: Server) -> str:
    return f"http://127.0.0.1:{server.port}"


def api(server: Server, token: str) -> Meshagent:
    return Meshagent(base_url=base(server), token=token, retries=0)


def leftovers(folder: Path) -> list[str]:
    return [name for _, _, files in os.walk(folder) for name in files if name.startswith(".meshagent-upload-")]


async def refused(status: int, awaitable, message: str = "Failed to") -> RestError:
    with pytest.raises(RestError) as info:
        await awaitable
    assert info.value.http_status == status, info.value
    assert str(info.value).startswith(message), info.value
    return info.value


@pytest.fixture
async def small_server(tmp_path: Path, credentials: Credentials, nursery: trio.Nursery) -> AsyncIterator[Server]:
    """A server whose request bodies are small and whose uploads are bounded."""
    config = ServerConfig(data_dir=tmp_path / "data", credentials=credentials, port=0, max_request_body=64 * 1024, max_upload_size=3 * 1024 * 1024)
    server = Server(config)
    await nursery.start(server.serve)
    yield server


async def test_binary_data_round_trips(server: Server, credentials: Credentials) -> None:
    project = credentials.project_id
    data = bytes(range(256)) * 300 + b"\x00\r\n"
    async with api(server, credentials.api_key) as client:
        assert await client.upload(project_id=project, path="bin/deep/data.bin", data=data) is None
        assert await client.download(project_id=project, path="bin/deep/data.bin") == data
        await client.upload(project_id=project, path="bin/deep/data.bin", data=b"replaced")
        assert await client.download(project_id=project, path="bin/deep/data.bin") == b"replaced"
        await client.upload(project_id=project, path="./empty", data=b"")
        assert await client.download(project_id=project, path="empty") == b""
    storage = server.config.project_storage_dir(project)
    assert (storage / "bin" / "deep" / "data.bin").read_bytes() == b"replaced"
    assert not leftovers(storage)
    # project storage is not a room's storage
    assert not (server.config.room_data_dir(project, "bin")).exists()


async def test_the_answer_is_raw_bytes_with_a_content_type(server: Server, credentials: Credentials) -> None:
    project = credentials.project_id
    async with api(server, credentials.api_key) as client:
        await client.upload(project_id=project, path="notes.txt", data=b"plain")
    async with httpx.AsyncClient() as http:
        response = await http.get(
            f"{base(server)}/projects/{project}/storage/download",
            params={"path": "notes.txt"},
            headers={"Authorization": f"Bearer {credentials.api_key}"},
        )
    assert response.status_code == 200 and response.content == b"plain"
    assert response.headers["content-type"].startswith("text/plain")
    assert 'filename="notes.txt"' in response.headers["content-disposition"]


async def test_an_upload_larger_than_a_request_body_is_streamed(small_server: Server, credentials: Credentials) -> None:
    project = credentials.project_id
    big = os.urandom(2 * 1024 * 1024 + 17)  # 32 times max_request_body
    async with api(small_server, credentials.api_key) as client:
        await client.upload(project_id=project, path="big.bin", data=big)
        assert await client.download(project_id=project, path="big.bin") == big
        # over max_upload_size: 413, and the file already there is untouched
        error = await refused(413, client.upload(project_id=project, path="big.bin", data=os.urandom(3 * 1024 * 1024 + 1)))
        assert "3145728 bytes" in str(error)
        assert await client.download(project_id=project, path="big.bin") == big
    assert not leftovers(small_server.config.project_storage_dir(project))


async def test_an_upload_cut_off_leaves_nothing(small_server: Server, credentials: Credentials) -> None:
    """A client that promises more than it sends and goes away: no file, no temporary."""
    project = credentials.project_id
    stream = await trio.open_tcp_stream("127.0.0.1", small_server.port)
    head = (
        f"POST /projects/{project}/storage/upload?path=cut.bin HTTP/1.1\r\nHost: x\r\n"
        f"Authorization: Bearer {credentials.api_key}\r\nContent-Type: application/octet-stream\r\n"
        "Content-Length: 1000000\r\n\r\n"
    )
    await stream.send_all(head.encode() + b"x" * 300_000)
    storage = small_server.config.project_storage_dir(project)
    with trio.fail_after(10):
        while not leftovers(storage):  # the server is writing the temporary file
            await trio.sleep(0.01)
    await stream.aclose()
    with trio.fail_after(10):
        while leftovers(storage):
            await trio.sleep(0.01)
    assert not (storage / "cut.bin").exists()


@pytest.mark.parametrize("path", ["../escape", "a/../../escape", "/etc/passwd", "a//b", ".meshagent-upload-x", "", "a\\b"])
async def test_bad_paths_are_refused_with_400(server: Server, credentials: Credentials, path: str) -> None:
    project = credentials.project_id
    async with api(server, credentials.api_key) as client:
        error = await refused(400, client.upload(project_id=project, path=path, data=b"x"), "Failed to upload file. Status code: 400")
        assert "path" in str(error)
        await refused(400, client.download(project_id=project, path=path), "Failed to download file. Status code: 400")
    data_dir = server.config.data_dir
    assert {p.name for p in data_dir.parent.iterdir()} <= {"data"}  # nothing written beside it
    assert not any(name in ("escape", "b", "x") for _, _, files in os.walk(data_dir.parent) for name in files)


async def test_missing_files_folders_and_projects(server: Server, credentials: Credentials) -> None:
    project = credentials.project_id
    async with api(server, credentials.api_key) as client:
        error = await refused(404, client.download(project_id=project, path="nope.bin"), "file was not found")
        assert str(error) == "file was not found"
        await client.upload(project_id=project, path="folder/a.txt", data=b"a")
        await refused(400, client.download(project_id=project, path="folder"))
        await refused(409, client.upload(project_id=project, path="folder", data=b"x"))
        error = await refused(404, client.upload(project_id="nope", path="x", data=b"x"), "Failed to upload file. Status code: 404")
        assert "project 'nope' does not exist" in str(error)
        await refused(404, client.download(project_id="nope", path="x"), "file was not found")
        # a file deleted behind the server's back
        (server.config.project_storage_dir(project) / "folder" / "a.txt").unlink()
        await refused(404, client.download(project_id=project, path="folder/a.txt"), "file was not found")


async def test_another_projects_key_is_refused_with_403(server: Server, credentials: Credentials) -> None:
    own = credentials.project_id
    async with api(server, credentials.api_key) as owner:
        await owner.upload(project_id=own, path="secret.txt", data=b"mine")
        other = await owner.create_project(name="other")
        account = await owner.create_service_account(project_id=other.id, name="worker")
        key = await owner.create_api_key(project_id=other.id, service_account_id=account.id, name="k", description="")
    assert key.value
    async with api(server, key.value) as stranger:
        await refused(403, stranger.upload(project_id=own, path="secret.txt", data=b"theirs"), "Failed to upload file. Status code: 403")
        await refused(403, stranger.download(project_id=own, path="secret.txt"), "Failed to download file. Status code: 403")
        # in its own project the key works, and the projects' storages are apart
        await stranger.upload(project_id=other.id, path="secret.txt", data=b"theirs")
        assert await stranger.download(project_id=other.id, path="secret.txt") == b"theirs"
    async with api(server, credentials.api_key) as owner:
        assert await owner.download(project_id=own, path="secret.txt") == b"mine"
    async with api(server, "not-a-key") as nobody:
        await refused(403, nobody.download(project_id=own, path="secret.txt"))
