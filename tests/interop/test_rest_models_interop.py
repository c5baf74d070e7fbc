"""Our REST answer models against the official client's pydantic models of the same name: a key
the official client requires is required in ours too (our models leave out keys that hold their
default, so a required key with a default would go missing from our server's answers), and a
model whose official twin refuses unknown keys has no key the official one lacks."""

from __future__ import annotations

import importlib
import inspect
import json
import pkgutil
import subprocess
from pathlib import Path

import msgspec
import pytest

import meshagent_core.rest

pytestmark = pytest.mark.interop

SCRIPT = Path(__file__).parent / "official_scripts" / "rest_models.py"


def our_models() -> dict[str, type[msgspec.Struct]]:
    models: dict[str, type[msgspec.Struct]] = {}
    for module_info in pkgutil.iter_modules(meshagent_core.rest.__path__):
        module = importlib.import_module(f"meshagent_core.rest.{module_info.name}")
        for name, value in vars(module).items():
            if inspect.isclass(value) and issubclass(value, msgspec.Struct) and value.__module__ == module.__name__:
                models[name] = value
    return models


def wire_fields(model: type[msgspec.Struct]) -> dict[str, bool]:
    """Wire name -> required."""
    return {info.encode_name: info.required for info in msgspec.structs.fields(model)}


@pytest.fixture(scope="module")
def official_models(official_python: str) -> dict[str, dict]:
    done = subprocess.run([official_python, str(SCRIPT)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_some_models_are_compared(official_models: dict[str, dict]) -> None:
    shared = set(our_models()) & set(official_models)
    assert {"Room", "ProjectInfo", "ServiceAccount", "StorageVolume"} <= shared


def test_keys_the_official_client_requires_are_required_in_ours(official_models: dict[str, dict]) -> None:
    problems = []
    for name, model in sorted(our_models().items()):
        official = official_models.get(name)
        if official is None:
            continue
        ours = wire_fields(model)
        for field, required in official["fields"].items():
            wire = official["aliases"].get(field, field)
            if required and not ours.get(wire, False):
                problems.append(f"{name}.{wire}: required by the official client, {'optional' if wire in ours else 'missing'} in ours")
        if official["forbid"]:
            known = {official["aliases"].get(f, f) for f in official["fields"]}
            problems += [f"{name}.{field}: not a key of the official model, which refuses unknown keys" for field in ours if field not in known]
    assert not problems, "\n".join(problems)
