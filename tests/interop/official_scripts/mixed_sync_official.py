"""The official client's half of `test_sync_interop.py` (run by that test, not with the
scenario_* scripts): it edits one document while our client edits it too.

It appends 10 cells and a heading, waits until it sees our client's 10 cells and heading,
edits our first cell, waits until it sees our client's edit of its own first cell, then
reports the document as it sees it and closes it."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from meshagent.api.schema import MeshSchema

from _official import connect, observed, run, timed, wait_until

# Read by path: this interpreter (the official client's) need not have meshagent_core installed.
VECTORS = json.loads((Path(__file__).resolve().parents[3] / "src" / "meshagent_core" / "testing" / "vectors" / "sync_vectors.json").read_text())
SCHEMA = MeshSchema.from_json(VECTORS["schema"])
PATH = "mixed/shared.notebook"


def sources(document) -> list[str]:
    return [str(c.get_attribute("source")) for c in document.root.get_children() if c.tag_name == "cell"]


async def main() -> dict:
    async with connect("official") as room:
        document = await timed("open", room.sync.open(path=PATH, create=True, schema=SCHEMA))
        for n in range(10):
            document.root.append_child("cell", {"kind": "markdown", "source": f"official {n}", "order": n})
            await asyncio.sleep(0)
        document.root.append_child("heading", {"level": 2, "label": "official heading"})

        def sees_ours() -> bool:
            labels = [c.get_attribute("label") for c in document.root.get_children() if c.tag_name == "heading"]
            return sum(s.startswith("ours ") for s in sources(document)) == 10 and "ours heading" in labels

        observed["saw_ours"] = await wait_until("see our client's edits", sees_ours, timeout=30)
        for child in document.root.get_children():
            if child.tag_name == "cell" and child.get_attribute("source") == "ours 0":
                child.set_attribute("source", "ours 0, edited by the official client")
        observed["saw_our_edit"] = await wait_until(
            "see our client's edit of an official cell",
            lambda: "official 0, edited by our client" in sources(document),
            timeout=30,
        )
        observed["final"] = document.to_json()
        await timed("close", room.sync.close(path=PATH))
    return observed


run(main)
