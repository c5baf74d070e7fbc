"""Run by the official interpreter: call the access-control methods of `Meshagent` against a
server and print, as JSON, what each call returned or raised (as `rest_calls.py`).

The arguments arrive as JSON: `subject` and `resource` become the official `AccessSubject` and
`AccessResource`, each value of `permissions` an official `ApiScope`; a string `"$N.a.0.b"` is
the value at that path in what call N returned (ids made by earlier calls), as a value or a key."""

import asyncio
import json
import sys

from meshagent.api import Meshagent
from meshagent.api.client import AccessResource, AccessSubject
from meshagent.api.participant_token import ApiScope


def dump(value):
    """JSON of a returned value: pydantic models (also inside lists) as their JSON form."""
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json", exclude_none=True)
    if isinstance(value, list):
        return [dump(item) for item in value]
    return value

MODELS = {"subject": AccessSubject.model_validate, "resource": AccessResource.model_validate}


def resolve(value, results):
    if isinstance(value, str) and value.startswith("$"):
        index, *path = value[1:].split(".")
        found = results[int(index)]["returned"]
        for step in path:
            found = found[int(step)] if isinstance(found, list) else found[step]
        return found
    if isinstance(value, dict):
        return {resolve(key, results): resolve(item, results) for key, item in value.items()}
    if isinstance(value, list):
        return [resolve(item, results) for item in value]
    return value


def arguments(kwargs, results):
    resolved = resolve(kwargs, results)
    for name, make in MODELS.items():
        if name in resolved:
            resolved[name] = make(resolved[name])
    if isinstance(resolved.get("permissions"), dict):
        resolved["permissions"] = {user: ApiScope.model_validate(scope) for user, scope in resolved["permissions"].items()}
    return resolved


async def main(base_url: str, token: str, calls: list) -> None:
    results = []
    async with Meshagent(base_url=base_url, token=token) as client:
        for call in calls:
            try:
                value = await getattr(client, call["method"])(**arguments(call["kwargs"], results))
            except Exception as error:  # noqa: BLE001 - reported to the test
                results.append({"raised": type(error).__name__, "message": str(error), "status_code": getattr(error, "status_code", None)})
            else:
                results.append({"returned": dump(value)})
    print(json.dumps(results))


asyncio.run(main(sys.argv[1], sys.argv[2], json.loads(sys.stdin.read())))
