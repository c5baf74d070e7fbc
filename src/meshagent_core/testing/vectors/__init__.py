"""The protocol's conformance vectors, shipped as package data.

Each vector file is a JSON document next to this module (`<name>.json`), copied from the
protocol specification:

* `api_key_vectors`: API key strings and base36 UUID compression (protocol/tokens.md §1);
* `token_vectors`: participant tokens, signed and verified, and scope serialisation (protocol/tokens.md §7);
* `wire_vectors`: packets, envelopes, messages and receiver cases of the official 0.56 client
  (protocol/wire.md §10; a JSON array);
* `sync_vectors`: documents, updates and the sync wire of the official 0.56 runtime (protocol/documents.md §6).
* `webhook_vectors`: webhook requests signed by the official 0.56 sender and the official
  receiver's answers to valid and altered ones (protocol/webhooks.md §2).

    from meshagent_core.testing import vectors

    vectors.names()                   # ['api_key_vectors', 'sync_vectors', ...]
    wire = vectors.load("wire_vectors")

`load` parses the file on every call, so callers may modify what it returns. The files are read
with `importlib.resources`, so this works from a wheel or a zip as well as from a source tree.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

_SUFFIX = ".json"


def names() -> list[str]:
    """The names of the vector files, sorted (without the `.json` suffix)."""
    return sorted(
        entry.name[: -len(_SUFFIX)]
        for entry in resources.files(__name__).iterdir()
        if entry.is_file() and entry.name.endswith(_SUFFIX)
    )


def read_text(name: str) -> str:
    """The text of the vector file `name` (`"sync_vectors"`; a `.json` suffix is accepted)."""
    stem = name[: -len(_SUFFIX)] if name.endswith(_SUFFIX) else name
    if stem not in names():
        raise KeyError(f"no vector file named {name!r}; there are: {', '.join(names())}")
    return resources.files(__name__).joinpath(stem + _SUFFIX).read_text(encoding="utf-8")


def load(name: str) -> Any:
    """The parsed vector file `name`: a dict, or a list for `wire_vectors`. A fresh copy on
    every call."""
    return json.loads(read_text(name))


__all__ = ["load", "names", "read_text"]
