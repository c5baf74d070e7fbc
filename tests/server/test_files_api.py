"""The Files API (`client.files`, protocol/rest.md §22) over real sockets, with our `Meshagent`:
every method on a room's and an agent's files, the same room storage the room API sees (and its
participants' file events), binary round trips, paging, copies and moves between targets, the
refusals (paths that escape, unknown targets, other projects' keys, overwrites), and presigned
URLs that work, then expire on the server's clock."""

from __future__ import annotations

import os

import httpx
import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st

from meshagent_core import RoomException
from meshagent_core.client.rest import Meshagent
from meshagent_core.client.rest_files import files_base_url
from meshagent_core.rest import ConflictError, NotFoundError, PermissionDeniedError, ValidationErrorResponse
from meshagent_core.rest.files import FILES_PREFIX, FilesTarget, match, object_path
from meshagent_core.session.events import FileDeleted, FileMoved, FileUpdated
from meshagent_trio import RoomClient
from meshagent_trio.server import Credentials, Server
from roomtest import mint, room_url

BINARY = bytes(range(256)) * 1024 + os.urandom(4099)


def base(server: Server) -> str:
    return f"http://127.0.0.1:{server.port}"


def client(server: Server, credentials: Credentials) -> Meshagent:
    return Meshagent(base_url=base(server), token=credentials.api_key)


async def test_get_config_names_the_files_api_on_this_server(server: Server, credentials: Credentials) -> None:
    async with client(server, credentials) as api:
        config = await api.get_config()
    assert config.domains.files == base(server) + FILES_PREFIX
    assert files_base_url(config.domains.files) == base(server) + FILES_PREFIX
    for bad in (None, "ftp://x", "https://u:p@x", "https://x/?q", "https://x#f"):
        with pytest.raises(RoomException, match="files"):
            files_base_url(bad)


async def test_every_method_on_a_room(server: Server, credentials: Credentials) -> None:
    own = credentials.project_id
    async with client(server, credentials) as api:
        await api.create_room(project_id=own, name="studio")
        room = api.files.for_room(project_id=own, room_name="studio")
        assert await room.permissions() == await room.permissions("any/path")
        assert set((await room.permissions()).actions) == {"list", "read", "write", "delete", "presign"}

        await room.upload("data/blob.bin", BINARY, content_type="application/x-test")
        assert await room.download("data/blob.bin") == BINARY
        assert b"".join([c async for c in room.download_stream("data/blob.bin", chunk_size=1000)]) == BINARY
        meta = await room.stat("data/blob.bin")
        assert (meta.size, meta.is_folder, meta.content_type) == (len(BINARY), False, "application/x-test")
        assert meta.etag and meta.last_modified
        folder = await room.stat("data")
        assert folder.is_folder and folder.size == 0
        assert await room.exists("data/blob.bin") and await room.exists("data") and not await room.exists("nope.txt")

        async def chunks():  # sent chunked, with no Content-Length
            yield b"\x00\xfffirst"
            yield b"second"

        await room.upload("data/chunked.bin", chunks())
        assert await room.download("data/chunked.bin") == b"\x00\xfffirstsecond"
        await room.delete("data/chunked.bin")
        with pytest.raises(ConflictError):
            await room.upload("data/blob.bin", b"no", overwrite=False)
        await room.upload("data/blob.bin", b"replaced")
        assert await room.download("data/blob.bin") == b"replaced"
        assert (await room.stat("data/blob.bin")).etag != meta.etag

        await room.mkdir("empty/inner")
        with pytest.raises(ConflictError):
            await room.mkdir("empty/inner")
        assert (await room.stat("empty/inner")).is_folder
        for name in ("a", "b", "c", "d", "e"):
            await room.upload(f"many/{name}.txt", name.encode())
        first = await room.list_page("many", limit=2)
        assert [e.name for e in first.entries] == ["a.txt", "b.txt"] and first.continuation_token
        second = await room.list_page("many", limit=2, continuation_token=first.continuation_token)
        assert [e.name for e in second.entries] == ["c.txt", "d.txt"]
        assert [e.name async for e in room.list("many")] == ["a.txt", "b.txt", "c.txt", "d.txt", "e.txt"]
        assert [(e.name, e.is_folder) async for e in room.list()] == [("data", True), ("empty", True), ("many", True)]
        assert [e.size async for e in room.list("many")] == [1] * 5

        await room.copy(room.location("many"), "copied")
        assert await room.download("copied/c.txt") == b"c" and await room.exists("many/c.txt")
        with pytest.raises(ConflictError):
            await room.copy(room.location("many/a.txt"), "many/b.txt")
        await room.copy(room.location("many/a.txt"), "many/b.txt", overwrite=True)
        assert await room.download("many/b.txt") == b"a"
        await room.move(room.location("many/e.txt"), "moved/e.txt")
        assert not await room.exists("many/e.txt") and await room.download("moved/e.txt") == b"e"
        with pytest.raises(NotFoundError):
            await room.move(room.location("many/e.txt"), "x.txt")

        with pytest.raises(ConflictError):  # a folder with contents needs recursive
            await room.delete("many")
        await room.delete("many", recursive=True)
        await room.delete("data/blob.bin")
        assert not await room.exists("many") and not await room.exists("data/blob.bin")
        with pytest.raises(NotFoundError):
            await room.delete("data/blob.bin")
        with pytest.raises(NotFoundError):
            await room.download("data/blob.bin")
        with pytest.raises(ValidationErrorResponse):
            await room.download("data")  # a folder is not a file


async def test_room_files_are_the_room_storage_and_its_participants_see_the_changes(server: Server, credentials: Credentials) -> None:
    own = credentials.project_id
    async with RoomClient.connect(room_url(server, "live"), mint(credentials, "live", name="alice")) as alice:
        events = alice.subscribe(FileUpdated, FileMoved, FileDeleted)
        async with client(server, credentials) as api:
            room = api.files.for_room(project_id=own, room_name="live")
            await room.upload("notes/x.txt", b"from REST")
            with trio.fail_after(10):
                event = await events.__anext__()
            assert isinstance(event, FileUpdated) and event.path == "notes/x.txt"
            assert (await alice.storage.download(path="notes/x.txt")).data == b"from REST"
            await alice.storage.upload(path="notes/y.txt", data=b"from the room")
            assert await room.download("notes/y.txt") == b"from the room"
            with trio.fail_after(10):
                assert (await events.__anext__()).path == "notes/y.txt"  # the room's own upload
            await room.move(room.location("notes/x.txt"), "notes/z.txt")
            with trio.fail_after(10):
                moved = await events.__anext__()
            assert (moved.source_path, moved.destination_path) == ("notes/x.txt", "notes/z.txt")
            await room.delete("notes", recursive=True)
            with trio.fail_after(10):
                assert (await events.__anext__()).path == "notes"
        events.close()


async def test_agent_files_and_transfers_between_targets(server: Server, credentials: Credentials) -> None:
    own = credentials.project_id
    async with client(server, credentials) as api:
        await api.create_room(project_id=own, name="studio")
        await api.create_agent(project_id=own, configuration={"metadata": {"name": "planner"}, "allowed_models": [{"provider": "openai", "model": "gpt-4.1"}]})
        room = api.files.for_room(project_id=own, room_name="studio")
        agent = api.files.for_agent(project_id=own, agent_name="planner")
        await room.upload("same.txt", b"room")
        await agent.upload("same.txt", b"agent")
        assert (await room.download("same.txt"), await agent.download("same.txt")) == (b"room", b"agent")
        await agent.copy(room.location("same.txt"), "from-room.txt")
        await agent.move(room.location("same.txt"), "moved/from-room.txt")
        assert await agent.download("moved/from-room.txt") == b"room" and not await room.exists("same.txt")
        assert [e.name async for e in agent.list()] == ["from-room.txt", "moved", "same.txt"]
        with pytest.raises(NotFoundError, match="agent 'ghost'"):
            await api.files.for_agent(project_id=own, agent_name="ghost").list_page()


async def test_refusals(server: Server, credentials: Credentials) -> None:
    own = credentials.project_id
    async with client(server, credentials) as api:
        await api.create_room(project_id=own, name="studio")
        other = await api.create_project(name="other")
        room = api.files.for_room(project_id=own, room_name="studio")
        await room.upload("ok.txt", b"fine")
        with pytest.raises(NotFoundError, match="room 'ghost'"):
            await api.files.for_room(project_id=own, room_name="ghost").download("ok.txt")
        with pytest.raises(NotFoundError, match="project 'nope'"):
            await api.files.for_room(project_id="nope", room_name="studio").download("ok.txt")
        with pytest.raises(NotFoundError):  # a HEAD answers no body
            await api.files.for_room(project_id="nope", room_name="studio").stat("ok.txt")
        with pytest.raises(ValidationErrorResponse, match="limit"):
            await room._files._request("GET", await room._url(""), params={"list": "", "prefix": "", "limit": "0"})
        for bad in ("../x", "/etc/passwd", "a//b", "a/./b", "a\\b", ".meshagent-upload-1"):
            with pytest.raises(ValueError):
                await room.upload(bad, b"x")  # refused before anything is sent

        service_account = await api.create_service_account(project_id=other.id, name="robot")
        key = await api.create_api_key(project_id=other.id, service_account_id=service_account.id, name="k", description="")
    async with Meshagent(base_url=base(server), token=key.value) as stranger:
        with pytest.raises(PermissionDeniedError):
            await stranger.files.for_room(project_id=own, room_name="studio").download("ok.txt")
    async with Meshagent(base_url=base(server), token=mint(credentials, "studio")) as participant:
        with pytest.raises(PermissionDeniedError):
            await participant.files.for_room(project_id=own, room_name="studio").download("ok.txt")

    files = base(server) + FILES_PREFIX
    headers = {"Authorization": f"Bearer {credentials.api_key}"}
    async with httpx.AsyncClient() as http:
        assert (await http.get(f"{files}/{own}/rooms/studio/ok.txt")).status_code == 401
        assert (await http.get(f"{files}/{own}/rooms/studio/ok.txt", headers=headers)).content == b"fine"
        # escapes written the way a client that does not check would send them
        for raw in ("%2E%2E/%2E%2E/credentials.json", "a/%2E%2E/%2E%2E/x", "a%2F..%2F..%2Fx", "%2Fetc%2Fpasswd", "a//b", ".meshagent-directory"):
            answer = await http.get(f"{files}/{own}/rooms/studio/{raw}", headers=headers)
            assert answer.status_code == 400, (raw, answer.text)
            assert "canonical" in answer.json()["error"]["message"]
        for raw in (f"{own}/rooms/%2E%2E/x", f"{own}/rooms/a%2Fb/x", f"{own}/volumes/studio/x", "%2E%2E/rooms/studio/x"):
            assert (await http.get(f"{files}/{raw}", headers=headers)).status_code == 400, raw
        assert (await http.request("PATCH", f"{files}/{own}/rooms/studio/ok.txt", headers=headers)).status_code == 400
        answer = await http.post(f"{files}/{own}/rooms/studio/x", params={"action": "copy"}, headers=headers, json={"source": {"path": "ok.txt"}})
        assert answer.status_code == 400 and "target" in answer.json()["error"]["message"]
        answer = await http.post(f"{files}/{own}/rooms/studio/x", params={"action": "mkdir", "extra": "1"}, headers=headers, json={})
        assert answer.status_code == 400 and "extra" in answer.json()["error"]["message"]


async def test_presigned_urls_work_then_expire(server: Server, credentials: Credentials) -> None:
    own = credentials.project_id
    now = [1_900_000_000.0]
    server.config.clock = lambda: now[0]
    async with client(server, credentials) as api:
        await api.create_room(project_id=own, name="studio")
        room = api.files.for_room(project_id=own, room_name="studio")
        await room.upload("doc.bin", BINARY)
        get = await room.presign("doc.bin", expires_in=60)
        put = await room.presign("new.bin", method="PUT", expires_in=60)
        head = await room.presign("doc.bin", method="HEAD", expires_in=60)
        delete = await room.presign("doc.bin", method="DELETE", expires_in=120)
        assert get.method == "GET" and get.expires_at.timestamp() == now[0] + 60
        async with httpx.AsyncClient() as http:  # no credentials: the URL is the authority
            assert (await http.get(get.url)).content == BINARY
            assert (await http.put(put.url, content=b"\x00\x01")).status_code == 200
            assert await room.download("new.bin") == b"\x00\x01"
            assert (await http.head(head.url)).headers["content-length"] == str(len(BINARY))
            assert (await http.put(get.url, content=b"x")).status_code == 403  # signed for GET only
            assert (await http.get(get.url.replace("doc.bin", "new.bin"))).status_code == 403
            now[0] += 61
            assert (await http.get(get.url)).status_code == 403
            assert "expired" in (await http.get(get.url)).json()["error"]["message"]
            assert (await http.delete(delete.url)).status_code == 200
        assert not await room.exists("doc.bin")
        with pytest.raises(ValidationErrorResponse):
            await room._files._request("POST", await room._files._endpoint() + "/v1/presign", json={"target": {"project_id": own, "kind": "room", "name": "studio"}, "path": "x", "expires_in": 0})
        with pytest.raises(NotFoundError):
            await api.files.for_room(project_id=own, room_name="ghost").presign("x")


SEGMENT = st.text(st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="/\\"), min_size=1, max_size=12).filter(
    lambda s: s not in (".", "..") and s != ".meshagent-directory" and not s.startswith(".meshagent-upload-") and all(not 127 <= ord(c) < 160 for c in s)
)


@settings(deadline=None)  # pure, but the first example may pay for warming up
@given(
    project_id=SEGMENT,
    kind=st.sampled_from(["room", "agent"]),
    name=SEGMENT,
    path=st.lists(SEGMENT, max_size=4).map("/".join),
    verb=st.sampled_from(["GET", "HEAD", "PUT", "DELETE"]),
)
def test_object_urls_round_trip(project_id: str, kind: str, name: str, path: str, verb: str) -> None:
    target = FilesTarget(project_id=project_id, kind=kind, name=name)  # type: ignore[arg-type]
    found = match(verb, object_path(target, path), {})
    assert (found.target, found.path) == (target, path)
    assert found.operation.name == {"GET": "download", "HEAD": "stat", "PUT": "upload", "DELETE": "delete"}[verb]
