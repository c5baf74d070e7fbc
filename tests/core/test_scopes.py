"""`ApiScope` and grant (de)serialisation (protocol/tokens.md §3, §4)."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest
from hypothesis import given

from meshagent_core.testing import vectors
from meshagent_core.testing.strategies import api_scopes
from meshagent_core.tokens import (
    AdminGrant,
    AgentsGrant,
    ApiScope,
    ContainerRegistryGrant,
    ContainersGrant,
    DatasetGrant,
    DeveloperGrant,
    FilePathRule,
    FilesPolicy,
    LLMGrant,
    MemoryEntryGrant,
    MemoryGrant,
    MemoryPermissions,
    MessagingGrant,
    QueuesGrant,
    SecretsGrant,
    ServicesGrant,
    SqliteDatabaseGrant,
    SqliteGrant,
    SqliteTableGrant,
    StorageGrant,
    TableGrant,
    TunnelsGrant,
)

SERIALIZATION: dict[str, Any] = vectors.load("token_vectors")["api_scope_serialization"]

PRESETS = {
    "agent_default()": ApiScope.agent_default(),
    "agent_default(tunnels=True)": ApiScope.agent_default(tunnels=True),
    "user_default()": ApiScope.user_default(),
    "full()": ApiScope.full(),
    "ApiScope()": ApiScope(),
}


@pytest.mark.parametrize("name", list(PRESETS))
def test_preset_serialisation_matches_vector(name: str) -> None:
    scope = PRESETS[name]
    assert scope.to_json() == SERIALIZATION[name]
    assert list(scope.to_json()) == list(SERIALIZATION[name])  # same key order
    assert (
        scope.model_dump(mode="json", exclude_none=True, exclude_defaults=True)
        == SERIALIZATION[name]
    )
    assert ApiScope.from_json(SERIALIZATION[name]) == scope


def test_full_dump_without_excludes_matches_vector() -> None:
    expected = SERIALIZATION["full_model_dump_json_no_excludes"]
    assert ApiScope.full().model_dump(mode="json") == expected
    assert json.loads(ApiScope.full().model_dump_json()) == expected
    assert ApiScope.from_json(expected) == ApiScope.full()


def test_preset_membership() -> None:
    for scope in PRESETS.values():
        assert scope.secrets is None
    assert ApiScope.agent_default().admin is None and ApiScope.agent_default().tunnels is None
    assert ApiScope.agent_default(tunnels=True).tunnels == TunnelsGrant()
    assert ApiScope.user_default().llm is None
    assert ApiScope.full().admin == AdminGrant() and ApiScope.full().llm == LLMGrant()
    for scope in (ApiScope.agent_default(), ApiScope.user_default(), ApiScope.full()):
        assert scope.sqlite == SqliteGrant()
        assert scope.storage == StorageGrant()


# Inputs and the `model_dump(mode="json", exclude_none=True, exclude_defaults=True)` that
# meshagent-api 0.56.0 produces for them after `ApiScope.model_validate` (None = rejected).
OFFICIAL_VALIDATION: list[tuple[dict[str, Any], dict[str, Any] | None]] = [
    ({}, {}),
    ({"database": {"list_tables": False}}, {"dataset": {"list_tables": False}}),
    ({"datasets": {"tables": [{"name": "x"}]}}, {"dataset": {"tables": [{"name": "x"}]}}),
    ({"dataset": None, "database": {"list_tables": False}}, {}),
    ({"database": None, "datasets": {"list_tables": False}}, {}),
    (
        {"datasets": {"list_tables": True}, "database": {"list_tables": False}},
        {"dataset": {"list_tables": False}},
    ),
    ({"secrets": {}}, {"secrets": {}}),
    ({"secrets": {"request_oauth_token": []}}, None),
    ({"unknown": 1, "livekit": {"zzz": 1}}, {"livekit": {}}),
    ({"storage": {"files": {"paths": [], "x": 1}}}, None),
    (
        {
            "storage": {
                "files": {"paths": [{"path": "a", "recursive": True, "actions": ["read"], "y": 2}]}
            }
        },
        None,
    ),
    (
        {
            "storage": {
                "files": {"paths": [{"path": "a/../b", "recursive": True, "actions": ["read"]}]}
            }
        },
        None,
    ),
    (
        {"storage": {"files": {"paths": [{"path": "a", "recursive": True, "actions": ["fly"]}]}}},
        None,
    ),
    (
        {
            "storage": {
                "files": {
                    "paths": [
                        {
                            "path": "a",
                            "recursive": True,
                            "actions": ["read"],
                            "excluded_paths": ["/x"],
                        }
                    ]
                }
            }
        },
        None,
    ),
    ({"storage": {"files": {"paths": [{"path": "a", "actions": ["read"]}]}}}, None),
    ({"queues": {"list": "false"}}, {"queues": {"list": False}}),
    ({"queues": {"list": 0}}, {"queues": {"list": False}}),
    ({"queues": {"send": "abc"}}, None),
    ({"queues": {"send": [1]}}, None),
    (
        {"memory": {"memories": [{"name": "m", "permissions": {"drop": False}}]}},
        {"memory": {"memories": [{"name": "m", "permissions": {"drop": False}}]}},
    ),
    (
        {"memory": {"memories": [{"name": "m", "permissions": {}}]}},
        {"memory": {"memories": [{"name": "m"}]}},
    ),
    ({"dataset": {"tables": [{"namespace": ["a"]}]}}, None),
    ({"livekit": None}, {}),
    ({"livekit": []}, None),
    ({"livekit": "x"}, None),
    ({"containers": {"registry": {}}}, {"containers": {"registry": {}}}),
    ({"containers": {"registry": None, "pull": []}}, {"containers": {"pull": []}}),
    (
        {"agents": {"allowed_toolkits": ["a"], "call": False}},
        {"agents": {"call": False, "allowed_toolkits": ["a"]}},
    ),
    ({"tunnels": {"ports": ["1"]}}, {"tunnels": {"ports": ["1"]}}),
    ({"admin": {"config": False}}, {"admin": {"config": False}}),
    ({"services": {"list": False}}, {"services": {"list": False}}),
    ({"messaging": {"broadcast": False}}, {"messaging": {"broadcast": False}}),
    ({"llm": {"models": []}}, {"llm": {"models": []}}),
    ({"sync": {"paths": [{"path": "/a"}]}}, {"sync": {"paths": [{"path": "/a"}]}}),
    ({"sync": {"paths": [{"read_only": True}]}}, None),
    ({"storage": {"paths": [{"path": "a/../b"}]}}, {"storage": {"paths": [{"path": "a/../b"}]}}),
    (
        {"storage": {"paths": [{"path": "/a/", "read_only": False}]}},
        {"storage": {"paths": [{"path": "/a/"}]}},
    ),
    ({"storage": {"paths": [], "files": None}}, {"storage": {"paths": []}}),
    ({"developer": {"logs": None}}, None),
]


@pytest.mark.parametrize(
    ("data", "expected"), OFFICIAL_VALIDATION, ids=lambda x: json.dumps(x)[:60]
)
def test_validation_matches_official(data: dict[str, Any], expected: dict[str, Any] | None) -> None:
    if expected is None:
        with pytest.raises(ValueError):
            ApiScope.from_json(data)
    else:
        assert ApiScope.from_json(data).to_json() == expected
        assert ApiScope.model_validate_json(json.dumps(data)).to_json() == expected


@pytest.mark.parametrize("legacy_key", ["database", "datasets"])
def test_legacy_dataset_keys_are_read_and_written_as_dataset(legacy_key: str) -> None:
    scope = ApiScope.model_validate({legacy_key: {"list_tables": False}})
    assert scope.dataset == DatasetGrant(list_tables=False)
    assert scope.model_dump(mode="json", exclude_none=True) == {"dataset": {"list_tables": False}}


def test_secrets_grant_forbids_legacy_field() -> None:
    with pytest.raises(msgspec.ValidationError, match="request_oauth_token"):
        SecretsGrant.model_validate({"request_oauth_token": [{"endpoint": "e", "client_id": "c"}]})
    assert SecretsGrant.from_json({}) == SecretsGrant()


def test_files_policy_and_rule_forbid_extra_fields_and_bad_paths() -> None:
    with pytest.raises(msgspec.ValidationError, match="unknown field"):
        FilesPolicy.from_json({"paths": [], "extra": 1})
    with pytest.raises(msgspec.ValidationError, match="unknown field"):
        FilePathRule.from_json({"path": "", "recursive": True, "actions": [], "mode": "x"})
    with pytest.raises(ValueError, match="canonical relative paths"):
        FilePathRule(path="../up", recursive=True, actions=["read"])
    with pytest.raises(ValueError, match="canonical relative paths"):
        FilePathRule(path="a", recursive=True, actions=["read"], excluded_paths=["a/"])
    with pytest.raises(ValueError, match="unknown file action"):
        FilePathRule(path="a", recursive=True, actions=["fly"])  # type: ignore[list-item]


def test_policy_size_limits() -> None:
    rule = {"path": "a", "recursive": True, "actions": ["read"]}
    assert len(FilesPolicy.from_json({"paths": [rule] * 1000}).paths) == 1000
    with pytest.raises(ValueError):
        FilesPolicy.from_json({"paths": [rule] * 1001})
    with pytest.raises(ValueError):
        FilePathRule.from_json({**rule, "excluded_paths": ["b"] * 1001})
    with pytest.raises(ValueError):
        FilesPolicy(paths=[FilePathRule(path="a", recursive=True, actions=["read"])] * 1001)


def test_files_policy_is_frozen() -> None:
    policy = FilesPolicy()
    with pytest.raises(AttributeError):
        policy.paths = []  # type: ignore[misc]


def test_defaults_of_every_grant() -> None:
    assert QueuesGrant() == QueuesGrant(send=None, receive=None, list=True)
    assert MessagingGrant().model_dump() == {"broadcast": True, "list": True, "send": True}
    assert TableGrant(name="t").model_dump() == {
        "name": "t",
        "namespace": None,
        "write": False,
        "read": True,
        "alter": False,
    }
    assert SqliteDatabaseGrant(name="d").model_dump(exclude_none=True) == {
        "name": "d",
        "create_table": True,
        "drop": False,
        "inspect": True,
        "list_tables": True,
        "execute": True,
    }
    assert SqliteTableGrant(database="d", table="t").to_json() == {"database": "d", "table": "t"}
    assert MemoryEntryGrant(name="m").permissions == MemoryPermissions()
    assert MemoryEntryGrant(name="m").to_json() == {"name": "m"}
    assert AgentsGrant().model_dump(exclude_none=True) == {
        "register_agent": True,
        "register_public_toolkit": True,
        "register_private_toolkit": True,
        "call": True,
        "use_agents": True,
        "use_tools": True,
    }
    assert ContainersGrant().model_dump(exclude_none=True) == {"logs": True, "use_containers": True}
    assert DeveloperGrant().logs and ServicesGrant().list and AdminGrant().config


def test_list_named_fields_round_trip() -> None:
    for grant_type in (QueuesGrant, MessagingGrant, MemoryGrant, ServicesGrant):
        grant = grant_type.model_validate({"list": False})
        assert grant.list is False
        assert grant.model_dump()["list"] is False
        assert grant.to_json() == {"list": False}
    registry = ContainerRegistryGrant.from_json({"list": ["a/*"]})
    assert registry.list == ["a/*"] and registry.to_json() == {"list": ["a/*"]}


def test_non_object_scope_is_rejected() -> None:
    bad_inputs: list[Any] = ["full", [], None, 3]
    for bad in bad_inputs:
        with pytest.raises(ValueError):
            ApiScope.from_json(bad)


def test_model_validate_passes_instances_through() -> None:
    scope = ApiScope.full()
    assert ApiScope.model_validate(scope) is scope


# -- property: any scope survives its wire form --------------------------------------------


def contains_none(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, dict):
        return any(contains_none(v) for v in value.values())
    if isinstance(value, list):
        return any(contains_none(v) for v in value)
    return False


@given(scope=api_scopes())
def test_scope_json_round_trip(scope: ApiScope) -> None:
    wire = scope.to_json()
    assert not contains_none(wire)
    assert ApiScope.from_json(wire) == scope
    assert ApiScope.from_json(json.loads(json.dumps(wire))) == scope
    text = scope.model_dump_json(exclude_none=True, exclude_defaults=True)
    assert json.loads(text) == wire
    assert ApiScope.model_validate_json(text) == scope
    # The full dump (defaults and nulls included) reads back the same scope too.
    assert ApiScope.from_json(scope.model_dump(mode="json")) == scope
    # Families present in the scope are exactly the keys on the wire.
    present = {field for field in ApiScope.__struct_fields__ if getattr(scope, field) is not None}
    assert set(wire) == present
