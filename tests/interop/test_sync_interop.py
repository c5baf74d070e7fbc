"""Our client and the official 0.56 client edit one document at the same time, through our
server, and end with the same document (protocol/documents.md §4). The official half runs in its own interpreter
(`official_scripts/mixed_sync_official.py`); this test is our half."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import trio

import meshagent_trio
from meshagent_core.sync import MeshSchema
from meshagent_core.testing import vectors
from roomtest import mint
from synctest import without_empty_runs

pytestmark = pytest.mark.interop

SCENARIO_DIR = Path(__file__).resolve().parent / "official_scripts"
SCENARIO_TIMEOUT = 120.0
ROOM = "interop-mixed-sync"
PATH = "mixed/shared.notebook"
SCHEMA = MeshSchema.from_json(vectors.load("sync_vectors")["schema"])


def _sources(document) -> list[str]:
    return [str(c["source"]) for c in document.root.get_children() if c.tag_name == "cell"]


async def test_our_client_and_the_official_client_edit_one_document(official_python, server_process) -> None:
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    env.update({"MESHAGENT_API_URL": server_process.api_url, "MESHAGENT_API_KEY": server_process.api_key, "SCENARIO_ROOM": ROOM})
    token = mint(server_process.credentials, ROOM, name="ours")
    async with meshagent_trio.connect(server_process.room_url(ROOM), token) as room:
        document = await room.sync.open(path=PATH, schema=SCHEMA)
        official: dict[str, subprocess.CompletedProcess[bytes]] = {}

        async def run_official() -> None:
            command = [official_python, str(SCENARIO_DIR / "mixed_sync_official.py")]
            official["done"] = await trio.run_process(command, env=env, cwd=str(SCENARIO_DIR), capture_stdout=True, capture_stderr=True, check=False)

        with trio.fail_after(SCENARIO_TIMEOUT):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(run_official)
                for n in range(10):
                    document.root.append_child("cell", {"kind": "code", "source": f"ours {n}", "order": n})
                    await trio.sleep(0)
                document.root.append_child("heading", {"level": 3, "label": "ours heading"})
                async with room.sync.changes(path=PATH) as changes:
                    while sum(s.startswith("official ") for s in _sources(document)) < 10:
                        await changes.__anext__()
                    for child in document.root.get_children():
                        if child.tag_name == "cell" and child["source"] == "official 0":
                            child["source"] = "official 0, edited by our client"
                    while "ours 0, edited by the official client" not in _sources(document):
                        await changes.__anext__()
        done = official["done"]
        stdout = done.stdout.decode()
        lines = [line for line in stdout.splitlines() if line.startswith("{")]
        theirs = json.loads(lines[-1]) if lines else {}
        assert done.returncode == 0 and theirs.get("saw_ours") and theirs.get("saw_our_edit"), (
            stdout[-3000:] + done.stderr.decode()[-3000:]
        )
        ours = document.to_json()
        assert len(ours["notebook"]["cells"]) == 22
        assert without_empty_runs(theirs["final"]) == without_empty_runs(ours)
        assert without_empty_runs(await room.sync.describe(path=PATH)) == without_empty_runs(ours)
        await room.sync.close(path=PATH)
