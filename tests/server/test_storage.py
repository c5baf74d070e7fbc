"""The `storage` toolkit over real sockets: every tool, the pull-driven streams, file events,
path safety (traversal, reserved names, planted symlinks), grants, atomic uploads."""

from __future__ import annotations

import os
import stat as stat_module
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, AsyncIterator

import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meshagent_core import BinaryContent, ControlContent, EmptyContent, ErrorContent, JsonContent, RoomException, TextContent
from meshagent_core.session.events import FileDeleted, FileMoved, FileUpdated
from meshagent_core.tokens import ApiScope, FilePathRule, FilesPolicy, MessagingGrant, StorageGrant, StoragePathGrant
from meshagent_trio.connection import RoomConnection
from meshagent_trio.server.toolkits import storage_paths
from meshagent_trio.server.toolkits.storage import PULL_CHUNK_SIZE, canonical_path, locate

from roomtest import mint, room_url

ROOM = "test-room"


# --- helpers ---------------------------------------------------------------------------------


def storage_root(server) -> Path:
    return Path(os.path.realpath(server.config.data_dir / "rooms" / ROOM / "storage"))


def join(server, credentials, name: str = "alice", scope: ApiScope | None = None):
    return RoomConnection.open(room_url(server), mint(credentials, name=name, scope=scope))


async def call(room: RoomConnection, tool: str, **arguments: Any) -> Any:
    result = await room.invoke("storage", tool, arguments)
    return result.json if isinstance(result, JsonContent) else result


async def fails(code: int, awaitable: Any) -> RoomException:
    with pytest.raises(RoomException) as info:
        await awaitable
    assert info.value.code == code, info.value
    return info.value


def start_headers(path: str, size: int | None, *, overwrite: bool = False, mime_type: str = "application/octet-stream") -> dict:
    return {"kind": "start", "path": path, "overwrite": overwrite, "name": path.rsplit("/", 1)[-1], "mime_type": mime_type, "size": size}


async def opened(stream) -> None:
    response = await stream.response()
    if isinstance(response, ErrorContent):
        raise response.to_exception()
    assert isinstance(response, ControlContent) and response.is_open, response


async def upload(
    room: RoomConnection, path: str, data: bytes, *, overwrite: bool = False, size: Any = "auto", mime_type: str = "application/octet-stream"
) -> tuple[list[dict], list[int]]:
    """Drive `storage.upload` as the official client does: start, then one data chunk per pull,
    and `control/close` on the pull after the last byte. Returns (pull headers, data sizes)."""
    pulls: list[dict] = []
    sent: list[int] = []
    async with room.stream_call("storage", "upload") as stream:
        stream.send(BinaryContent(headers=start_headers(path, len(data) if size == "auto" else size, overwrite=overwrite, mime_type=mime_type)))
        await opened(stream)
        offset = 0
        async for chunk in stream.chunks():
            if isinstance(chunk, ErrorContent):
                raise chunk.to_exception()
            assert isinstance(chunk, BinaryContent) and chunk.data == b"", chunk
            pulls.append(chunk.headers)
            assert chunk.headers["kind"] == "pull"
            if offset >= len(data):
                stream.close_input()
                continue
            part = data[offset : offset + (chunk.headers.get("chunk_size") or 65536)]
            offset += len(part)
            stream.send(BinaryContent(headers={"kind": "data"}, data=part))
            sent.append(len(part))
    return pulls, sent


async def download(room: RoomConnection, path: str, chunk_size: int = 65536) -> tuple[dict, bytes, list[int]]:
    """Drive `storage.download` as the official client does, checking every rule it checks.
    Returns (start headers, bytes, data chunk sizes)."""
    started: dict | None = None
    data = bytearray()
    sizes: list[int] = []
    async with room.stream_call("storage", "download") as stream:
        stream.send(BinaryContent(headers={"kind": "start", "path": path, "chunk_size": chunk_size}))
        await opened(stream)
        async for chunk in stream.chunks():
            if isinstance(chunk, ErrorContent):
                raise chunk.to_exception()
            assert isinstance(chunk, BinaryContent), chunk
            if chunk.headers.get("kind") == "start":
                assert started is None and chunk.data == b""
                assert set(chunk.headers) == {"kind", "name", "mime_type", "size"}, chunk.headers
                started = chunk.headers
                if started["size"] > 0:
                    stream.send(BinaryContent(headers={"kind": "pull"}))
                continue
            assert chunk.headers == {"kind": "data"} and started is not None
            data += chunk.data
            sizes.append(len(chunk.data))
            assert len(data) <= started["size"]
            if len(data) < started["size"]:
                stream.send(BinaryContent(headers={"kind": "pull"}))
    assert started is not None and len(data) == started["size"]
    return started, bytes(data), sizes


async def next_file_event(room: RoomConnection, *types: type) -> Any:
    """The next file event (a missing event fails the test instead of hanging it)."""
    with trio.fail_after(10):
        return await room.next_event(*(types or (FileUpdated, FileMoved, FileDeleted)))


def read_only_scope() -> ApiScope:
    return ApiScope(storage=StorageGrant(paths=[StoragePathGrant(path="", read_only=True)]))


def folder_scope() -> ApiScope:
    rule = FilePathRule(path="shared", recursive=True, actions=["list", "read", "write", "delete"], excluded_paths=["shared/secret"])
    return ApiScope(storage=StorageGrant(files=FilesPolicy(paths=[rule])))


def leftovers(root: Path) -> list[str]:
    return [name for _, _, files in os.walk(root) for name in files if name.startswith(".meshagent-upload-")]


# --- every tool, end to end ------------------------------------------------------------------


async def test_upload_then_exists_stat_list_download(server, credentials) -> None:
    async with join(server, credentials) as room:
        await upload(room, "docs/hello.txt", b"hello world", mime_type="text/plain")
        assert await call(room, "exists", path="docs/hello.txt") == {"exists": True}
        assert await call(room, "exists", path="./docs/") == {"exists": True}

        stat = await call(room, "stat", path="docs/hello.txt")
        assert set(stat) == {"exists", "name", "is_folder", "size", "created_at", "updated_at"}
        assert (stat["exists"], stat["name"], stat["is_folder"], stat["size"]) == (True, "hello.txt", False, 11)
        assert stat["updated_at"].endswith("Z")
        folder = await call(room, "stat", path="docs")
        assert (folder["name"], folder["is_folder"]) == ("docs", True) and "size" not in folder

        assert [(e["name"], e["is_folder"]) for e in (await call(room, "list", path=""))["files"]] == [("docs", True)]
        listing = await call(room, "list", path="docs")
        assert set(listing) == {"files"}
        assert [(e["name"], e["is_folder"], e["size"]) for e in listing["files"]] == [("hello.txt", False, 11)]

        started, data, _ = await download(room, "docs/hello.txt")
        assert started == {"kind": "start", "name": "hello.txt", "mime_type": "text/plain", "size": 11}
        assert data == b"hello world"
    assert (storage_root(server) / "docs" / "hello.txt").read_bytes() == b"hello world"


async def test_missing_paths(server, credentials) -> None:
    async with join(server, credentials) as room:
        assert await call(room, "exists", path="nope.txt") == {"exists": False}
        assert await call(room, "stat", path="nope.txt") == {"exists": False}
        assert await call(room, "list", path="no/folder") == {"files": []}  # agents list .schemas in fresh rooms
        error = await fails(3001, download(room, "nope.txt"))
        assert "'nope.txt' was not found" in error.message
        await fails(3001, call(room, "delete", path="nope.txt"))
        await fails(3001, call(room, "move", source_path="nope.txt", destination_path="b.txt", overwrite=False))
        await fails(3001, call(room, "download_url", path="nope.txt", download=None))
        assert not (storage_root(server) / "b.txt").exists()


async def test_upload_is_pulled_one_chunk_at_a_time(server, credentials) -> None:
    payload = os.urandom(2 * PULL_CHUNK_SIZE + 5)
    async with join(server, credentials) as room:
        pulls, sent = await upload(room, "big.bin", payload)
        assert pulls == [{"kind": "pull", "chunk_size": PULL_CHUNK_SIZE}] * 4  # 3 data chunks, then the close
        assert sent == [PULL_CHUNK_SIZE, PULL_CHUNK_SIZE, 5]
        _, data, sizes = await download(room, "big.bin", chunk_size=100_000)
        assert data == payload and max(sizes) <= 100_000 and len(sizes) == 6

        pulls, sent = await upload(room, "empty.txt", b"")
        assert (len(pulls), sent) == (1, [])
        started, data, sizes = await download(room, "empty.txt")
        assert (started["size"], data, sizes, started["mime_type"]) == (0, b"", [], "application/octet-stream")  # as uploaded


async def test_five_megabyte_round_trip(server, credentials) -> None:
    payload = os.urandom(5 * 1024 * 1024 + 3)
    async with join(server, credentials) as writer, join(server, credentials, name="reader") as reader:
        await upload(writer, "blobs/five.bin", payload)
        started, data, _ = await download(reader, "blobs/five.bin", chunk_size=256 * 1024)
        assert data == payload and started["size"] == len(payload)
        assert (await call(reader, "stat", path="blobs/five.bin"))["size"] == len(payload)
    assert leftovers(storage_root(server)) == []


async def test_overwrite_rules(server, credentials) -> None:
    async with join(server, credentials) as room:
        await upload(room, "a.txt", b"first")
        error = await fails(3005, upload(room, "a.txt", b"second"))
        assert "overwrite" in error.message
        assert (await download(room, "a.txt"))[1] == b"first"
        await upload(room, "a.txt", b"second", overwrite=True)
        assert (await download(room, "a.txt"))[1] == b"second"

        await upload(room, "dir/inner.txt", b"x")
        await fails(3005, upload(room, "dir", b"not a folder", overwrite=True))
        await fails(3004, upload(room, "a.txt/child", b"under a file"))
        await fails(3004, upload(room, "", b"the root"))
        assert (await call(room, "stat", path="dir"))["is_folder"] is True
    assert leftovers(storage_root(server)) == []


async def test_delete(server, credentials) -> None:
    async with join(server, credentials) as room:
        await upload(room, "f.txt", b"1")
        await upload(room, "tree/a/b.txt", b"2")
        await upload(room, "tree/c.txt", b"3")
        assert isinstance(await call(room, "delete", path="f.txt", recursive=None), EmptyContent)
        assert await call(room, "exists", path="f.txt") == {"exists": False}

        error = await fails(3002, call(room, "delete", path="tree", recursive=None))
        assert "recursive" in error.message
        await fails(3002, call(room, "delete", path="tree", recursive=False))
        assert await call(room, "exists", path="tree/a/b.txt") == {"exists": True}

        await call(room, "delete", path="tree/a/b.txt")
        await call(room, "delete", path="tree/a")  # an empty folder needs no recursive
        assert await call(room, "exists", path="tree/a") == {"exists": False}
        await call(room, "delete", path="tree", recursive=True)
        assert await call(room, "list", path="") == {"files": []}
        await fails(3004, call(room, "delete", path=".", recursive=True))
        await fails(3004, call(room, "delete", path="/", recursive=True))
    assert storage_root(server).is_dir()


async def test_move(server, credentials) -> None:
    async with join(server, credentials) as room:
        await upload(room, "src/a.txt", b"A")
        await upload(room, "src/b.txt", b"B")
        await call(room, "move", source_path="src/a.txt", destination_path="dst/deep/a.txt", overwrite=False)
        assert await call(room, "exists", path="src/a.txt") == {"exists": False}
        assert (await download(room, "dst/deep/a.txt"))[1] == b"A"

        error = await fails(3005, call(room, "move", source_path="src/b.txt", destination_path="dst/deep/a.txt", overwrite=False))
        assert "overwrite" in error.message
        assert (await download(room, "src/b.txt"))[1] == b"B" and (await download(room, "dst/deep/a.txt"))[1] == b"A"
        await call(room, "move", source_path="src/b.txt", destination_path="dst/deep/a.txt", overwrite=True)
        assert (await download(room, "dst/deep/a.txt"))[1] == b"B"
        assert await call(room, "list", path="src") == {"files": []}

        await call(room, "move", source_path="dst", destination_path="moved/dst")  # a folder, overwrite defaults to false
        assert (await download(room, "moved/dst/deep/a.txt"))[1] == b"B"
        await fails(3004, call(room, "move", source_path="moved", destination_path="moved/inside"))
        await upload(room, "file.txt", b"F")
        await fails(3005, call(room, "move", source_path="file.txt", destination_path="moved", overwrite=True))
        await fails(3005, call(room, "move", source_path="moved", destination_path="file.txt", overwrite=True))
        await fails(3004, call(room, "move", source_path="file.txt", destination_path="", overwrite=True))
        await call(room, "move", source_path="file.txt", destination_path="./file.txt")  # onto itself: nothing to do
        assert (await download(room, "file.txt"))[1] == b"F"
        await fails(1002, room.invoke("storage", "move", {"source_path": "file.txt"}))


async def test_events_reach_every_participant(server, credentials) -> None:
    async with join(server, credentials) as alice, join(server, credentials, name="bob") as bob:
        await upload(alice, "./notes/x.txt", b"x")
        expected = FileUpdated(path="notes/x.txt", participant_id=alice.participant_id)
        assert await next_file_event(bob, FileUpdated) == expected
        assert await next_file_event(alice, FileUpdated) == expected  # the originator gets it too

        await fails(3005, upload(alice, "notes/x.txt", b"refused"))  # a refused upload announces nothing
        await call(alice, "move", source_path="/notes/x.txt", destination_path="notes/y.txt")
        moved = FileMoved(source_path="notes/x.txt", destination_path="notes/y.txt", participant_id=alice.participant_id)
        assert await next_file_event(bob) == moved
        assert await next_file_event(alice) == moved
        await call(bob, "delete", path="notes", recursive=True)
        assert await next_file_event(alice) == FileDeleted(path="notes", participant_id=bob.participant_id)
        assert await next_file_event(bob, FileDeleted) == FileDeleted(path="notes", participant_id=bob.participant_id)


# --- path safety -----------------------------------------------------------------------------

BAD_PATHS = ["../x", "a/../../b", "a/..", "..", "a\\b", "a//b", ".meshagent-upload-1", "d/.meshagent-directory", "a\x00b", "tab\there", "x" * 300]


async def test_invalid_paths_are_refused_everywhere(server, credentials) -> None:
    async with join(server, credentials) as room:
        await upload(room, "ok.txt", b"fine")
        for bad in BAD_PATHS:
            for attempt in (
                call(room, "exists", path=bad),
                call(room, "stat", path=bad),
                call(room, "list", path=bad),
                call(room, "delete", path=bad, recursive=True),
                call(room, "move", source_path=bad, destination_path="elsewhere.txt"),
                call(room, "move", source_path="ok.txt", destination_path=bad),
                call(room, "download_url", path=bad, download=None),
                upload(room, bad, b"evil"),
                download(room, bad),
            ):
                error = await fails(3004, attempt)
                assert "invalid storage path" in error.message
        assert (await download(room, "ok.txt"))[1] == b"fine"
    root = storage_root(server)
    assert sorted(os.listdir(root)) == ["ok.txt"]
    assert not (root.parent / "x").exists() and not (root.parent / "b").exists()


async def test_absolute_paths_stay_in_the_room(server, credentials) -> None:
    async with join(server, credentials) as room:
        assert await call(room, "exists", path="/etc/passwd") == {"exists": False}
        await fails(3001, download(room, "/etc/passwd"))
        await upload(room, "/etc/passwd", b"room file")
        assert (await download(room, "etc/passwd"))[1] == b"room file"
    assert (storage_root(server) / "etc" / "passwd").read_bytes() == b"room file"
    assert Path("/etc/passwd").read_bytes() != b"room file"


async def test_planted_symlinks_cannot_escape(server, credentials, tmp_path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_bytes(b"host secret")
    async with join(server, credentials) as room:
        await upload(room, "docs/a.txt", b"inside")
        root = storage_root(server)
        os.symlink(outside, root / "out")
        os.symlink(outside / "secret.txt", root / "leak.txt")
        os.symlink(root / "docs", root / "alias")  # points inside: allowed
        os.symlink("loop", root / "loop")

        await fails(3004, call(room, "exists", path="out/secret.txt"))
        await fails(3004, call(room, "stat", path="leak.txt"))
        await fails(3004, download(room, "leak.txt"))
        await fails(3004, download(room, "out/secret.txt"))
        await fails(3004, call(room, "list", path="out"))
        await fails(3004, upload(room, "out/new.txt", b"escape"))
        await fails(3004, upload(room, "leak.txt", b"clobber", overwrite=True))
        await fails(3004, call(room, "delete", path="leak.txt"))
        await fails(3004, call(room, "delete", path="out", recursive=True))
        await fails(3004, call(room, "move", source_path="leak.txt", destination_path="mine.txt"))
        await fails(3004, call(room, "move", source_path="docs/a.txt", destination_path="out/a.txt"))
        error = await fails(3004, call(room, "exists", path="loop"))
        assert "loop" in error.message

        names = [e["name"] for e in (await call(room, "list", path=""))["files"]]
        assert names == ["alias", "docs"]
        assert (await download(room, "alias/a.txt"))[1] == b"inside"
    assert sorted(os.listdir(outside)) == ["secret.txt"] and (outside / "secret.txt").read_bytes() == b"host secret"


@pytest.fixture(scope="module")
def planted_tree(tmp_path_factory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("planted")
    root = base / "storage"
    outside = base / "outside"
    (root / "a" / "b").mkdir(parents=True)
    outside.mkdir()
    (root / "a" / "file.txt").write_bytes(b"x")
    os.symlink(outside, root / "out")
    os.symlink("..", root / "a" / "up")  # the root: inside
    os.symlink("../..", root / "a" / "esc")  # the base: outside
    os.symlink(root / "a", root / "link")
    os.symlink("loop", root / "loop")
    os.symlink(outside / "nothing", root / "dangling")
    return Path(os.path.realpath(root)), outside


SEGMENTS = st.sampled_from(["..", ".", "", "a", "b", "file.txt", "up", "esc", "out", "link", "loop", "dangling", "\\", "..\\..", "~", ".meshagent-upload-x", "\x00"])


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    prefix=st.sampled_from(["", "/", "./", "//", "././", "../"]),
    segments=st.lists(SEGMENTS | st.text(max_size=6), max_size=6),
)
def test_no_path_resolves_outside_the_storage(planted_tree, prefix: str, segments: list[str]) -> None:
    root, _ = planted_tree
    raw = prefix + "/".join(segments)
    try:
        path = canonical_path(raw)
        location = locate(root, path)
    except RoomException as error:
        assert error.code == 3004
        return
    assert ".." not in path.split("/") and "\\" not in path
    real = os.path.realpath(location)
    assert real == str(root) or real.startswith(str(root) + os.sep), (raw, real)
    if path:  # what delete/move act on: the (unfollowed) last segment inside a contained folder
        parent = os.path.realpath(location.parent)
        assert parent == str(root) or parent.startswith(str(root) + os.sep), (raw, parent)


def reference_lookup(root: Path, path: str) -> tuple[Path, os.stat_result | None]:
    """What `_lookup` must answer, spelled out: `locate`, then a stat that follows links."""
    location = locate(root, path)
    try:
        info = os.stat(location)
    except (FileNotFoundError, NotADirectoryError):
        return location, None
    except OSError as error:
        raise storage_paths.os_error(error, path) from None
    if not (stat_module.S_ISREG(info.st_mode) or stat_module.S_ISDIR(info.st_mode)):
        return location, None
    return location, info


def lookup_outcome(lookup: Any, root: Path, path: str) -> tuple[Any, ...]:
    try:
        location, info = lookup(root, path)
    except RoomException as error:
        return ("error", error.code, error.message)
    return ("found", str(location), None if info is None else (info.st_dev, info.st_ino, info.st_mode))


@pytest.fixture(scope="module")
def lookup_tree(planted_tree) -> Path:
    root, outside = planted_tree
    base = root.parent / "lookup"
    (base / "d" / "e").mkdir(parents=True)
    (base / "d" / "f").write_bytes(b"x")
    (base / "f").write_bytes(b"x")
    os.mkfifo(base / "pipe")
    os.symlink(base / "f", base / "d" / "to_f")  # a file link inside
    os.symlink(base / "d", base / "to_d")  # a folder link inside
    os.symlink(base / "pipe", base / "to_pipe")
    os.symlink(outside, base / "out")
    os.symlink("../f", base / "d" / "up_f")
    os.symlink("../../outside", base / "d" / "esc")
    os.symlink("nothing", base / "dangling")
    os.symlink("loop", base / "loop")
    return Path(os.path.realpath(base))


@settings(max_examples=400, deadline=None)
@given(segments=st.lists(st.sampled_from(["d", "e", "f", "pipe", "to_f", "to_d", "to_pipe", "out", "up_f", "esc", "dangling", "loop", "missing"]), max_size=4))
def test_lookup_takes_fewer_system_calls_to_the_same_answer(lookup_tree, segments: list[str]) -> None:
    """`_lookup` stops at a missing folder and lets one lstat stand for the last segment's stat;
    it must answer exactly as `locate` and a following stat do: same location, same file (or
    none), same errors."""
    path = "/".join(segments)
    expected = lookup_outcome(reference_lookup, lookup_tree, path)
    assert lookup_outcome(storage_paths.lookup, lookup_tree, path) == expected


# --- grants ----------------------------------------------------------------------------------


async def test_read_only_grant_refuses_writes(server, credentials) -> None:
    async with join(server, credentials) as owner, join(server, credentials, name="reader", scope=read_only_scope()) as reader:
        await upload(owner, "r/a.txt", b"keep")
        await fails(1001, upload(reader, "r/b.txt", b"no"))
        await fails(1001, upload(reader, "r/a.txt", b"no", overwrite=True))
        await fails(1001, call(reader, "delete", path="r/a.txt"))
        await fails(1001, call(reader, "delete", path="r", recursive=True))
        await fails(1001, call(reader, "move", source_path="r/a.txt", destination_path="r/c.txt"))
        # reading still works
        assert await call(reader, "exists", path="r/a.txt") == {"exists": True}
        assert [e["name"] for e in (await call(reader, "list", path="r"))["files"]] == ["a.txt"]
        assert (await download(reader, "r/a.txt"))[1] == b"keep"
    assert sorted(os.listdir(storage_root(server) / "r")) == ["a.txt"]


async def test_no_storage_grant_refuses_everything(server, credentials) -> None:
    scope = ApiScope(messaging=MessagingGrant())
    async with join(server, credentials) as owner, join(server, credentials, name="nobody", scope=scope) as nobody:
        await upload(owner, "a.txt", b"a")
        for attempt in (
            call(nobody, "exists", path="a.txt"),
            call(nobody, "stat", path="a.txt"),
            call(nobody, "list", path=""),
            call(nobody, "delete", path="a.txt"),
            call(nobody, "move", source_path="a.txt", destination_path="b.txt"),
            call(nobody, "download_url", path="a.txt", download=None),
            upload(nobody, "c.txt", b"c"),
            download(nobody, "a.txt"),
        ):
            error = await fails(1001, attempt)
            assert "storage" in error.message
    assert sorted(os.listdir(storage_root(server))) == ["a.txt"]


async def test_grant_limited_to_a_folder(server, credentials) -> None:
    async with join(server, credentials) as owner, join(server, credentials, name="guest", scope=folder_scope()) as guest:
        await upload(owner, "private/p.txt", b"p")
        await upload(owner, "shared/secret/s.txt", b"s")
        await upload(guest, "shared/g.txt", b"g")
        assert (await download(guest, "shared/g.txt"))[1] == b"g"
        assert [e["name"] for e in (await call(guest, "list", path=""))["files"]] == ["shared"]  # private is hidden
        assert [e["name"] for e in (await call(guest, "list", path="shared"))["files"]] == ["g.txt"]  # excluded subtree hidden

        await fails(1001, upload(guest, "outside.txt", b"x"))
        await fails(1001, upload(guest, "shared/secret/t.txt", b"x"))
        await fails(1001, download(guest, "private/p.txt"))
        await fails(1001, download(guest, "shared/secret/s.txt"))
        await fails(1001, call(guest, "list", path="private"))
        await fails(1001, call(guest, "exists", path="private/p.txt"))
        await fails(1001, call(guest, "move", source_path="shared/g.txt", destination_path="private/g.txt"))
        await fails(1001, call(guest, "move", source_path="private/p.txt", destination_path="shared/p.txt"))
        await fails(1001, call(guest, "delete", path="private", recursive=True))
        await fails(1001, call(guest, "delete", path="shared", recursive=True))  # would delete the excluded subtree
        await call(guest, "move", source_path="shared/g.txt", destination_path="shared/h.txt")
        await call(guest, "delete", path="shared/h.txt")
    root = storage_root(server)
    assert (root / "private" / "p.txt").read_bytes() == b"p" and (root / "shared" / "secret" / "s.txt").read_bytes() == b"s"
    assert not (root / "outside.txt").exists() and not (root / "shared" / "h.txt").exists()


# --- atomic uploads --------------------------------------------------------------------------


@asynccontextmanager
async def upload_in_progress(room: RoomConnection, path: str, first: bytes, *, overwrite: bool = False) -> AsyncIterator[Any]:
    """An upload that sent `first` and got the next pull (so the server has written it)."""
    async with room.stream_call("storage", "upload") as stream:
        stream.send(BinaryContent(headers=start_headers(path, None, overwrite=overwrite)))
        await opened(stream)
        assert (await stream.next_chunk()).headers["kind"] == "pull"
        stream.send(BinaryContent(headers={"kind": "data"}, data=first))
        assert (await stream.next_chunk()).headers["kind"] == "pull"
        yield stream


async def wait_until_cleaned_up(server, participant_id: str) -> None:
    """The participant leaves the room at once; its cancelled uploads clean up just after."""
    with trio.fail_after(10):
        while participant_id in server.rooms[ROOM].participants or leftovers(storage_root(server)):
            await trio.sleep(0.01)


async def test_abandoned_upload_leaves_no_temporary_or_partial_file(server, credentials) -> None:
    root_of = storage_root
    async with join(server, credentials, name="watcher") as watcher:
        async with join(server, credentials) as quitter:
            await upload(quitter, "kept.txt", b"version 1")
            quitter_id = quitter.participant_id
            async with upload_in_progress(quitter, "kept.txt", b"half of version 2", overwrite=True):
                async with upload_in_progress(quitter, "new/partial.bin", b"partial data"):
                    root = root_of(server)
                    assert len(leftovers(root)) == 2  # written beside the targets, under reserved names
                    assert (root / "kept.txt").read_bytes() == b"version 1"  # never torn
                    assert not (root / "new" / "partial.bin").exists()
                    assert (await download(watcher, "kept.txt"))[1] == b"version 1"
                    assert await call(watcher, "list", path="new") == {"files": []}  # temporaries are invisible
                    await quitter.websocket.abort()  # the client vanishes mid-upload
        await wait_until_cleaned_up(server, quitter_id)
        root = root_of(server)
        assert leftovers(root) == []
        assert not (root / "new").exists()  # the folder the upload created is gone too
        assert (root / "kept.txt").read_bytes() == b"version 1"
        await upload(watcher, "after.txt", b"z")
        # the only file event after the first upload is the watcher's own
        assert await next_file_event(watcher, FileUpdated) == FileUpdated(path="kept.txt", participant_id=quitter_id)
        assert await next_file_event(watcher, FileUpdated) == FileUpdated(path="after.txt", participant_id=watcher.participant_id)


async def test_upload_aborted_by_the_client_leaves_nothing(server, credentials) -> None:
    async with join(server, credentials) as room:
        async with upload_in_progress(room, "aborted.bin", b"some bytes") as stream:
            stream.close_input(1011, "changed my mind")
            chunks = [chunk async for chunk in stream.chunks()]
        assert isinstance(chunks[0], ErrorContent) and chunks[0].text == "changed my mind"
        assert await call(room, "exists", path="aborted.bin") == {"exists": False}
    assert leftovers(storage_root(server)) == []


async def test_upload_size_rules(server, credentials) -> None:
    async with join(server, credentials) as room:
        error = await fails(1002, upload(room, "short.bin", b"12345", size=10))
        assert "5 of the 10 bytes" in error.message
        await fails(1002, upload(room, "long.bin", b"1234567890", size=3))
        await fails(1002, upload(room, "negative.bin", b"", size=-1))
        server.config.max_upload_size = 1000  # a server-wide limit
        error = await fails(1002, upload(room, "huge.bin", b"x", size=1001))
        assert "limit is 1000" in error.message
        await fails(1002, upload(room, "undeclared.bin", os.urandom(1500), size=None))
        await upload(room, "fits.bin", b"x" * 1000, size=None)
        listing = (await call(room, "list", path=""))["files"]
        assert [e["name"] for e in listing] == ["fits.bin"]
    assert leftovers(storage_root(server)) == []


async def test_crash_leftovers_are_swept_on_first_use(server, credentials) -> None:
    stale = server.config.data_dir / "rooms" / ROOM / "storage" / "docs" / ".meshagent-upload-deadbeef"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"torn")
    (stale.parent / "real.txt").write_bytes(b"ok")
    async with join(server, credentials) as room:
        assert [e["name"] for e in (await call(room, "list", path="docs"))["files"]] == ["real.txt"]
    assert not stale.exists() and (stale.parent / "real.txt").read_bytes() == b"ok"


# --- malformed input, download_url ----------------------------------------------------------


async def test_malformed_requests_get_clear_errors(server, credentials) -> None:
    async with join(server, credentials) as room:
        await upload(room, "a.txt", b"a")
        await fails(1002, room.invoke("storage", "exists", {}))
        await fails(1002, room.invoke("storage", "exists", {"path": 5}))
        await fails(1002, room.invoke("storage", "stat", "a.txt"))
        await fails(1002, room.invoke("storage", "delete", {"path": "a.txt", "recursive": "yes"}))
        error = await fails(1002, room.invoke("storage", "upload", {"path": "b.txt"}))
        assert "streamed input" in error.message
        await fails(1002, room.invoke("storage", "download", {"path": "a.txt"}))

        async with room.stream_call("storage", "upload") as stream:  # data before start
            stream.send(BinaryContent(headers={"kind": "data"}, data=b"zz"))
            error = await fails(1002, opened(stream))
            assert "kind 'start'" in error.message
        async with room.stream_call("storage", "upload") as stream:  # start without a path
            stream.send(BinaryContent(headers={"kind": "start"}))
            await fails(1002, opened(stream))
        async with room.stream_call("storage", "upload") as stream:  # a text chunk where data belongs
            stream.send(BinaryContent(headers=start_headers("c.txt", None)))
            await opened(stream)
            await stream.next_chunk()
            stream.send(TextContent(text="not binary"))
            chunks = [chunk async for chunk in stream.chunks()]
            assert isinstance(chunks[0], ErrorContent) and chunks[0].code == 1002
        async with room.stream_call("storage", "download") as stream:  # a pull before any start
            stream.send(BinaryContent(headers={"kind": "pull"}))
            await fails(1002, opened(stream))
        async with room.stream_call("storage", "download") as stream:  # a bogus chunk instead of a pull
            stream.send(BinaryContent(headers={"kind": "start", "path": "a.txt", "chunk_size": 1}))
            await opened(stream)
            assert (await stream.next_chunk()).headers["kind"] == "start"
            stream.send(BinaryContent(headers={"kind": "push"}))
            chunks = [chunk async for chunk in stream.chunks()]
            assert isinstance(chunks[0], ErrorContent) and chunks[0].code == 1002
        await fails(3004, download(room, ""))  # the root is a folder
        await fails(3004, call(room, "list", path="a.txt"))  # a file is not a folder
        assert sorted(os.listdir(storage_root(server))) == ["a.txt"]


async def test_download_url_checks_the_path_and_the_grant(server, credentials) -> None:
    """(What the URL serves: tests/server/test_download_url.py.)"""
    async with join(server, credentials) as room:
        await upload(room, "docs/a.txt", b"a")
        answer = await call(room, "download_url", path="docs/a.txt", download=None)
        assert set(answer) == {"url"} and "/room-files/" in answer["url"]
        await fails(3004, call(room, "download_url", path="docs", download=None))
        await fails(3001, call(room, "download_url", path="docs/b.txt", download=None))
    async with join(server, credentials, name="guest", scope=folder_scope()) as guest:
        await fails(1001, call(guest, "download_url", path="docs/a.txt", download=None))


async def test_stored_mime_type_is_returned(server, credentials) -> None:
    async with join(server, credentials) as room:
        await upload(room, "data.weird", b"{}", mime_type="application/x-meshagent-test")
        await upload(room, "notes.md", b"# hi", mime_type="")
        started, _, _ = await download(room, "data.weird")
        root = storage_root(server)
        try:
            os.getxattr(root / "data.weird", "user.meshagent.mime_type")
            assert started["mime_type"] == "application/x-meshagent-test"
        except OSError:  # no user xattrs on this filesystem: the name decides
            assert started["mime_type"] == "application/octet-stream"
        assert (await download(room, "notes.md"))[0]["mime_type"] == "text/markdown"


async def test_concurrent_no_clobber_uploads_cannot_both_win(server, credentials) -> None:
    async with join(server, credentials) as room:
        async with upload_in_progress(room, "race.txt", b"first") as first, upload_in_progress(room, "race.txt", b"second") as second:
            first.close_input()
            assert [chunk async for chunk in first.chunks()] == []  # committed: a plain close
            second.close_input()
            chunks = [chunk async for chunk in second.chunks()]
            assert isinstance(chunks[0], ErrorContent) and chunks[0].code == 3005
        assert (await download(room, "race.txt"))[1] == b"first"
    assert leftovers(storage_root(server)) == []


async def test_special_files_do_not_exist_for_the_api(server, credentials) -> None:
    async with join(server, credentials) as room:
        await upload(room, "plain.txt", b"p")
        os.mkfifo(storage_root(server) / "pipe")
        assert await call(room, "exists", path="pipe") == {"exists": False}
        await fails(3001, download(room, "pipe"))  # never opened: reading a fifo would block
        assert [e["name"] for e in (await call(room, "list", path=""))["files"]] == ["plain.txt"]
