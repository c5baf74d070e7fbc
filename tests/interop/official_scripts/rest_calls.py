"""Run by the official interpreter: call `Meshagent` methods against a server and print, as
JSON, what each call returned or raised (class, message, status_code, code)."""

import asyncio
import json
import sys

from meshagent.api import Meshagent


def dump(value):
    """JSON of a returned value: pydantic models (also inside lists) as their JSON form."""
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json", exclude_none=True)
    if isinstance(value, list):
        return [dump(item) for item in value]
    return value


async def main(base_url: str, token: str, calls: list) -> None:
    results = []
    async with Meshagent(base_url=base_url, token=token) as client:
        for call in calls:
            try:
                value = await getattr(client, call["method"])(**call["kwargs"])
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
