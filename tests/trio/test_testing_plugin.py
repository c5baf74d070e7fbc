"""`meshagent_trio.testing`, the pytest plugin for users' tests: a user's test files run in a
separate pytest (a subprocess in a clean temporary directory, without this repository's
conftest, so the plugin is found through its `pytest11` entry point alone), on pytest-trio and
on AnyIO's plugin with asyncio; and the in-process server's start, crash and stop."""

from __future__ import annotations

import os
import socket
import threading

import pytest
import trio

from meshagent_trio.testing import InProcessServer, ServerError

pytest_plugins = ["pytester"]

#: A safety net for each inner pytest run, so a hang fails the test instead of blocking the
#: suite; not an assertion about time.
INNER_RUN_LIMIT = 180

#: A user's test file on pytest-trio; the README's example, verbatim (its first line names the
#: file, which is how the README's own test recognises a test file).
TRIO_USER_TESTS = '''# test_meshagent_rooms.py
import httpx
import pytest

import meshagent_trio
from meshagent_trio import ApiScope, RoomException, StorageGrant, StoragePathGrant


@pytest.mark.trio
async def test_two_participants_share_files_and_messages(meshagent_room):
    async with meshagent_room("demo", name="alice") as alice, meshagent_room("demo", name="bob") as bob:
        assert isinstance(alice, meshagent_trio.RoomClient)

        await alice.storage.upload(path="notes/hello.txt", data=b"hello from alice")
        assert (await bob.storage.download(path="notes/hello.txt")).data == b"hello from alice"

        await alice.messaging.enable()
        await bob.messaging.enable()
        async with alice.messaging.messages() as inbox:
            await bob.messaging.send_message(to=alice.local_participant.id, type="greeting", message={"text": "hi"})
            message = await anext(inbox)
        assert message.from_participant_id == bob.local_participant.id
        assert (message.type, message.message) == ("greeting", {"text": "hi"})


@pytest.mark.trio
async def test_a_restricted_token_is_enforced(meshagent_server, meshagent_room):
    async with meshagent_room("demo", name="owner") as owner:
        await owner.storage.upload(path="shared/readme.txt", data=b"read me")

    # Read-only storage under shared/, and no other API family (no messaging).
    read_only = ApiScope(storage=StorageGrant(paths=[StoragePathGrant(path="shared", read_only=True)]))
    token = meshagent_server.token("demo", name="reader", scope=read_only)
    async with meshagent_trio.connect(meshagent_server.room_url("demo"), token) as reader:
        assert (await reader.storage.download(path="shared/readme.txt")).data == b"read me"
        with pytest.raises(RoomException) as denied:
            await reader.storage.upload(path="shared/new.txt", data=b"nope")
        assert denied.value.code == 1001  # permission denied
        with pytest.raises(RoomException) as no_messaging:
            await reader.messaging.enable()
        assert no_messaging.value.code == 1001
        assert not await reader.storage.exists(path="shared/new.txt")


@pytest.mark.trio
async def test_code_configured_by_the_environment(meshagent_server, meshagent_room, monkeypatch):
    # The fixture sets no environment variable; code that reads MESHAGENT_API_URL and
    # MESHAGENT_API_KEY is pointed at the server like this.
    for name, value in meshagent_server.environ().items():
        monkeypatch.setenv(name, value)
    async with meshagent_trio.connect("demo", participant_name="from-env") as room:  # URL and token from the environment
        await room.storage.upload(path="env.txt", data=b"configured by the environment")
    async with meshagent_room("demo", name="checker") as checker:
        assert (await checker.storage.download(path="env.txt")).data == b"configured by the environment"


def test_plain_synchronous_code(meshagent_server):
    # The server runs in a thread of its own, so blocking clients work too.
    response = httpx.get(meshagent_server.api_url + "/")
    assert response.status_code == 200
'''

#: The same on AnyIO's pytest plugin, on asyncio (the room client is then `meshagent_anyio`); the
#: README's second example, verbatim.
ASYNCIO_USER_TESTS = '''# test_meshagent_asyncio.py
import asyncio

import pytest

import meshagent_anyio
from meshagent_anyio import ApiScope, MessagingGrant, RoomException, StorageGrant, StoragePathGrant

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend():
    return "asyncio"


async def test_two_participants_share_files_and_messages(meshagent_room):
    asyncio.get_running_loop()  # raises RuntimeError unless this runs on asyncio
    async with meshagent_room("demo", name="alice") as alice, meshagent_room("demo", name="bob") as bob:
        assert isinstance(alice, meshagent_anyio.RoomClient)

        await alice.storage.upload(path="notes/hello.txt", data=b"hello from alice")
        assert (await bob.storage.download(path="notes/hello.txt")).data == b"hello from alice"

        await alice.messaging.enable()
        await bob.messaging.enable()
        async with alice.messaging.messages() as inbox:
            await bob.messaging.send_message(to=alice.local_participant.id, type="greeting", message={"text": "hi"})
            message = await anext(inbox)
        assert message.from_participant_id == bob.local_participant.id
        assert (message.type, message.message) == ("greeting", {"text": "hi"})


async def test_a_restricted_token_is_enforced(meshagent_server, meshagent_room):
    async with meshagent_room("demo", name="owner") as owner:
        await owner.storage.upload(path="shared/readme.txt", data=b"read me")

    read_only = ApiScope(storage=StorageGrant(paths=[StoragePathGrant(path="shared", read_only=True)]))
    token = meshagent_server.token("demo", name="reader", scope=read_only)
    async with meshagent_anyio.connect(meshagent_server.room_url("demo"), token) as reader:
        assert (await reader.storage.download(path="shared/readme.txt")).data == b"read me"
        with pytest.raises(RoomException) as denied:
            await reader.storage.upload(path="shared/new.txt", data=b"nope")
        assert denied.value.code == 1001
        with pytest.raises(RoomException) as no_messaging:
            await reader.messaging.enable()
        assert no_messaging.value.code == 1001
        assert not await reader.storage.exists(path="shared/new.txt")


async def test_the_scope_argument_of_the_room_factory(meshagent_room):
    async with meshagent_room("demo", name="owner") as owner:
        await owner.storage.upload(path="shared/readme.txt", data=b"read me")
    no_storage = ApiScope(messaging=MessagingGrant())
    async with meshagent_room("demo", name="messenger", scope=no_storage) as messenger:
        await messenger.messaging.enable()
        with pytest.raises(RoomException) as denied:
            await messenger.storage.download(path="shared/readme.txt")
        assert denied.value.code == 1001
'''

#: A user's tests that are wrong (a read-only token expected to write, wrong content expected), and
#: one whose server crashes.
WRONG_USER_TESTS = '''
import socket
import threading

import pytest

from meshagent_trio import ApiScope, StorageGrant, StoragePathGrant


@pytest.mark.trio
async def test_right(meshagent_room):
    async with meshagent_room("demo", name="owner") as owner:
        await owner.storage.upload(path="shared/readme.txt", data=b"read me")
        assert (await owner.storage.download(path="shared/readme.txt")).data == b"read me"


@pytest.mark.trio
async def test_wrong_expects_a_read_only_token_to_write(meshagent_room):
    read_only = ApiScope(storage=StorageGrant(paths=[StoragePathGrant(path="shared", read_only=True)]))
    async with meshagent_room("demo", name="reader", scope=read_only) as reader:
        await reader.storage.upload(path="shared/new.txt", data=b"nope")


@pytest.mark.trio
async def test_wrong_content(meshagent_room):
    async with meshagent_room("demo", name="alice") as alice, meshagent_room("demo", name="bob") as bob:
        await alice.storage.upload(path="a.txt", data=b"what alice wrote")
        assert (await bob.storage.download(path="a.txt")).data == b"something else"


class Broken:
    async def handle(self, stream):
        raise RuntimeError("server bug")


def test_server_crash_fails_the_teardown(meshagent_server):
    [thread] = [t for t in threading.enumerate() if t.name == f"meshagent-server:{meshagent_server.port}"]
    meshagent_server.server.http = Broken()  # the next connection crashes the server
    socket.create_connection(("127.0.0.1", meshagent_server.port)).close()
    thread.join(10)
    assert not meshagent_server.running
'''


@pytest.fixture
def user_project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """A clean directory for a user's tests: no conftest, no ini, no MESHAGENT_* variable in
    the environment the inner pytest inherits."""
    for name in list(os.environ):
        if name.startswith("MESHAGENT_"):
            monkeypatch.delenv(name)
    return pytester


def run_user_tests(project: pytest.Pytester) -> pytest.RunResult:
    return project.runpytest_subprocess(
        "-p", "no:cacheprovider", f"--rootdir={project.path}", "-v", timeout=INNER_RUN_LIMIT
    )


def test_user_tests_on_pytest_trio_pass(user_project: pytest.Pytester) -> None:
    user_project.makepyfile(test_meshagent_rooms=TRIO_USER_TESTS)
    result = run_user_tests(user_project)
    result.assert_outcomes(passed=4)
    # Found through its entry point alone, by a pytest rooted in the user's directory.
    result.stdout.fnmatch_lines([f"rootdir: {user_project.path}", "plugins:*meshagent-trio*"])


def test_user_tests_on_anyio_asyncio_pass(user_project: pytest.Pytester) -> None:
    user_project.makepyfile(test_meshagent_asyncio=ASYNCIO_USER_TESTS)
    result = run_user_tests(user_project)
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["*test_two_participants_share_files_and_messages*PASSED*"])


def test_wrong_user_tests_fail(user_project: pytest.Pytester) -> None:
    user_project.makepyfile(test_user_wrong=WRONG_USER_TESTS)
    result = run_user_tests(user_project)
    # The crash test passes its own body; the fixture's teardown reports the server's crash.
    result.assert_outcomes(passed=2, failed=2, errors=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "*test_right PASSED*",
            "*test_wrong_expects_a_read_only_token_to_write FAILED*",
            "*test_wrong_content FAILED*",
            "*test_server_crash_fails_the_teardown PASSED*",
            "*test_server_crash_fails_the_teardown ERROR*",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_server_crash_fails_the_teardown*",
            "*ServerError: the in-process MeshAgent server failed*",
            "*_ test_wrong_expects_a_read_only_token_to_write _*",
            "*RoomException: you do not have permission to write 'shared/new.txt'",
            "*_ test_wrong_content _*",
            "*AssertionError: assert b'what alice wrote' == b'something else'",
        ]
    )


# --- the in-process server itself ----------------------------------------------------------------


def test_the_server_listens_and_sets_nothing_global(tmp_path) -> None:
    environ_before = dict(os.environ)
    with InProcessServer(tmp_path / "data") as server:
        assert server.running
        assert dict(os.environ) == environ_before
        assert server.api_url == f"http://127.0.0.1:{server.port}"
        assert server.room_url("r") == f"ws://127.0.0.1:{server.port}/rooms/r"
        assert server.environ() == {"MESHAGENT_API_URL": server.api_url, "MESHAGENT_API_KEY": server.credentials.api_key}
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as connection:
            connection.sendall(b"GET / HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
            assert connection.recv(64).startswith(b"HTTP/1.1 200")
    assert not server.running
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", server.port), timeout=10).close()


def test_a_server_that_cannot_listen_fails_to_start(tmp_path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        server = InProcessServer(tmp_path / "data", port=taken.getsockname()[1])
        with pytest.raises(ServerError) as failed:
            server.start()
    assert _contains(failed.value.__cause__, OSError)
    assert not server.running


class Boom(Exception):
    pass


class _CrashingFront:
    async def handle(self, stream: trio.SocketStream) -> None:
        raise Boom("the server's connection handler crashed")


def test_a_server_crash_is_reported_when_it_stops(tmp_path) -> None:
    server = InProcessServer(tmp_path / "data").start()
    [thread] = [thread for thread in threading.enumerate() if thread.name == f"meshagent-server:{server.port}"]
    server.server.http = _CrashingFront()  # type: ignore[assignment]  # the next connection crashes the server
    socket.create_connection(("127.0.0.1", server.port), timeout=10).close()
    thread.join(10)  # the server's run ends by itself
    assert not server.running
    with pytest.raises(ServerError, match="failed") as crashed:
        server.stop()
    assert _contains(crashed.value.__cause__, Boom)
    server.stop()  # reported once; stopping again is a no-op


def test_a_server_that_does_not_stop_is_reported_not_waited_for(tmp_path) -> None:
    entered, release = threading.Event(), threading.Event()

    class StuckFront:
        async def handle(self, stream: trio.SocketStream) -> None:
            entered.set()
            await trio.to_thread.run_sync(release.wait)  # ignores cancellation until released

    server = InProcessServer(tmp_path / "data", stop_timeout=0.2).start()
    server.server.http = StuckFront()  # type: ignore[assignment]
    with socket.create_connection(("127.0.0.1", server.port), timeout=10):
        assert entered.wait(10)
        try:
            with pytest.raises(ServerError, match="did not stop"):
                server.stop()
            assert server.running
        finally:
            release.set()
    server.stop_timeout = 10
    server.stop()
    assert not server.running


def _contains(error: BaseException | None, kind: type[BaseException]) -> bool:
    if isinstance(error, BaseExceptionGroup):
        return error.subgroup(kind) is not None
    return isinstance(error, kind)
