"""Strategies for tokens: `ApiScope` values with arbitrary grants, and participant tokens."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from ...tokens import (
    FILE_ACTIONS,
    AdminGrant,
    AgentsGrant,
    ApiScope,
    ContainerRegistryGrant,
    ContainersGrant,
    DatasetGrant,
    DeveloperGrant,
    FilePathRule,
    FilesPolicy,
    LivekitGrant,
    LLMGrant,
    MemoryEntryGrant,
    MemoryGrant,
    MemoryPermissions,
    MessagingGrant,
    ParticipantGrant,
    ParticipantToken,
    QueuesGrant,
    SecretsGrant,
    ServicesGrant,
    SqliteDatabaseGrant,
    SqliteGrant,
    SqliteTableGrant,
    StorageGrant,
    StoragePathGrant,
    SyncGrant,
    SyncPathGrant,
    TableGrant,
    TunnelsGrant,
    is_valid_file_path,
)
from ._wire import json_values

#: Claims a token's `extra_payload` never holds: the token's own fields and the registered
#: claims that signing and verification interpret (`exp`, `iat`, `nbf`, `aud`, `sub`, ...).
RESERVED_CLAIMS = frozenset({"name", "grants", "sub", "kid", "version", "exp", "iat", "nbf", "aud", "jti", "iss"})

_names = st.text(max_size=6)
_name_lists = st.none() | st.lists(_names, max_size=3)
_namespaces = st.none() | st.lists(st.sampled_from(["a", "b", "c"]), max_size=2)
_flags = st.booleans()
#: A canonical file path segment: no `/`, `\` or control characters (checked once more, with
#: the project's own `is_valid_file_path`, on the whole path).
_segments = st.sampled_from(["a", "b", "docs", "x.txt", "é"]) | st.text(
    st.characters(codec="utf-8", exclude_categories=["Cc", "Cs"], exclude_characters="/\\"), min_size=1, max_size=8
)
_canonical_paths = st.lists(_segments, max_size=3).map("/".join).filter(is_valid_file_path)


def _optional(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.none() | strategy


def _build_families() -> dict[str, st.SearchStrategy[Any]]:
    table_grants = st.builds(TableGrant, name=_names, namespace=_namespaces, write=_flags, read=_flags, alter=_flags)
    sqlite_tables = st.builds(
        SqliteTableGrant, database=_names, table=_names, namespace=_namespaces, write=_flags, read=_flags, alter=_flags
    )
    sqlite_databases = st.builds(
        SqliteDatabaseGrant,
        name=_names,
        namespace=_namespaces,
        create_table=_flags,
        drop=_flags,
        inspect=_flags,
        list_tables=_flags,
        execute=_flags,
        tables=st.none() | st.lists(sqlite_tables, max_size=2),
    )
    memory_permissions = st.builds(
        MemoryPermissions,
        **{flag: _flags for flag in ("create", "drop", "inspect", "query", "upsert", "ingest", "recall", "optimize")},
    )
    file_rules = st.builds(
        FilePathRule,
        path=_canonical_paths,
        recursive=_flags,
        actions=st.lists(st.sampled_from(FILE_ACTIONS), max_size=5),
        excluded_paths=st.lists(_canonical_paths, max_size=2),
    )
    return {
        "livekit": st.builds(LivekitGrant, breakout_rooms=_name_lists),
        "queues": st.builds(QueuesGrant, send=_name_lists, receive=_name_lists, list=_flags),
        "messaging": st.builds(MessagingGrant, broadcast=_flags, list=_flags, send=_flags),
        "dataset": st.builds(DatasetGrant, tables=st.none() | st.lists(table_grants, max_size=2), list_tables=_flags),
        "sqlite": st.builds(
            SqliteGrant,
            databases=st.none() | st.lists(sqlite_databases, max_size=2),
            create_database=_flags,
            list_databases=_flags,
        ),
        "memory": st.builds(
            MemoryGrant,
            list=_flags,
            memories=st.none()
            | st.lists(
                st.builds(MemoryEntryGrant, name=_names, namespace=_namespaces, permissions=memory_permissions),
                max_size=2,
            ),
        ),
        "sync": st.builds(
            SyncGrant,
            paths=st.none() | st.lists(st.builds(SyncPathGrant, path=_names | _names.map(lambda s: s + "*"), read_only=_flags), max_size=2),
        ),
        "storage": st.builds(
            StorageGrant,
            paths=st.none() | st.lists(st.builds(StoragePathGrant, path=_names, read_only=_flags), max_size=2),
            files=st.none() | st.builds(FilesPolicy, paths=st.lists(file_rules, max_size=2)),
        ),
        "containers": st.builds(
            ContainersGrant,
            logs=_flags,
            pull=_name_lists,
            run=_name_lists,
            registry=st.none()
            | st.builds(ContainerRegistryGrant, list=_name_lists, pull=_name_lists, run=_name_lists, write=_name_lists),
            use_containers=_flags,
        ),
        "developer": st.builds(DeveloperGrant, logs=_flags),
        "agents": st.builds(
            AgentsGrant,
            register_agent=_flags,
            register_public_toolkit=_flags,
            register_private_toolkit=_flags,
            call=_flags,
            use_agents=_flags,
            use_tools=_flags,
            allowed_toolkits=_name_lists,
        ),
        "llm": st.builds(LLMGrant, models=_name_lists),
        "admin": st.builds(AdminGrant, config=_flags),
        "secrets": st.builds(SecretsGrant),
        "tunnels": st.builds(TunnelsGrant, ports=_name_lists),
        "services": st.builds(ServicesGrant, list=_flags),
    }


_PRESETS = [ApiScope, ApiScope.full, ApiScope.user_default, ApiScope.agent_default, lambda: ApiScope.agent_default(tunnels=True)]


def api_scopes() -> st.SearchStrategy[ApiScope]:
    """`ApiScope` values: the presets (`full()`, `user_default()`, `agent_default()`, the
    empty scope) and scopes with any subset of the capability families, each grant with
    arbitrary settings (name and pattern lists, namespaces, flags, table, database and memory
    grants, document paths, legacy storage prefixes and canonical `files` rules).

    Every value is a fresh object (safe to modify in a test).

        @given(api_scopes())
        def test_scope_round_trip(scope):
            assert ApiScope.from_json(scope.to_json()) == scope
    """
    families = {name: _optional(strategy) for name, strategy in _build_families().items()}
    return st.sampled_from(_PRESETS).map(lambda make: make()) | st.builds(ApiScope, **families)


_PLAIN_GRANT_NAMES = ["room", "role", "site", "agent", "tunnel_ports"]
_ROLES = ["user", "agent", "tool"]


@st.composite
def _plain_grant(draw: st.DrawFn) -> ParticipantGrant:
    name = draw(st.sampled_from(_PLAIN_GRANT_NAMES) | st.text(max_size=10).filter(lambda n: n != "api"))
    if name == "role":
        scope: Any = draw(st.sampled_from(_ROLES) | st.text(max_size=12))
    elif name in _PLAIN_GRANT_NAMES:
        scope = draw(st.text(max_size=12))
    else:  # a grant this library does not know: its scope is kept as raw JSON
        scope = draw(st.text(max_size=12) | json_values(2))
    return ParticipantGrant(name=name, scope=scope)


@st.composite
def _participant_token(draw: st.DrawFn) -> ParticipantToken:
    grants = draw(st.lists(_plain_grant(), max_size=4))
    api = draw(st.none() | api_scopes())
    if api is not None:
        grants.insert(draw(st.integers(0, len(grants))), ParticipantGrant(name="api", scope=api))
    return ParticipantToken(
        name=draw(st.text(min_size=1, max_size=24).filter(lambda s: s.strip() != "")),
        project_id=draw(st.none() | st.text(max_size=36)),
        api_key_id=draw(st.none() | st.text(max_size=36)),
        grants=grants,
        extra_payload=draw(
            st.dictionaries(st.text(max_size=8).filter(lambda key: key not in RESERVED_CLAIMS), json_values(2), max_size=3)
        ),
        version=draw(st.none() | st.text(max_size=8)),
    )


def participant_tokens() -> st.SearchStrategy[ParticipantToken]:
    """`ParticipantToken` values: a non-blank name, optional project and API key ids, a
    version, any number of `room`, `role` (`user`, `agent`, `tool` or any string), `site`,
    `agent`, `tunnel_ports` and unknown grants (whose scopes are raw JSON), at most one `api`
    grant (an `api_scopes()` value, anywhere in the list), and extra claims (JSON values under
    any key but the reserved ones, `RESERVED_CLAIMS`).

    Every value survives `to_json`/`from_json` and signing with `to_jwt`/`from_jwt`.

        @given(participant_tokens())
        def test_jwt_round_trip(token):
            jwt = token.to_jwt(token="secret", environ={})
            assert ParticipantToken.from_jwt(jwt, token="secret", environ={}) == token
    """
    return _participant_token()


__all__ = ["RESERVED_CLAIMS", "api_scopes", "participant_tokens"]
