"""The local server's storage path resolution: `_resolve_below` (one lstat per segment below the
storage root, used for every request) resolves exactly as `os.path.realpath`, links included,
and says when a segment on the way is missing."""

from __future__ import annotations

import os
import tempfile

from hypothesis import given, settings
from hypothesis import strategies as st

from meshagent_trio.server.toolkits.storage_paths import _resolve_below

NAMES = ["a", "b", "c"]
segment = st.sampled_from(NAMES)
relative_paths = st.lists(segment, min_size=1, max_size=5).map("/".join)
# What sits at a name: a folder, a file, or a link to somewhere (inside, outside, missing, itself).
entries = st.one_of(
    st.just(("folder", "")),
    st.just(("file", "")),
    st.tuples(st.just("link"), st.sampled_from(["a", "b/c", "../outside", "/", "missing/x", ".", "..", "c"])),
)
trees = st.dictionaries(relative_paths, entries, max_size=12)


def _build(root: str, tree: dict[str, tuple[str, str]]) -> None:
    for path, (kind, target) in sorted(tree.items(), key=lambda item: item[0].count("/")):
        location = os.path.join(root, path)
        try:
            os.makedirs(os.path.dirname(location), exist_ok=True)
            if kind == "folder":
                os.makedirs(location, exist_ok=True)
            elif kind == "file":
                with open(location, "wb"):
                    pass
            else:
                os.symlink(target, location)
        except OSError:
            pass  # a parent is a file or a link: that entry just does not exist


@settings(max_examples=300, deadline=None)
@given(tree=trees, path=relative_paths)
def test_resolve_below_is_realpath(tree: dict[str, tuple[str, str]], path: str) -> None:
    with tempfile.TemporaryDirectory() as top:
        root = os.path.realpath(os.path.join(top, "storage"))
        os.makedirs(root)
        os.makedirs(os.path.join(top, "outside"))
        _build(root, tree)
        resolved, missing = _resolve_below(root, path)
        assert resolved == os.path.realpath(os.path.join(root, path))
        if missing:  # a segment on the way does not exist: neither does anything below it
            assert not os.path.lexists(resolved)
