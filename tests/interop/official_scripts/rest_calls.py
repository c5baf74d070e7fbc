"""Run by the official interpreter: call `Meshagent` methods against a server and print, as
JSON, what each call returned or raised (class, message, status_code, code)."""

import asyncio
import json
import sys

from meshagent.api import Meshagent


async def main(base_url: str, calls: list) -> None:
    results = []
    async with Meshagent(base_url=base_url, token="test-token") as client:
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
                dumped = value.model_dump(mode="json", exclude_none=True) if hasattr(value, "model_dump") else value
                results.append({"returned": dumped})
    print(json.dumps(results))


asyncio.run(main(sys.argv[1], json.loads(sys.stdin.read())))
