"""`storage.download_url` through a real room connection, and the URL it answers fetched with
httpx from the server's HTTP front: the whole file, byte ranges (206, 416, multi-range as 200),
HEAD, content type and name; refused once expired (the server's `clock` moved, no sleeping),
tampered with in any part, or when the file is gone; served whether or not the room is
active, for rooms of any project. The signing itself: `signed_downloads`, with Hypothesis on
the range parser."""

from __future__ import annotations

import os
from typing import AsyncIterator
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import meshagent_trio
from meshagent_core import RoomException
from meshagent_core.tokens import ApiScope, FilePathRule, FilesPolicy, StorageGrant
from meshagent_trio.server import Server, ServerConfig
from meshagent_trio.server.http.files import parse_range
from meshagent_trio.server.signed_downloads import DOWNLOAD_URL_LIFETIME, download_url, verify, DownloadRefused

from roomtest import mint, room_url

ROOM = "test-room"
DATA = os.urandom(100_000)


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


async def signed(server: Server, credentials, path: str, data: bytes | None = None, **scope) -> str:
    """Upload `data` to `path` (when given) and ask the room for its download URL."""
    async with meshagent_trio.connect(room_url(server), mint(credentials, **scope)) as room:
        if data is not None:
            await room.storage.upload(path=path, data=data, overwrite=True)
        return await room.storage.download_url(path=path)


def with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    query.update(changes)
    return parts._replace(query=urlencode(query)).geturl()


async def test_the_url_serves_the_file(server, credentials, http) -> None:
    url = await signed(server, credentials, "docs/report.pdf", DATA)
    assert url.startswith(f"http://127.0.0.1:{server.port}/room-files/{credentials.project_id}/{ROOM}/docs/report.pdf?")
    response = await http.get(url)
    assert response.status_code == 200 and response.content == DATA
    assert response.headers["content-type"] == "application/pdf"
    assert response.headers["content-length"] == str(len(DATA))
    assert response.headers["accept-ranges"] == "bytes"
    assert response.headers["content-disposition"] == 'inline; filename="report.pdf"'
    # the room is no longer active (everyone left): the URL still works
    assert (await http.get(url)).content == DATA


async def test_content_types_and_names(server, credentials, http) -> None:
    for path, expected in [("a.txt", "text/plain"), ("data.weird", "application/octet-stream"), ("pic.png", "image/png")]:
        response = await http.get(await signed(server, credentials, path, b"x"))
        assert response.headers["content-type"].split(";")[0] == expected, path
    response = await http.get(await signed(server, credentials, "dossier/résumé \"final\".txt", b"x"))
    disposition = response.headers["content-disposition"]
    assert disposition.startswith("inline; filename=") and "filename*=UTF-8''r%C3%A9sum%C3%A9%20%22final%22.txt" in disposition


async def test_ranges(server, credentials, http) -> None:
    url = await signed(server, credentials, "data.bin", DATA)
    size = len(DATA)
    for header, first, last in [("bytes=0-9", 0, 9), ("bytes=99990-", 99990, size - 1), ("bytes=-5", size - 5, size - 1),
                                ("bytes=50-200000", 50, size - 1), ("bytes=-200000", 0, size - 1)]:  # fmt: skip
        response = await http.get(url, headers={"Range": header})
        assert response.status_code == 206, header
        assert response.headers["content-range"] == f"bytes {first}-{last}/{size}", header
        assert response.content == DATA[first : last + 1], header
    for header in ("bytes=100000-", "bytes=200000-200001", "bytes=-0"):
        response = await http.get(url, headers={"Range": header})
        assert response.status_code == 416, header
        assert response.headers["content-range"] == f"bytes */{size}"
    # several ranges, or a header that does not parse: the whole file
    for header in ("bytes=0-1,5-6", "bytes=9-3", "lines=1-2"):
        response = await http.get(url, headers={"Range": header})
        assert response.status_code == 200 and response.content == DATA, header


async def test_head(server, credentials, http) -> None:
    url = await signed(server, credentials, "data.bin", DATA)
    response = await http.head(url)
    assert response.status_code == 200 and response.content == b""
    assert response.headers["content-length"] == str(len(DATA))
    response = await http.head(url, headers={"Range": "bytes=10-19"})
    assert response.status_code == 206 and response.headers["content-length"] == "10"
    assert (await http.post(url)).status_code == 405


async def test_an_empty_file(server, credentials, http) -> None:
    url = await signed(server, credentials, "empty", b"")
    response = await http.get(url)
    assert response.status_code == 200 and response.content == b""
    assert (await http.get(url, headers={"Range": "bytes=0-"})).status_code == 416


async def test_an_expired_url_is_refused(server, credentials, http) -> None:
    url = await signed(server, credentials, "a.txt", b"a")
    now = server.config.clock()
    server.config.clock = lambda: now + DOWNLOAD_URL_LIFETIME - 5
    assert (await http.get(url)).status_code == 200
    server.config.clock = lambda: now + DOWNLOAD_URL_LIFETIME + 1
    response = await http.get(url)
    assert response.status_code == 403 and "expired" in response.text
    # a later expiry written into the URL is tampering
    expires = dict(parse_qsl(urlsplit(url).query))["expires"]
    assert (await http.get(with_query(url, expires=str(int(expires) + 7200)))).status_code == 403


async def test_a_tampered_url_is_refused(server, credentials, http) -> None:
    url = await signed(server, credentials, "docs/a.txt", b"a")
    await signed(server, credentials, "docs/b.txt", b"b")
    signature = dict(parse_qsl(urlsplit(url).query))["signature"]
    flipped = ("0" if signature[0] != "0" else "1") + signature[1:]
    tampered = [
        with_query(url, signature=flipped),
        with_query(url, signature=""),
        with_query(url, disposition="attachment"),
        url.replace("docs/a.txt", "docs/b.txt"),
        url.replace(f"/{ROOM}/", "/other-room/"),
        url.replace(credentials.project_id, "another-project"),
    ]
    for bad in tampered:
        response = await http.get(bad)
        assert response.status_code in (400, 403), bad
        assert response.status_code == 403 or "signature" in response.text, bad
    assert (await http.get(with_query(url, signature=flipped))).status_code == 403
    assert (await http.get(url.replace("docs/a.txt", "docs/b.txt"))).status_code == 403
    # paths that are not plain relative files are refused before the signature is checked
    # (httpx removes a literal `..` segment itself; encoded, it reaches the server)
    for bad in (url.replace("docs/a.txt", "docs//a.txt"), url.replace("docs/a.txt", "docs/%2E%2E/a.txt"), url.replace("docs/a.txt", "%2Fetc/passwd")):
        assert (await http.get(bad)).status_code == 400, bad
    assert (await http.get(url)).status_code == 200


async def test_a_file_deleted_after_signing_is_404(server, credentials, http) -> None:
    url = await signed(server, credentials, "gone.txt", b"soon gone")
    async with meshagent_trio.connect(room_url(server), mint(credentials)) as room:
        await room.storage.delete(path="gone.txt")
    assert (await http.get(url)).status_code == 404


async def test_download_url_keeps_the_storage_rules(server, credentials) -> None:
    await signed(server, credentials, "docs/a.txt", b"a")
    async with meshagent_trio.connect(room_url(server), mint(credentials)) as room:
        for path, code in (("docs", 3004), ("docs/missing.txt", 3001), ("../x", 3004)):
            with pytest.raises(RoomException) as info:
                await room.storage.download_url(path=path)
            assert info.value.code == code, path
    limited = ApiScope(storage=StorageGrant(files=FilesPolicy(paths=[FilePathRule(path="shared", recursive=True, actions=["read"])])))
    with pytest.raises(RoomException) as info:
        await signed(server, credentials, "docs/a.txt", scope=limited)
    assert info.value.code == 1001


async def test_the_download_flag_asks_for_an_attachment(server, credentials, http) -> None:
    await signed(server, credentials, "a.txt", b"a")
    async with meshagent_trio.connect(room_url(server), mint(credentials)) as room:
        answer = await room.invoke("storage", "download_url", {"path": "a.txt", "download": True})
    response = await http.get(answer.json["url"])
    assert response.headers["content-disposition"] == 'attachment; filename="a.txt"'


async def test_rooms_of_any_project_and_public_urls(tmp_path, credentials, http) -> None:
    """The URL names its project and room: it is served from the data directory whatever the
    project, and a public URL is used as the base."""
    config = ServerConfig(data_dir=tmp_path, credentials=credentials, port=0, public_url="wss://meshagent.example/")
    url = download_url(config, "p2", "room-b", "x/y.txt")
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path) == ("https", "meshagent.example", "/room-files/p2/room-b/x/y.txt")
    assert verify(config, parts.path, dict(parse_qsl(parts.query))).project_id == "p2"
    other_server = ServerConfig(data_dir=tmp_path, credentials=type(credentials)("p", "k", "another secret"), port=0)
    with pytest.raises(DownloadRefused) as info:
        verify(other_server, parts.path, dict(parse_qsl(parts.query)))
    assert info.value.status == 403


@settings(deadline=None)  # pure, but the first example may pay for warming up
@given(size=st.integers(0, 10_000), first=st.integers(0, 20_000), last=st.integers(0, 20_000), form=st.sampled_from(["a-b", "a-", "-n"]))
def test_a_satisfiable_range_lies_inside_the_file(size: int, first: int, last: int, form: str) -> None:
    header = {"a-b": f"bytes={first}-{last}", "a-": f"bytes={first}-", "-n": f"bytes=-{last}"}[form]
    found = parse_range(header, size)
    if found is None:
        assert form == "a-b" and last < first
    elif found is False:
        assert size == 0 or (form != "-n" and first >= size) or (form == "-n" and last == 0)
    else:
        start, end = found
        assert 0 <= start <= end < size
        if form == "-n":
            assert end - start + 1 == min(last, size)
        else:
            assert start == first and end == (min(last, size - 1) if form == "a-b" else size - 1)
