"""Run by the official interpreter: call `Meshagent` methods against a server, in order, and print
as JSON what each call returned or raised (class, message, status_code, code).

Each call is `{"method", "kwargs", "models"?}`: `models` maps an argument to the official model
it is built from (`ManagedAgentSpec`, `UpdateUserProfileRequest`), and a string argument
`"$N.key"` is the value `key` that call N returned (e.g. the id of an agent created earlier).
A call `{"method": "validate:<Model>", "kwargs": {"value": …}}` only reads `value` into the
model and returns its full JSON form (`model_dump`)."""

import asyncio
import json
import sys

from meshagent.api import Meshagent
from meshagent.api.client import UpdateUserProfileRequest
from meshagent.api.managed_agents import ManagedAgentSpec

MODELS = {"ManagedAgentSpec": ManagedAgentSpec, "UpdateUserProfileRequest": UpdateUserProfileRequest}


def dump(value):
    """JSON of a returned value: pydantic models (also inside lists) as their JSON form."""
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json", exclude_none=True)
    if isinstance(value, list):
        return [dump(item) for item in value]
    return value


def resolve(value, results):
    if isinstance(value, str) and value.startswith("$") and "." in value:
        index, key = value[1:].split(".", 1)
        return results[int(index)]["returned"][key]
    return value


async def main(base_url: str, token: str, calls: list) -> None:
    results = []
    async with Meshagent(base_url=base_url, token=token) as client:
        for call in calls:
            try:
                kwargs = {name: resolve(value, results) for name, value in call["kwargs"].items()}
                for name, model in call.get("models", {}).items():
                    kwargs[name] = MODELS[model].model_validate(kwargs[name])
                if call["method"].startswith("validate:"):  # the model alone: its full JSON form
                    value = MODELS[call["method"][9:]].model_validate(kwargs["value"]).model_dump(mode="json")
                else:
                    value = await getattr(client, call["method"])(**kwargs)
            except Exception as error:  # noqa: BLE001 - reported to the test
                results.append(
                    {
                        "raised": type(error).__name__,
                        "message": str(error),
                        "status_code": getattr(error, "status_code", None),
                        "code": getattr(error, "code", None),
                    }
                )
            else:
                results.append({"returned": dump(value)})
    print(json.dumps(results))


asyncio.run(main(sys.argv[1], sys.argv[2], json.loads(sys.stdin.read())))
