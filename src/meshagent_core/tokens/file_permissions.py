"""Room file permissions: canonical paths, `FilePathRule` and `FilesPolicy` (protocol/tokens.md §5.3)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Annotated, Literal

import msgspec

from .model import FrozenGrantModel

FileAction = Literal["list", "read", "write", "delete", "presign"]
FILE_ACTIONS: tuple[FileAction, ...] = ("list", "read", "write", "delete", "presign")

MAX_POLICY_ENTRIES = 1000

_READ_ACTIONS: tuple[FileAction, ...] = ("list", "read")
_WRITE_ACTIONS: tuple[FileAction, ...] = ("list", "read", "write", "delete")
_FORBIDDEN_SEGMENTS = frozenset({"", ".", "..", ".meshagent-directory"})

_PathList = Annotated[list[str], msgspec.Meta(max_length=MAX_POLICY_ENTRIES)]
_ActionList = list[FileAction]


#: A backslash, a C0 control character, DEL or a C1 control character (one regex search is
#: ~15x faster than testing each character, and this runs several times per storage call).
_FORBIDDEN_CHAR = re.compile(r"[\\\x00-\x1f\x7f-\x9f]")


def is_valid_file_path(path: str) -> bool:
    """True for a canonical relative path: `""` (the root) or `/`-separated segments that are
    not empty, `.`, `..`, `.meshagent-directory` or `.meshagent-upload-*`, with no `\\` and no
    control characters."""
    if path.startswith("/") or _FORBIDDEN_CHAR.search(path):
        return False
    if path == "":
        return True
    if path[0] != "." and "/." not in path:
        # Every forbidden segment but the empty one starts with ".", and none does here.
        return "//" not in path and not path.endswith("/")
    return not any(
        part in _FORBIDDEN_SEGMENTS or part.startswith(".meshagent-upload-")
        for part in path.split("/")
    )


def validate_file_path(path: str) -> str:
    """Return `path` if it is canonical (see `is_valid_file_path`), else raise `ValueError`."""
    if not is_valid_file_path(path):
        raise ValueError("Files paths must be canonical relative paths")
    return path


def normalize_storage_path(path: str) -> str:
    """Normalise a request path without validating it.

    Drops leading `./` repeatedly, strips `/` on both ends and maps `.` to the root `""`.
    """
    while path.startswith("./"):
        path = path[2:]
    path = path.strip("/")
    return "" if path == "." else path


def storage_request_path(path: str) -> str:
    """Normalise then validate a storage request path; raises `ValueError` when invalid."""
    return validate_file_path(normalize_storage_path(path))


def _inside(parent: str, path: str) -> bool:
    """Segment-bounded containment: the root contains everything."""
    return parent == "" or path.startswith(parent + "/")


class FilePathRule(FrozenGrantModel, frozen=True, forbid_unknown_fields=True):
    """Actions allowed on `path` (and below it when `recursive`), minus excluded subtrees."""

    path: str
    recursive: bool
    actions: _ActionList
    excluded_paths: _PathList = msgspec.field(default_factory=list)

    def __post_init__(self) -> None:
        validate_file_path(self.path)
        if len(self.excluded_paths) > MAX_POLICY_ENTRIES:
            raise ValueError(f"excluded_paths may hold at most {MAX_POLICY_ENTRIES} entries")
        for excluded in self.excluded_paths:
            validate_file_path(excluded)
        for action in self.actions:
            if action not in FILE_ACTIONS:
                raise ValueError(f"unknown file action: {action!r}")

    def allows(self, action: FileAction, path: str, *, subtree: bool = False) -> bool:
        """Whether this rule grants `action` on the canonical `path`.

        `subtree` asks for the whole tree under `path` (recursive delete, …): the rule must be
        recursive and no excluded path may lie inside `path`. Raises `ValueError` for a
        non-canonical `path`.
        """
        validate_file_path(path)
        return self._allows_valid(action, path, subtree)

    def _allows_valid(self, action: FileAction, path: str, subtree: bool) -> bool:
        """`allows` for a `path` already known to be canonical."""
        if action not in self.actions or (subtree and not self.recursive):
            return False
        if path != self.path and not (self.recursive and _inside(self.path, path)):
            return False
        for excluded in self.excluded_paths:
            if path == excluded or _inside(excluded, path) or (subtree and _inside(path, excluded)):
                return False
        return True


_RuleList = Annotated[list[FilePathRule], msgspec.Meta(max_length=MAX_POLICY_ENTRIES)]


class FilesPolicy(FrozenGrantModel, frozen=True, forbid_unknown_fields=True):
    """A list of `FilePathRule`s; an action is allowed when any rule allows it."""

    paths: _RuleList = msgspec.field(default_factory=list)

    def __post_init__(self) -> None:
        if len(self.paths) > MAX_POLICY_ENTRIES:
            raise ValueError(f"paths may hold at most {MAX_POLICY_ENTRIES} entries")

    def allows(self, action: FileAction, path: str, *, subtree: bool = False) -> bool:
        """Whether any rule allows `action` on the canonical `path` (`ValueError` if invalid)."""
        validate_file_path(path)
        return self._allows_valid(action, path, subtree)

    def _allows_valid(self, action: FileAction, path: str, subtree: bool) -> bool:
        """`allows` for a `path` already known to be canonical."""
        for rule in self.paths:
            if rule._allows_valid(action, path, subtree):
                return True
        return False

    def can_list_directory(self, path: str) -> bool:
        """`list` is allowed on `path`, or some rule that may list its own path lies inside it
        (so the parents of a granted folder, up to the root, are listable)."""
        validate_file_path(path)
        return self._can_list_directory_valid(path)

    def _can_list_directory_valid(self, path: str) -> bool:
        """`can_list_directory` for a `path` already known to be canonical."""
        return self._allows_valid("list", path, False) or any(
            rule._allows_valid("list", rule.path, False) and _inside(path, rule.path) for rule in self.paths
        )


def legacy_storage_rules(paths: Iterable[tuple[str, bool]] | None) -> list[FilePathRule]:
    """Convert legacy ordered storage prefixes `(path, read_only)` into rules.

    `None` grants everything except `presign`. Otherwise every prefix becomes a recursive rule
    that excludes all earlier prefixes, so the first listed prefix wins. Raises `ValueError`
    for a prefix that is not canonical once stripped of `/`.
    """
    if paths is None:
        return [FilePathRule(path="", recursive=True, actions=list(_WRITE_ACTIONS))]
    previous: list[str] = []
    rules: list[FilePathRule] = []
    for raw_path, read_only in paths:
        path = raw_path.strip("/")
        rules.append(
            FilePathRule(
                path=path,
                recursive=True,
                actions=list(_READ_ACTIONS if read_only else _WRITE_ACTIONS),
                excluded_paths=list(previous),
            )
        )
        previous.append(path)
    return rules
