"""Collaborative documents with the official client on our server (protocol/documents.md §4): two official
clients open one document (created with a schema and initial JSON), edit it at the same time,
converge; describe; errors; the document is still there for a third client after both closed."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from meshagent.api.schema import MeshSchema

from _official import connect, expect_error, observed, run, timed, wait_until

# Read by path: this interpreter (the official client's) need not have meshagent_core installed.
VECTORS = json.loads((Path(__file__).resolve().parents[3] / "src" / "meshagent_core" / "testing" / "vectors" / "sync_vectors.json").read_text())
SCHEMA = MeshSchema.from_json(VECTORS["schema"])
PATH = "docs/shared.notebook"
INITIAL = {"notebook": {"title": "kept only locally", "cells": [{"cell": {"kind": "code", "source": "print(1)", "order": 1}}]}}
EDITS = 15


def cells_of(document) -> list[dict]:
    return [c for c in document.to_json()["notebook"]["cells"] if "cell" in c]


async def main() -> dict:
    async with connect("alice") as alice, connect("bob") as bob:
        a = await timed("alice opens with create", alice.sync.open(path=PATH, create=True, initial_json=INITIAL, schema=SCHEMA))
        b = await timed("bob opens", bob.sync.open(path="/" + PATH, create=False))
        observed["bob_initial"] = b.to_json()
        observed["bob_schema_root"] = b.schema.root.tag_name

        a.root.get_children()[0]["source"] = "print(2)"

        async def append(document, who: str) -> None:
            for n in range(EDITS):
                document.root.append_child("cell", {"kind": "markdown", "source": f"{who} {n}", "order": n})
                await asyncio.sleep(0)

        await timed("concurrent edits", asyncio.gather(append(a, "alice"), append(b, "bob")))
        heading = b.root.append_child("heading", {"level": 2, "label": "from bob"})
        heading.append_child("text")

        def converged() -> bool:
            return a.to_json() == b.to_json() and len(a.root.get_children()) == 2 * EDITS + 2

        observed["converged"] = await wait_until("converge", converged)
        observed["alice_final"] = a.to_json()
        observed["bob_final"] = b.to_json()
        observed["described"] = await timed("describe", bob.sync.describe(path=PATH))

        observed["open_missing"] = await expect_error("open missing, create=False", alice.sync.open(path="docs/missing.notebook", create=False))
        observed["create_existing"] = await expect_error("create existing", alice.sync.create(path=PATH, json=None, schema=SCHEMA))
        observed["open_without_schema"] = await expect_error("open .noschema without schema", alice.sync.open(path="docs/x.noschema", create=True))
        await timed("create another", alice.sync.create(path="docs/other.notebook", json=INITIAL, schema=SCHEMA))
        observed["describe_other"] = await timed("describe other", alice.sync.describe(path="docs/other.notebook"))

        await timed("alice closes", alice.sync.close(path=PATH))
        await timed("bob closes", bob.sync.close(path=PATH))

    async with connect("carol") as carol:
        c = await timed("carol opens after both closed", carol.sync.open(path=PATH, create=False))
        observed["carol_json"] = c.to_json()
        await timed("carol closes", carol.sync.close(path=PATH))
    return observed


run(main)
