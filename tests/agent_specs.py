"""Managed agent configurations for tests: `RICH_SPEC`, a valid `ManagedAgentSpec` as JSON that
uses every part of the model (with values the model normalizes), and its mutations (a key
removed, an unknown key added, a value replaced by another kind of value), most of them
invalid: `mutated_specs(seed, count)` for a batch, `mutations()` as a Hypothesis strategy."""

from __future__ import annotations

import copy
import random
from typing import Any, Iterator

from hypothesis import strategies as st

RICH_SPEC: dict[str, Any] = {
    "version": "v1",
    "kind": "ManagedAgent",
    "id": "agent-1",
    "metadata": {"name": " Big Agent ", "annotations": {"team": "core"}},
    "allowed_models": [
        {"provider": "openai", "model": "gpt-4.1", "output_modalities": ["text"]},
        {"provider": "anthropic", "model": "claude"},
        {"provider": "grok", "model": "grok-4"},
    ],
    "guardrails": {
        "input": [{"name": "in-check", "check": {"type": "decision", "model": "openai/gpt-4.1-mini", "instructions": "be nice", "minimum_allow_probability": 0.5}}],
        "tools": [
            {
                "name": "t",
                "match": {"names": ["add"]},
                "input": [{"name": "tool.in", "check": {"model": "openai/m", "instructions": "x", "minimum_allow_probability": 1}, "on_reject": {"action": "deny"}}],
                "output": [],
            }
        ],
        "output": {
            "checks": [
                {
                    "name": "out_1",
                    "check": {"model": "openai/m", "instructions": "y", "minimum_allow_probability": 0},
                    "on_reject": {"action": "replace", "message": "no"},
                    "max_retries": 3,
                }
            ]
        },
    },
    "run_as": {"email": " Bot@Example.COM ", "scopes": ["secrets:read", " llm_proxy ", "secrets:read", ""]},
    "llm_delegation": "required",
    "thread_isolation": "participant",
    "instructions": "help",
    "toolkits": [
        {"type": "web_search", "allowed_domains": ["a.com"], "blocked_domains": None},
        {"type": "web_fetch"},
        {"type": "image_generation", "background": "auto", "output_format": "png", "partial_images": 2, "quality": "high", "size": "auto", "output_compression": 50},
        {
            "type": "mcp",
            "servers": [
                {"server_label": "s", "server_url": "https://mcp", "allowed_tools": ["a"], "headers": [{"name": "X-A", "value": "1"}], "require_approval": "never"}
            ],
        },
    ],
    "tools": [
        {
            "type": "python",
            "name": "add",
            "description": "adds",
            "input_schema": {
                "type": "object",
                "properties": {"a": {"type": "integer"}, "b": {"type": ["number", "null"]}},
                "required": ["a", "b"],
                "additionalProperties": False,
            },
            "source": "def add(a, b): return a + b",
            "entrypoint": "add",
        }
    ],
    "connections": {
        "api": {
            "base_url": "https://api.example.com/v1",
            "use_proxy_secret": None,
            "headers": [{"name": "X-Key", "secret": {"id": "sec"}, "prefix": "Bearer "}, {"name": "X-Plain", "value": "v"}],
        }
    },
    "environment": [{"name": "PLAIN", "value": "1"}, {"name": "SECRET_1", "secret": {"id": "s1"}}],
    "output_modalities": ["text"],
    "store": False,
}

#: values a mutation puts in place of another: wrong kinds, empty and padded strings, and
#: strings some rule is about (URLs, header names, guardrail actions)
VALUES: list[Any] = [
    None, "", " X ", 0, 1.5, -1, True, [], {}, "a" * 70, "ftp://x", "openai/gpt", "https://u:p@h", "1",
    "authorization", "Host", "replace", "block", "deny", "fail",
]  # fmt: skip
UNKNOWN_KEYS = ["zz", "authorization", "name", "extra"]


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if prefix:
        yield prefix
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        yield from _paths(item, prefix + (key,))


def mutate(spec: dict[str, Any], where: int, how: float, value: Any) -> None:
    """Change `spec` at its `where`-th path (modulo their count): remove it (`how` < 0.3), add an
    unknown key to it (< 0.45, when it is an object), or put `value` there."""
    paths = list(_paths(spec))
    path = paths[where % len(paths)]
    parent: Any = spec
    for key in path[:-1]:
        parent = parent[key]
    target = parent[path[-1]]
    if how < 0.3:
        del parent[path[-1]]
    elif how < 0.45 and isinstance(target, dict):
        target[UNKNOWN_KEYS[where % len(UNKNOWN_KEYS)]] = copy.deepcopy(value)
    else:
        parent[path[-1]] = copy.deepcopy(value)


def mutated(changes: list[tuple[int, float, Any]]) -> dict[str, Any]:
    spec = copy.deepcopy(RICH_SPEC)
    for where, how, value in changes:
        mutate(spec, where, how, value)
    return spec


def mutated_specs(seed: int, count: int) -> list[dict[str, Any]]:
    """`RICH_SPEC`, its legacy form (a top-level `name`), every single mutation of it (each path
    removed, given an unknown key, or given each of `VALUES`), and `count` random double ones."""
    rng = random.Random(seed)
    legacy = copy.deepcopy(RICH_SPEC)
    legacy["name"] = legacy.pop("metadata")["name"]
    batch = [copy.deepcopy(RICH_SPEC), legacy]
    for where in range(len(list(_paths(RICH_SPEC)))):
        batch += [mutated([(where, 0.0, None)]), mutated([(where, 0.4, "x")])]
        batch += [mutated([(where, 1.0, value)]) for value in VALUES]
    for _ in range(count):
        changes = [(rng.randrange(10**6), rng.random(), rng.choice(VALUES)) for _ in range(2)]
        batch.append(mutated(changes))
    return batch


def mutations() -> st.SearchStrategy[dict[str, Any]]:
    change = st.tuples(st.integers(0, 10**6), st.floats(0, 1), st.sampled_from(VALUES))
    return st.lists(change, min_size=0, max_size=3).map(mutated)
