"""Run by the official interpreter: call billing and usage methods of `Meshagent`, and methods of
its Files API client (`client.files`), against a server, in order, and print as JSON what each
call returned or raised (class, message).

    python billing_files_calls.py BASE_URL TOKEN < calls.json

Each call is `{"method", "kwargs", "files"?, "datetimes"?}`:
- `files` `{"kind": "room"|"agent", "project_id", "name"}`: the method is the target client's
  (`client.files.for_room(...)` / `for_agent(...)`); a `data_hex` argument is sent as the bytes
  `data`, a `source` argument `{"kind", "project_id", "name", "path"}` as a `FileLocation`;
- `datetimes`: arguments given as ISO-8601 text, passed as `datetime`s (`get_usage`'s `start`).
Returned bytes are printed as `{"hex": …}`, an async iterator as the list of what it yields.
"""

import asyncio
import json
import sys
from datetime import datetime

from meshagent.api import Meshagent


def dump(value):
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json", exclude_none=True)
    if isinstance(value, bytes):
        return {"hex": value.hex()}
    if isinstance(value, list):
        return [dump(item) for item in value]
    return value


def target_client(client, spec):
    if spec["kind"] == "room":
        return client.files.for_room(project_id=spec["project_id"], room_name=spec["name"])
    return client.files.for_agent(project_id=spec["project_id"], agent_name=spec["name"])


async def call(client, request):
    kwargs = dict(request["kwargs"])
    for name in request.get("datetimes", []):
        kwargs[name] = datetime.fromisoformat(kwargs[name])
    owner = client
    if "files" in request:
        owner = target_client(client, request["files"])
        if "data_hex" in kwargs:
            kwargs["data"] = bytes.fromhex(kwargs.pop("data_hex"))
        if "source" in kwargs:
            source = kwargs["source"]
            kwargs["source"] = target_client(client, source).location(source["path"])
    result = getattr(owner, request["method"])(**kwargs)
    if hasattr(result, "__aiter__"):
        return [item async for item in result]
    return await result


async def main(base_url: str, token: str, calls: list) -> None:
    results = []
    async with Meshagent(base_url=base_url, token=token) as client:
        for request in calls:
            try:
                value = await call(client, request)
            except Exception as error:  # noqa: BLE001 - reported to the test
                results.append({"raised": type(error).__name__, "message": str(error)})
            else:
                results.append({"returned": dump(value)})
    print(json.dumps(results))


asyncio.run(main(sys.argv[1], sys.argv[2], json.loads(sys.stdin.read())))
