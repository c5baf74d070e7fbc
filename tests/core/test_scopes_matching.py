"""Matching rules of the grants (protocol/tokens.md §5).

Literal expectations marked "official" were produced by meshagent-api 0.56.0.
"""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meshagent_core.tokens import (
    FILE_ACTIONS,
    ContainerRegistryGrant,
    ContainersGrant,
    DatasetGrant,
    FilePathRule,
    FilesPolicy,
    LivekitGrant,
    LLMGrant,
    MemoryEntryGrant,
    MemoryGrant,
    MemoryPermissions,
    QueuesGrant,
    SqliteDatabaseGrant,
    SqliteGrant,
    SqliteTableGrant,
    StorageGrant,
    StoragePathGrant,
    SyncGrant,
    SyncPathGrant,
    TableGrant,
    is_valid_file_path,
    legacy_storage_rules,
    matches_grant_pattern,
    normalize_storage_path,
    storage_request_path,
    validate_file_path,
)

# -- protocol/tokens.md §5.1 generic patterns -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("patterns", "value", "allow_if_unset", "expected"),
    [
        (None, "x", True, True),
        (None, "x", False, False),
        ([], "x", True, False),
        (["*"], "anything", False, True),
        (["*"], "", False, True),
        (["lib/*"], "lib/tool", False, True),
        (["lib/*"], "lib/", False, True),
        (["lib/*"], "lib", False, False),
        (["gpt-4o*"], "gpt-4o-mini", False, True),
        (["repo/image"], "repo/image", False, True),
        (["repo/image"], "repo/image-extra", False, False),  # 0.8.3 matched this; 0.56 does not
        (["a*b"], "axb", False, False),  # only a trailing * is a wildcard
        (["a*b"], "a*b", False, True),
        (["**"], "*y", False, True),  # only the last * is stripped
        (["**"], "xy", False, False),
        (["", "x"], "", False, True),
    ],
)
def test_matches_grant_pattern(
    patterns: list[str] | None, value: str, allow_if_unset: bool, expected: bool
) -> None:
    assert matches_grant_pattern(patterns, value, allow_if_unset=allow_if_unset) is expected


def test_containers_grant_official_cases() -> None:
    g = ContainersGrant()
    assert g.can_pull("repo/image") and g.can_run("repo/image")
    assert g.can_registry_list("team/app") and g.can_registry_pull("team/app")
    assert g.can_registry_run("team/app") and g.can_registry_write("team/app")

    g = ContainersGrant(pull=["lib/*"], run=["runtime/*"])
    assert g.can_pull("lib/tool") and not g.can_pull("xxx/tool")
    assert g.can_run("runtime/app") and not g.can_run("other/app")
    assert not g.can_run("lib/tool")  # run follows `run`, not `pull`

    exact = ContainersGrant(pull=["repo/image"], run=["runtime/app"])
    assert exact.can_pull("repo/image") and not exact.can_pull("repo/image-extra")
    assert exact.can_run("runtime/app") and not exact.can_run("runtime/app-shell")

    registry = ContainersGrant(
        registry=ContainerRegistryGrant(pull=["team/*"], run=["runtime/*"], write=["publish/*"])
    )
    assert registry.can_registry_list("team/app")
    assert registry.can_registry_list("runtime/app")
    assert registry.can_registry_list("publish/site")
    assert not registry.can_registry_list("other/app")
    assert registry.can_registry_pull("team/app") and not registry.can_registry_pull("other/app")
    assert registry.can_registry_run("runtime/app") and not registry.can_registry_run("team/app")
    assert registry.can_registry_write("publish/site") and not registry.can_registry_write(
        "team/app"
    )

    exact_registry = ContainersGrant(
        registry=ContainerRegistryGrant(
            list=["catalog/*"], pull=["pull/*"], run=["run/*"], write=[]
        )
    )
    assert exact_registry.can_registry_list("catalog/app")
    assert not exact_registry.can_registry_list("pull/app")  # an explicit `list` decides alone
    assert exact_registry.can_registry_pull("pull/app")
    assert exact_registry.can_registry_run("run/app")
    assert not exact_registry.can_registry_write("run/app")


def test_registry_list_rules() -> None:
    assert ContainerRegistryGrant().can_list("any/repo")
    assert not ContainerRegistryGrant(list=[]).can_list("any/repo")
    only_write = ContainerRegistryGrant(write=["w/*"])
    assert only_write.can_list("w/x") and not only_write.can_list("p/x")
    assert only_write.can_pull("p/x")  # unset pull stays unrestricted
    assert not ContainerRegistryGrant(pull=[]).can_list("p/x")


def test_llm_grant() -> None:
    grant = LLMGrant(models=["openai/gpt-4o*", "anthropic/claude-sonnet-4-5"])
    assert grant.can_use_provider("openai") and grant.can_use_provider(" anthropic ")
    assert not grant.can_use_provider("google")
    assert not grant.can_use_provider("open")  # provider is segment-bounded by "/"
    assert grant.can_use_model(provider="openai", model="gpt-4o-mini")
    assert grant.can_use_model(provider=" openai", model="gpt-4o ")
    assert not grant.can_use_model(provider="openai", model="gpt-4.1")
    assert grant.can_use_model(provider="anthropic", model="claude-sonnet-4-5")
    assert not grant.can_use_model(provider="anthropic", model="claude-sonnet-4-5-x")

    unrestricted = LLMGrant()
    assert unrestricted.can_use_provider("any") and unrestricted.can_use_model(
        provider="a", model="b"
    )
    for provider, model in [("", "m"), ("p", " "), ("  ", "m")]:
        assert not unrestricted.can_use_model(provider=provider, model=model)
    assert not unrestricted.can_use_provider("  ")
    assert LLMGrant(models=[" openai/x "]).can_use_provider("openai")  # patterns trimmed here…
    assert not LLMGrant(models=[" openai/x "]).can_use_model(
        provider="openai", model="x"
    )  # …not here
    assert not LLMGrant(models=[]).can_use_provider("openai")


# -- protocol/tokens.md §5.2 name + namespace -----------------------------------------------------------------


def test_dataset_grant_official_cases() -> None:
    g = DatasetGrant()
    assert g.can_read("tbl") and g.can_write("tbl") and g.can_alter("tbl")
    g = DatasetGrant(
        tables=[
            TableGrant(name="read_only", read=True, write=False, alter=False),
            TableGrant(
                name="write_only", namespace=["analytics"], read=False, write=True, alter=False
            ),
        ]
    )
    assert g.can_read("read_only") and not g.can_write("read_only")
    assert g.can_read("read_only", namespace=["any", "where"])  # null namespace matches all
    assert g.can_write("write_only", namespace=["analytics"])
    assert not g.can_write("write_only", namespace=["default"])
    assert not g.can_write("write_only")  # missing namespace is []
    assert not g.can_read("write_only", namespace=["analytics"])
    assert g.can_access("write_only", namespace=["analytics"])
    assert not g.can_read("unknown") and not g.can_write("unknown") and not g.can_access("unknown")
    assert not DatasetGrant(tables=[]).can_read("x")


def test_dataset_any_matching_grant_has_the_flag() -> None:
    g = DatasetGrant(tables=[TableGrant(name="t"), TableGrant(name="t", namespace=[], write=True)])
    assert g.can_write("t") and not g.can_write("t", namespace=["x"])
    assert TableGrant(name="t", namespace=["a", "b"]).namespace == ["a", "b"]
    ordered = DatasetGrant(tables=[TableGrant(name="t", namespace=["a", "b"])])
    assert ordered.can_read("t", namespace=["a", "b"]) and not ordered.can_read(
        "t", namespace=["b", "a"]
    )


def restricted_sqlite() -> SqliteGrant:
    return SqliteGrant(
        create_database=False,
        list_databases=False,
        databases=[
            SqliteDatabaseGrant(
                name="app",
                namespace=["analytics"],
                create_table=True,
                drop=False,
                inspect=True,
                list_tables=True,
                execute=False,
                tables=[
                    SqliteTableGrant(database="app", table="read_only", namespace=["analytics"]),
                    SqliteTableGrant(
                        database="app",
                        table="write_only",
                        namespace=["analytics"],
                        read=False,
                        write=True,
                    ),
                    SqliteTableGrant(database="app", table="schema", read=False, alter=True),
                ],
            ),
            SqliteDatabaseGrant(name="open", drop=True),
        ],
    )


def test_sqlite_grant_official_cases() -> None:
    unrestricted = SqliteGrant()
    assert unrestricted.can_list_databases() and unrestricted.can_create_database()
    assert unrestricted.can_drop_database(database="app")
    assert unrestricted.can_read(database="app", table="users")
    assert unrestricted.can_alter(database="app", table="users")

    g = restricted_sqlite()
    ns = ["analytics"]
    assert not g.can_list_databases() and not g.can_create_database()
    assert g.can_inspect_database(database="app", namespace=ns)
    assert g.can_list_tables(database="app", namespace=ns)
    assert g.can_create_table(database="app", namespace=ns)
    assert not g.can_drop_database(database="app", namespace=ns)
    assert not g.can_execute(database="app", namespace=ns)
    assert g.can_read(database="app", table="read_only", namespace=ns)
    assert not g.can_write(database="app", table="read_only", namespace=ns)
    assert g.can_write(database="app", table="write_only", namespace=ns)
    assert not g.can_read(database="app", table="write_only", namespace=ns)
    assert g.can_alter(database="app", table="schema", namespace=ns)
    assert not g.can_alter(database="app", table="schema", namespace=["other"])
    assert not g.can_read(database="app", table="unknown", namespace=ns)
    assert not g.can_read(database="app", table="read_only", namespace=["other"])
    assert not g.can_inspect_database(database="other", namespace=ns)


def test_sqlite_database_without_table_list_allows_every_table() -> None:
    g = restricted_sqlite()
    # "open" has tables=None and namespace=None: every table, any namespace, default flags
    # do not matter at table level (there are no table grants to consult).
    for namespace in (None, ["x"]):
        assert g.can_read(database="open", table="anything", namespace=namespace)
        assert g.can_write(database="open", table="anything", namespace=namespace)
        assert g.can_alter(database="open", table="anything", namespace=namespace)
        assert g.can_drop_database(database="open", namespace=namespace)
    assert not g.can_access(database="nope", table="t")


def test_memory_grant_official_cases() -> None:
    unrestricted = MemoryGrant()
    assert unrestricted.can_create(name="profile") and unrestricted.can_recall(name="profile")
    restricted = MemoryGrant(
        memories=[
            MemoryEntryGrant(
                name="memories",
                namespace=["agents", "assistant"],
                permissions=MemoryPermissions(drop=False, optimize=False),
            )
        ]
    )
    ns = ["agents", "assistant"]
    assert restricted.can_create(name="memories", namespace=ns)
    assert restricted.can_query(name="memories", namespace=ns)
    assert not restricted.can_drop(name="memories", namespace=ns)
    assert not restricted.can_optimize(name="memories", namespace=ns)
    assert not restricted.can_query(name="memories", namespace=["agents", "other"])
    assert not restricted.can_query(name="other", namespace=ns)
    assert restricted.can_access_existing(name="memories", namespace=ns)
    create_only = MemoryGrant(
        memories=[
            MemoryEntryGrant(
                name="m",
                permissions=MemoryPermissions(
                    drop=False,
                    inspect=False,
                    query=False,
                    upsert=False,
                    ingest=False,
                    recall=False,
                    optimize=False,
                ),
            )
        ]
    )
    assert create_only.can_create(name="m") and not create_only.can_access_existing(name="m")


# -- protocol/tokens.md §5.4 sync, §5.5 queues and livekit ----------------------------------------------------


def test_sync_grant_first_match_decides() -> None:
    assert SyncGrant().can_read("/data/x") and SyncGrant().can_write("/data/x")
    g = SyncGrant(
        paths=[
            SyncPathGrant(path="/cfg/settings.json", read_only=True),
            SyncPathGrant(path="/public/*"),
        ]
    )
    assert g.can_read("/cfg/settings.json") and not g.can_write("/cfg/settings.json")
    assert g.can_write("/public/hello.txt")
    assert not g.can_read("/private/secret.txt") and not g.can_write("/private/secret.txt")
    shadowed = SyncGrant(
        paths=[SyncPathGrant(path="/a*", read_only=True), SyncPathGrant(path="/ab")]
    )
    assert shadowed.can_read("/ab") and not shadowed.can_write("/ab")
    assert SyncGrant(
        paths=[SyncPathGrant(path="/ab"), SyncPathGrant(path="/a*", read_only=True)]
    ).can_write("/ab")
    assert not SyncGrant(paths=[]).can_read("/x")


def test_queues_and_livekit_exact_membership() -> None:
    assert QueuesGrant().can_send("alpha") and QueuesGrant().can_receive("beta")
    q = QueuesGrant(send=["s1"], receive=["r1", "events*"])
    assert q.can_send("s1") and not q.can_send("x")
    assert q.can_receive("r1") and not q.can_receive("s1")
    assert q.can_receive("events*") and not q.can_receive("events-1")  # no wildcards
    assert LivekitGrant().can_join_breakout_room("anything")
    rooms = LivekitGrant(breakout_rooms=["blue", "red"])
    assert rooms.can_join_breakout_room("blue") and not rooms.can_join_breakout_room("green")
    assert not LivekitGrant(breakout_rooms=[]).can_join_breakout_room("blue")


# -- protocol/tokens.md §5.3 storage --------------------------------------------------------------------------

STORAGE_GRANTS = {
    "legacy_ro_then_rw": StorageGrant(
        paths=[StoragePathGrant(path="a", read_only=True), StoragePathGrant(path="a/b")]
    ),
    "legacy_rw_then_ro": StorageGrant(
        paths=[StoragePathGrant(path="a/b"), StoragePathGrant(path="a", read_only=True)]
    ),
    "legacy_vector": StorageGrant.from_json(
        {"paths": [{"path": "public/", "read_only": True}, {"path": "work/"}]}
    ),
    "unrestricted": StorageGrant(),
    "files_policy": StorageGrant.from_json(
        {
            "files": {
                "paths": [
                    {"path": "public", "recursive": True, "actions": ["list", "read"]},
                    {
                        "path": "work",
                        "recursive": True,
                        "actions": ["list", "read", "write", "delete", "presign"],
                        "excluded_paths": ["work/secret"],
                    },
                    {"path": "docs/readme.md", "recursive": False, "actions": ["read"]},
                ]
            }
        }
    ),
    "empty_files_policy": StorageGrant(files=FilesPolicy()),
    "legacy_invalid_path": StorageGrant(paths=[StoragePathGrant(path="a/../b")]),
}
PATHS = [
    "",
    ".",
    "./",
    "/",
    "a",
    "a/x",
    "a/b",
    "a/b/x",
    "ab",
    "public",
    "public/x",
    "publicx",
    "work",
    "work/secret",
    "work/secret/k",
    "work/other",
    "docs",
    "docs/readme.md",
    "docs/readme.md/x",
    "a/../a/b",
    "../a",
    "a\\b",
    ".meshagent-directory",
    "a/.meshagent-upload-1",
    "./work/x",
    "/work/x/",
    "a//b",
]
# Flags: r=can_read w=can_write d=can_delete l=can_list L=can_list_directory p=can_presign
# R=can_read(subtree) W=can_write(subtree) D=can_delete(recursive); "-" = denied. Official.
NONE = "---------"
ROOT_ONLY = "----L----"
ALL_LEGACY = "rwdlL-RWD"
OFFICIAL_STORAGE: dict[str, dict[str, str]] = {
    "legacy_ro_then_rw": {
        "": ROOT_ONLY,
        ".": ROOT_ONLY,
        "./": ROOT_ONLY,
        "/": ROOT_ONLY,
        "a": "r--lL-R--",
        "a/x": "r--lL-R--",
        "a/b": "r--lL-R--",
        "a/b/x": "r--lL-R--",
    },
    "legacy_rw_then_ro": {
        "": ROOT_ONLY,
        ".": ROOT_ONLY,
        "./": ROOT_ONLY,
        "/": ROOT_ONLY,
        "a": "r--lL----",
        "a/x": "r--lL-R--",
        "a/b": ALL_LEGACY,
        "a/b/x": ALL_LEGACY,
    },
    "legacy_vector": {
        "": ROOT_ONLY,
        ".": ROOT_ONLY,
        "./": ROOT_ONLY,
        "/": ROOT_ONLY,
        "public": "r--lL-R--",
        "public/x": "r--lL-R--",
        "work": ALL_LEGACY,
        "work/secret": ALL_LEGACY,
        "work/secret/k": ALL_LEGACY,
        "work/other": ALL_LEGACY,
        "./work/x": ALL_LEGACY,
        "/work/x/": ALL_LEGACY,
    },
    "unrestricted": {
        path: ALL_LEGACY
        for path in PATHS
        if path
        not in {"a/../a/b", "../a", "a\\b", ".meshagent-directory", "a/.meshagent-upload-1", "a//b"}
    },
    "files_policy": {
        "": ROOT_ONLY,
        ".": ROOT_ONLY,
        "./": ROOT_ONLY,
        "/": ROOT_ONLY,
        "public": "r--lL-R--",
        "public/x": "r--lL-R--",
        "work": "rwdlLp---",
        "work/other": "rwdlLpRWD",
        "./work/x": "rwdlLpRWD",
        "/work/x/": "rwdlLpRWD",
        "docs/readme.md": "r--------",
    },
    "empty_files_policy": {},
    "legacy_invalid_path": {},
}


def storage_flags(grant: StorageGrant, path: str) -> str:
    flags = [
        grant.can_read(path),
        grant.can_write(path),
        grant.can_delete(path),
        grant.can_list(path),
        grant.can_list_directory(path),
        grant.can_presign(path),
        grant.can_read(path, subtree=True),
        grant.can_write(path, subtree=True),
        grant.can_delete(path, recursive=True),
    ]
    return "".join(letter if flag else "-" for letter, flag in zip("rwdlLpRWD", flags, strict=True))


@pytest.mark.parametrize("grant_name", list(STORAGE_GRANTS))
def test_storage_matrix_matches_official(grant_name: str) -> None:
    grant = STORAGE_GRANTS[grant_name]
    # Paths not listed for a grant are denied for every check.
    expected = {path: OFFICIAL_STORAGE[grant_name].get(path, NONE) for path in PATHS}
    assert {path: storage_flags(grant, path) for path in PATHS} == expected


@pytest.mark.parametrize("grant_name", list(STORAGE_GRANTS))
def test_canonical_path_checks_answer_as_the_normalising_ones(grant_name: str) -> None:
    grant = STORAGE_GRANTS[grant_name]
    canonical_paths = {storage_request_path(path) for path in PATHS if _is_request_path(path)}
    assert len(canonical_paths) > 10
    for path in canonical_paths:
        for action in ("list", "read", "write", "delete", "presign"):
            assert grant.allows_canonical(action, path) == grant.allows(action, path), (action, path)
        assert grant.can_list_directory_canonical(path) == grant.can_list_directory(path), path


def _is_request_path(path: str) -> bool:
    try:
        storage_request_path(path)
    except ValueError:
        return False
    return True


def test_legacy_paths_conversion() -> None:
    assert StorageGrant().file_policy() == FilesPolicy(
        paths=[FilePathRule(path="", recursive=True, actions=["list", "read", "write", "delete"])]
    )
    policy = StorageGrant(
        paths=[StoragePathGrant(path="/a/", read_only=True), StoragePathGrant(path="a/b/")]
    ).file_policy()
    assert policy.to_json() == {
        "paths": [
            {"path": "a", "recursive": True, "actions": ["list", "read"]},
            {
                "path": "a/b",
                "recursive": True,
                "actions": ["list", "read", "write", "delete"],
                "excluded_paths": ["a"],
            },
        ]
    }
    assert legacy_storage_rules([]) == []
    with pytest.raises(ValueError):
        StorageGrant(paths=[StoragePathGrant(path="a/../b")]).file_policy()


def test_legacy_policy_follows_the_grant_and_cannot_be_changed_from_outside() -> None:
    """Checks share one policy per list of legacy prefixes: it must follow changes to the
    grant's prefixes, and what `file_policy()` hands out is not that shared policy."""
    grant = StorageGrant(paths=[StoragePathGrant(path="a", read_only=True)])
    assert grant.can_read("a/x") and not grant.can_write("a/x") and not grant.can_read("b")
    grant.paths[0].read_only = False
    assert grant.can_write("a/x")
    grant.paths.append(StoragePathGrant(path="b"))
    assert grant.can_read("b") and grant.can_list_directory("b")
    grant.paths = None
    assert grant.can_write("anything")
    handed_out = StorageGrant().file_policy()
    handed_out.paths.clear()
    assert StorageGrant().can_read("x") and StorageGrant().file_policy().paths


def reference_is_valid_file_path(path: str) -> bool:
    """protocol/tokens.md §5.3 spelled out, segment by segment and character by character."""
    if path == "":
        return True
    if any(c == "\\" or ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in path):
        return False
    return all(
        part not in ("", ".", "..", ".meshagent-directory") and not part.startswith(".meshagent-upload-")
        for part in path.split("/")
    )


@settings(max_examples=1000)
@given(
    path=st.lists(
        st.sampled_from(["a", ".", "..", "/", "x.txt", ".a", "a.", ".meshagent-directory", ".meshagent-upload-", "\\", "\x00", "\x85", "é"]),
        max_size=6,
    ).map("".join)
    | st.text(max_size=8)
)
def test_is_valid_file_path_matches_its_definition(path: str) -> None:
    assert is_valid_file_path(path) is reference_is_valid_file_path(path)


def test_explicit_files_policy_wins_and_may_presign() -> None:
    grant = StorageGrant(
        paths=[StoragePathGrant(path="legacy")],
        files=FilesPolicy(paths=[FilePathRule(path="", recursive=True, actions=["presign"])]),
    )
    assert grant.file_policy() is grant.files
    assert grant.can_presign("any/file") and not grant.can_read("legacy/file")
    assert not StorageGrant().can_presign("file")


def test_non_recursive_rule_and_subtree_checks() -> None:
    policy = FilesPolicy(
        paths=[FilePathRule(path="dir", recursive=False, actions=["delete", "list"])]
    )
    assert policy.allows("delete", "dir") and not policy.allows("delete", "dir", subtree=True)
    assert not policy.allows("delete", "dir/child")
    assert policy.can_list_directory("") and policy.can_list_directory("dir")
    assert not policy.can_list_directory("other")
    with pytest.raises(ValueError):
        policy.allows("list", "/dir")  # the policy itself takes canonical paths only


def test_excluded_subtree_blocks_recursive_operations_above_it() -> None:
    rule = FilePathRule(path="", recursive=True, actions=["delete"], excluded_paths=["keep"])
    assert rule.allows("delete", "other", subtree=True)
    assert not rule.allows("delete", "", subtree=True)  # would delete "keep"
    assert rule.allows("delete", "")  # the non-recursive form is fine
    assert not rule.allows("delete", "keep") and not rule.allows("delete", "keep/x")
    assert rule.allows("delete", "keeper")  # segment-bounded


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("", ""),
        (".", ""),
        ("./", ""),
        ("/", ""),
        ("//", ""),
        ("././a", "a"),
        ("/a/b/", "a/b"),
        ("./a/", "a"),
        ("a/b", "a/b"),
        ("é/ü", "é/ü"),
        (" a ", " a "),
        ("a/..", None),
        ("../a", None),
        ("a/./b", None),
        ("a//b", None),
        ("/./a", None),
        ("a\\b", None),
        ("a\x00", None),
        ("a\x7f", None),
        ("a\x9f", None),
        (".meshagent-directory", None),
        ("x/.meshagent-upload-abc", None),
        ("./.", ""),
        ("./..", None),
    ],
)
def test_storage_request_path(raw: str, expected: str | None) -> None:
    if expected is None:
        with pytest.raises(ValueError, match="canonical relative paths"):
            storage_request_path(raw)
    else:
        assert storage_request_path(raw) == expected


def test_validate_file_path_rejects_leading_slash_but_request_paths_strip_it() -> None:
    with pytest.raises(ValueError):
        validate_file_path("/a")
    assert storage_request_path("/a") == "a"
    assert is_valid_file_path("") and is_valid_file_path(".meshagent-directoryx")
    assert not is_valid_file_path(".meshagent-upload-")


segments = st.sampled_from(
    ["a", "b", "public", ".", "..", "", "x.txt", ".meshagent-directory"]
) | st.text(max_size=4)
raw_paths = st.builds(
    lambda prefix, parts, suffix: prefix + "/".join(parts) + suffix,
    st.sampled_from(["", "./", "/", "././", "//"]),
    st.lists(segments, max_size=5),
    st.sampled_from(["", "/", "//"]),
)


@given(raw=raw_paths | st.text(max_size=12))
def test_request_path_normalisation_is_idempotent(raw: str) -> None:
    try:
        canonical = storage_request_path(raw)
    except ValueError:
        return
    assert is_valid_file_path(canonical)
    assert storage_request_path(canonical) == canonical
    assert normalize_storage_path(canonical) == canonical
    assert ".." not in canonical.split("/")


PERMISSIVE_GRANTS = [
    StorageGrant(),
    StorageGrant(
        files=FilesPolicy(paths=[FilePathRule(path="", recursive=True, actions=list(FILE_ACTIONS))])
    ),
    StorageGrant(paths=[StoragePathGrant(path="a"), StoragePathGrant(path="")]),
]


@given(
    before=st.lists(segments, max_size=3),
    after=st.lists(segments, max_size=3),
    prefix=st.sampled_from(["", "./", "/", "././"]),
    suffix=st.sampled_from(["", "/"]),
)
def test_no_path_with_a_dotdot_segment_is_ever_allowed(
    before: list[str], after: list[str], prefix: str, suffix: str
) -> None:
    path = prefix + "/".join([*before, "..", *after]) + suffix
    for grant in PERMISSIVE_GRANTS:
        assert storage_flags(grant, path) == NONE


@given(
    rule_path=st.lists(st.sampled_from(["a", "ab", "b"]), min_size=1, max_size=3).map("/".join),
    path=st.lists(st.sampled_from(["a", "ab", "b", "abc"]), max_size=4).map("/".join),
    recursive=st.booleans(),
)
def test_rules_are_segment_bounded(rule_path: str, path: str, recursive: bool) -> None:
    policy = FilesPolicy(
        paths=[FilePathRule(path=rule_path, recursive=recursive, actions=list(FILE_ACTIONS))]
    )
    inside = path == rule_path or (recursive and path.startswith(rule_path + "/"))
    for action, subtree in itertools.product(FILE_ACTIONS, (False, True)):
        expected = inside and (recursive or not subtree)
        assert policy.allows(action, path, subtree=subtree) is expected
