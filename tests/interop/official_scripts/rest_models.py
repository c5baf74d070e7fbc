"""Run by the official interpreter: print, as JSON, every pydantic model of the official REST
client (`meshagent.api.client`): its fields, which are required, and whether unknown keys are
refused (`extra="forbid"`)."""

import inspect
import json

from pydantic import BaseModel

from meshagent.api import client

models = {}
for name, value in vars(client).items():
    if inspect.isclass(value) and issubclass(value, BaseModel) and value.__module__ == client.__name__:
        models[name] = {
            "fields": {field: info.is_required() for field, info in value.model_fields.items()},
            "aliases": {field: info.alias for field, info in value.model_fields.items() if info.alias},
            "forbid": value.model_config.get("extra") == "forbid",
        }
print(json.dumps(models))
