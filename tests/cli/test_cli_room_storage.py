"""`meshagent-trio room storage`: ls, stat, exists, get, presign/url, rm, mv and cp in every
direction, against the session's local server; a 200 MB round trip by `cp` in a child process
whose peak memory is measured."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Callable

import pytest

from clirun import CliResult, assert_one_line_error, ok
from meshagent_core.tokens import ApiScope
from meshagent_trio.testing import InProcessServer


def test_copy_up_inspect_and_copy_down(cli: Callable[..., CliResult], room_name: str, tmp_path: Path) -> None:
    local = tmp_path / "hello.txt"
    local.write_text("héllo\nworld")  # no final newline: `get` adds one
    r = ("--room", room_name)

    ok(cli("room", "storage", "cp", *r, str(local), "room://docs/"))
    listed = ok(cli("room", "storage", "ls", *r, "room://", "-o", "json")).json()
    assert [(row["path"], row["is_folder"]) for row in listed] == [("docs", True)]
    deep = ok(cli("room", "storage", "ls", *r, "-r", "room://", "-o", "json")).json()
    assert [(row["path"], row["size"]) for row in deep] == [("docs", None), ("docs/hello.txt", len("héllo\nworld".encode()))]
    table = ok(cli("room", "storage", "ls", *r, "room://docs"))
    assert "docs/hello.txt" in table.stdout and "size" in table.stdout
    assert ok(cli("room", "storage", "ls", *r, "room://docs/*.txt", "-o", "json")).json()[0]["name"] == "hello.txt"

    stat = ok(cli("room", "storage", "stat", *r, "room://docs/hello.txt", "-o", "json")).json()
    assert stat["name"] == "hello.txt" and stat["is_folder"] is False and stat["size"] == 12 and stat["updated_at"]
    assert "hello.txt" in ok(cli("room", "storage", "stat", *r, "room://docs/hello.txt")).stdout

    assert ok(cli("room", "storage", "exists", *r, "room://docs/hello.txt", "-o", "json")).json() == {"path": "docs/hello.txt", "exists": True}
    assert ok(cli("room", "storage", "exists", *r, "docs/nope", "-o", "json")).json()["exists"] is False
    assert "does NOT exist" in ok(cli("room", "storage", "exists", *r, "room://nope")).stdout

    assert ok(cli("room", "storage", "get", *r, "room://docs/hello.txt")).stdout == "héllo\nworld\n"

    url = ok(cli("room", "storage", "presign", *r, "room://docs/hello.txt", "-o", "json")).json()["url"]
    with urllib.request.urlopen(url, timeout=10) as answer:
        assert answer.read() == local.read_bytes()
    alias = ok(cli("room", "storage", "url", *r, "room://docs/hello.txt")).stdout.strip()
    assert alias.startswith("http") and "hello.txt" in alias

    down = tmp_path / "down" / "copy.txt"
    result = ok(cli("room", "storage", "cp", *r, "room://docs/hello.txt", str(down)))
    assert down.read_bytes() == local.read_bytes() and result.stdout == ""
    into = tmp_path / "down"
    ok(cli("room", "storage", "cp", *r, "room://docs/hello.txt", str(into)))
    assert (into / "hello.txt").read_bytes() == local.read_bytes()
    assert not [p for p in into.iterdir() if p.name.endswith(".part")]


def test_recursive_copies_in_every_direction(cli: Callable[..., CliResult], room_name: str, tmp_path: Path) -> None:
    r = ("--room", room_name)
    tree = tmp_path / "site"
    (tree / "css").mkdir(parents=True)
    (tree / "index.html").write_text("<h1>hi</h1>")
    (tree / "css" / "a.css").write_text("body{}")
    (tree / "css" / "b.css").write_bytes(os.urandom(300_000))

    assert_one_line_error(cli("room", "storage", "cp", *r, str(tree), "room://site"), 2, "-r", "folder")
    assert "copied 3 files" in ok(cli("room", "storage", "cp", *r, "-r", str(tree), "room://site")).stderr
    paths = {row["path"] for row in ok(cli("room", "storage", "ls", *r, "-r", "room://site", "-o", "json")).json()}
    assert paths == {"site/index.html", "site/css", "site/css/a.css", "site/css/b.css"}

    # room to room: a folder, then a glob of files into a folder
    ok(cli("room", "storage", "cp", *r, "-r", "room://site", "room://backup/site"))
    assert ok(cli("room", "storage", "get", *r, "room://backup/site/css/a.css")).stdout == "body{}\n"
    ok(cli("room", "storage", "cp", *r, "room://site/css/*.css", "room://flat/"))
    flat = ok(cli("room", "storage", "ls", *r, "room://flat", "-o", "json")).json()
    assert [(row["name"], row["size"]) for row in flat] == [("a.css", 6), ("b.css", 300_000)]

    # room to local, into an existing folder
    out = tmp_path / "out"
    out.mkdir()
    ok(cli("room", "storage", "cp", *r, "-r", "room://backup/site", str(out)))
    for relative in ("index.html", "css/a.css", "css/b.css"):
        assert (out / "site" / relative).read_bytes() == (tree / relative).read_bytes()

    assert_one_line_error(cli("room", "storage", "cp", *r, "room://flat/*.css", "room://site/index.html"), 2, "not a folder")
    assert_one_line_error(cli("room", "storage", "cp", *r, str(tree / "index.html"), str(out)), 2, "room://PATH")
    assert_one_line_error(cli("room", "storage", "cp", *r, "room://flat/a.css", "room://flat/"), 2, "onto itself")


def test_move_and_remove(cli: Callable[..., CliResult], room_name: str, tmp_path: Path) -> None:
    r = ("--room", room_name)
    local = tmp_path / "a.txt"
    local.write_text("a")
    for name in ("a.txt", "b.txt", "keep.md"):
        ok(cli("room", "storage", "cp", *r, str(local), f"room://drafts/{name}"))

    ok(cli("room", "storage", "mv", *r, "room://drafts/a.txt", "room://final/a2.txt"))
    ok(cli("room", "storage", "mv", *r, "room://drafts/b.txt", "room://final"))  # into the existing folder
    names = [row["path"] for row in ok(cli("room", "storage", "ls", *r, "-r", "room://", "-o", "json")).json()]
    assert names == ["drafts", "drafts/keep.md", "final", "final/a2.txt", "final/b.txt"]
    assert ok(cli("room", "storage", "get", *r, "room://final/a2.txt")).stdout == "a\n"

    assert_one_line_error(cli("room", "storage", "rm", *r, "room://final"), 2, "--recursive", "folder")
    ok(cli("room", "storage", "rm", *r, "room://final/*.txt"))
    assert ok(cli("room", "storage", "ls", *r, "room://final", "-o", "json")).json() == []
    ok(cli("room", "storage", "rm", *r, "-r", "room://drafts"))
    assert ok(cli("room", "storage", "exists", *r, "room://drafts", "-o", "json")).json()["exists"] is False
    assert_one_line_error(cli("room", "storage", "rm", *r, "room://"), 2, "root")


def test_errors_are_one_line(cli: Callable[..., CliResult], room_name: str, tmp_path: Path) -> None:
    r = ("--room", room_name)
    assert_one_line_error(cli("room", "storage", "ls", "room://"), 2, "--room")
    assert_one_line_error(cli("room", "storage", "cp", str(tmp_path), "room://x"), 2, "--room")
    assert_one_line_error(cli("room", "storage", "ls", *r, "docs"), 2, "room://PATH")
    assert_one_line_error(cli("room", "storage", "ls", *r, "agent://docs"), 2, "agent://")
    assert_one_line_error(cli("room", "storage", "get", *r, "room://../etc/passwd"), 1, "invalid storage path")
    assert_one_line_error(cli("room", "storage", "ls", *r, "room://nope"), 1, "room storage ls: error:", "room://nope does not exist")
    assert_one_line_error(cli("room", "storage", "stat", *r, "room://nope"), 1, "room://nope does not exist")
    assert_one_line_error(cli("room", "storage", "get", *r, "room://nope"), 1, "not found")
    assert_one_line_error(cli("room", "storage", "rm", *r, "room://nope/*.txt"), 1, "nothing matches")
    assert_one_line_error(cli("room", "storage", "mv", *r, "room://nope", "room://x"), 1, "not found")
    assert_one_line_error(cli("room", "storage", "cp", *r, str(tmp_path / "missing"), "room://x"), 1, "no such file")
    assert_one_line_error(cli("room", "storage", "presign", *r, "room://nope"), 1, "not found")
    assert_one_line_error(cli("room", "storage", "get", *r, "room://x", "--encoding", "klingon"), 2, "--encoding")


def test_without_the_storage_grant(cli: Callable[..., CliResult], cli_env: InProcessServer, room_name: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("MESHAGENT_API_KEY")
    monkeypatch.setenv("MESHAGENT_ROOM", room_name)
    monkeypatch.setenv("MESHAGENT_TOKEN", cli_env.token(room_name, scope=ApiScope()))
    (tmp_path / "f.txt").write_text("x")
    assert_one_line_error(cli("room", "storage", "ls", "room://"), 1, "room storage ls: error:", "does not grant the storage API")
    assert_one_line_error(cli("room", "storage", "cp", str(tmp_path / "f.txt"), "room://f.txt"), 1, "room storage cp: error:", "does not grant the storage API")


def _write_pseudo_random(path: Path, size: int) -> str:
    """`size` bytes, 1 MiB at a time (never the whole file in memory); their sha256."""
    digest = hashlib.sha256()
    block = os.urandom(1024 * 1024)
    with path.open("wb") as file:
        for index in range(size // len(block)):
            chunk = index.to_bytes(8, "little") + block[8:]  # every block differs
            digest.update(chunk)
            file.write(chunk)
    return digest.hexdigest()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


#: Runs its arguments as a child and prints `exit-status max-rss-KiB` of it. Linux counts the
#: memory of the process that forked a child into the child's ru_maxrss (the pre-exec copy), so
#: a child of the test process would report at least the test process's own size; a child of
#: this small launcher reports at least the launcher's (about 10 MiB) and otherwise its own.
MEASURE = (
    "import os, subprocess, sys\n"
    "child = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL)\n"
    "_pid, status, usage = os.wait4(child.pid, 0)\n"
    "print(os.waitstatus_to_exitcode(status), usage.ru_maxrss)\n"
)


def _cp_in_a_child(source: str, dest: str, room: str, env: dict[str, str]) -> int:
    """Run `room storage cp` in a child process; its peak RSS in KiB (measured by `os.wait4`)."""
    command = [sys.executable, "-m", "meshagent_trio", "room", "storage", "cp", "--room", room, source, dest]
    result = subprocess.run([sys.executable, "-c", MEASURE, *command], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    status, peak = map(int, result.stdout.split())
    assert status == 0, result.stderr
    return peak


def test_a_200_mb_round_trip_in_bounded_memory(cli_env: InProcessServer, room_name: str, tmp_path: Path) -> None:
    size = 200 * 1024 * 1024
    original = tmp_path / "big.bin"
    expected = _write_pseudo_random(original, size)
    env = {**os.environ, **cli_env.environ()}
    started = time.monotonic()
    up = _cp_in_a_child(str(original), "room://big/big.bin", room_name, env)
    back = tmp_path / "back.bin"
    down = _cp_in_a_child("room://big/big.bin", str(back), room_name, env)
    print(f"200 MB cp: peak RSS up {up / 1024:.1f} MiB, down {down / 1024:.1f} MiB, {time.monotonic() - started:.1f} s")
    assert back.stat().st_size == size
    assert _sha256(back) == expected
    assert up < 150 * 1024 and down < 150 * 1024, (up, down)


def _cp_stderr(source: Path, dest: str, room: str, *, terminal: bool) -> bytes:
    """What `room storage cp` writes to stderr when stderr is a terminal (a pty) or a pipe."""
    import pty
    import select

    args = [sys.executable, "-m", "meshagent_trio", "room", "storage", "cp", "--room", room, str(source), dest]
    if not terminal:
        done = subprocess.run(args, capture_output=True, timeout=120, env=dict(os.environ))
        assert done.returncode == 0, done
        return done.stderr
    controller, terminal_end = pty.openpty()
    child = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=terminal_end, env={**os.environ, "COLUMNS": "120"})
    os.close(terminal_end)
    seen = b""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        ready, _, _ = select.select([controller], [], [], 1.0)
        if ready:
            try:
                data = os.read(controller, 65536)
            except OSError:  # the child closed its end
                break
            if not data:
                break
            seen += data
        elif child.poll() is not None:
            break
    os.close(controller)
    assert child.wait(timeout=30) == 0, seen
    return seen


def test_progress_is_drawn_on_a_terminal_only(cli_env: InProcessServer, room_name: str, tmp_path: Path) -> None:
    source = tmp_path / "eight.bin"
    source.write_bytes(os.urandom(8 * 1024 * 1024))
    drawn = _cp_stderr(source, "room://eight-a.bin", room_name, terminal=True).decode(errors="replace")
    assert "8.4 MB" in drawn and "/s" in drawn, drawn  # the size copied and the rate
    piped = _cp_stderr(source, "room://eight-b.bin", room_name, terminal=False).decode()
    assert piped.startswith("copied 1 file") and len(piped.splitlines()) == 1 and "\x1b" not in piped and "/s" not in piped, piped
