"""Run by the official interpreter: call `Meshagent` methods against a server, in order, and print
as JSON what each call returned or raised (class, message, status_code, code).

    python rest_calls.py BASE_URL [TOKEN] < calls.json

Each call is `{"method", "kwargs", "models"?}`:
- `models` maps an argument to the official model it is built from (`AccessSubject`,
  `ManagedAgentSpec`, …), or `dict:<Model>` for a mapping of such models (`permissions`), or
  `bytes` for bytes given base64 (a returned `bytes` prints as `{"bytes_base64": …}`);
- a string `"$N.a.0.b"` anywhere in the arguments is the value at that path in what call N
  returned (ids made by earlier calls), as a value or as a key;
- a call `{"method": "validate:<Model>", "kwargs": {"value": …}}` only reads `value` into the
  model and returns its full JSON form (`model_dump`).
- a call `{"method": "render_locally", "kwargs": {"template", "values", "to_service_spec"?}}`
  renders a service template with the official `ServiceTemplateSpec.from_yaml` (and maps it
  `to_service_spec()` when asked) and returns its JSON form (as a returned model: no nulls).
"""

import asyncio
import base64
import json
import sys

from meshagent.api import Meshagent
from meshagent.api.client import AccessResource, AccessSubject, UpdateUserProfileRequest
from meshagent.api.managed_agents import ManagedAgentSpec
from meshagent.api.participant_token import ApiScope
from meshagent.api.client import CreateProjectRepositoryRequest, CreateRepositoryTokenRequest, UpdateProjectRepositoryRequest
from meshagent.api.specs.service import RouteSpec
from meshagent.api.specs.service import ServiceSpec, ServiceTemplateSpec

MODELS = {
    model.__name__: model for model in (AccessResource, AccessSubject, ApiScope, ManagedAgentSpec, UpdateUserProfileRequest)
    + (CreateProjectRepositoryRequest, CreateRepositoryTokenRequest, UpdateProjectRepositoryRequest, RouteSpec)
    + (ServiceSpec, ServiceTemplateSpec)
}


def dump(value):
    """JSON of a returned value: pydantic models (also inside lists) as their JSON form."""
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json", exclude_none=True)
    if isinstance(value, bytes):
        return {"bytes_base64": base64.b64encode(value).decode()}
    if isinstance(value, list):
        return [dump(item) for item in value]
    return value


def resolve(value, results):
    if isinstance(value, str) and value.startswith("$") and "." in value:
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


def build(model_name, value):
    if model_name == "bytes":
        return base64.b64decode(value)
    if model_name.startswith("dict:"):
        model = MODELS[model_name[5:]]
        return None if value is None else {key: model.model_validate(item) for key, item in value.items()}
    return MODELS[model_name].model_validate(value)


async def call(client, request, results):
    kwargs = resolve(request["kwargs"], results)
    for name, model_name in request.get("models", {}).items():
        if name in kwargs:
            kwargs[name] = build(model_name, kwargs[name])
    if request["method"] == "render_locally":  # the official template rendering, in this process
        spec = ServiceTemplateSpec.from_yaml(kwargs["template"], kwargs["values"])
        return (spec.to_service_spec() if kwargs.get("to_service_spec") else spec).model_dump(mode="json", exclude_none=True)
    if request["method"].startswith("validate:"):  # the model alone: its full JSON form
        return MODELS[request["method"][9:]].model_validate(kwargs["value"]).model_dump(mode="json")
    return await getattr(client, request["method"])(**kwargs)


async def main(base_url: str, token: str, calls: list) -> None:
    results = []
    async with Meshagent(base_url=base_url, token=token) as client:
        for request in calls:
            try:
                value = await call(client, request, results)
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


asyncio.run(main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "test-token", json.loads(sys.stdin.read())))
