"""Matching rules shared by several grants (protocol/tokens.md §5.1, §5.2)."""

from __future__ import annotations

from collections.abc import Sequence


def matches_grant_pattern(
    patterns: Sequence[str] | None, value: str, *, allow_if_unset: bool
) -> bool:
    """Match `value` against grant patterns.

    `None` means unrestricted and returns `allow_if_unset`. A pattern matches when it equals
    `value`, or when it ends in `*` and `value` starts with the pattern minus that `*`. An
    empty list matches nothing.
    """
    if patterns is None:
        return allow_if_unset
    for pattern in patterns:
        if value == pattern or (pattern.endswith("*") and value.startswith(pattern[:-1])):
            return True
    return False


def namespace_matches(granted: Sequence[str] | None, requested: Sequence[str] | None) -> bool:
    """A grant's `namespace` matches when it is `None` (any) or equals the requested one.

    A missing requested namespace is the empty namespace.
    """
    if granted is None:
        return True
    return tuple(granted) == tuple(requested or ())
