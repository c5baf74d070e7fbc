"""The official 0.56 webhook sender, HTTP client and `ServiceHost`, driven by
tests/interop/test_service_host_interop.py. Runs under the OFFICIAL interpreter only.

stdin: one JSON object with any of
  "send": [{"url", "event", "data", "secret"}...]  -> the official `send_webhook` POSTs each;
          result {"ok": bool, "error": str or null} (the official exception's text)
  "raw":  [{"url", "method", "headers", "body_b64"}...] -> sent as is with aiohttp;
          result {"status", "reason", "text"}
  "spec": {"name", "port", "serve", "paths": [{"path", "identity", "permissions"}], "agents": [...]}
          -> an official `ServiceHost` with those registrations; with "serve" it listens on
          127.0.0.1:<port> and its well-known path is fetched over HTTP ({"status",
          "content_type", "text"}), else the spec is rendered as its well-known handler
          renders it ({"text"}).
stdout: one JSON line with the same keys.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import sys
from typing import Any

import aiohttp

from meshagent.api.participant_token import ApiScope
from meshagent.api.services import ServiceHost, send_webhook, well_known_service_path
from meshagent.api.specs.service import AgentSpec


class _Agent:
    async def start(self, *, room) -> None:
        pass

    async def stop(self) -> None:
        pass


async def send_cases(cases: list[dict[str, Any]]) -> list[dict[str, Any]]:
    results = []
    async with aiohttp.ClientSession() as session:
        for case in cases:
            try:
                await send_webhook(session, url=case["url"], event=case["event"], data=case["data"], secret=case["secret"])
            except Exception as error:  # noqa: BLE001 - the error is what we observe
                results.append({"ok": False, "error": str(error)})
            else:
                results.append({"ok": True, "error": None})
    return results


async def raw_cases(cases: list[dict[str, Any]]) -> list[dict[str, Any]]:
    results = []
    async with aiohttp.ClientSession() as session:
        for case in cases:
            body = base64.b64decode(case["body_b64"])
            async with session.request(case["method"], case["url"], data=body, headers=case["headers"]) as response:
                results.append({"status": response.status, "reason": response.reason, "text": await response.text()})
    return results


def host_for(request: dict[str, Any]) -> ServiceHost:
    os.environ.pop("MESHAGENT_PORT", None)  # a host without a port advertises "*"
    host = ServiceHost(host="127.0.0.1", port=request["port"], name=request["name"])
    for path in request.get("paths", []):
        permissions = None if path["permissions"] is None else ApiScope.model_validate(path["permissions"])
        host.add_path(path["path"], cls=_Agent, identity=path["identity"], permissions=permissions)
    host.agents = [AgentSpec.model_validate(agent) for agent in request.get("agents", [])]
    return host


async def spec_case(request: dict[str, Any]) -> dict[str, Any]:
    host = host_for(request)
    if not request.get("serve"):
        return {"text": json.dumps(host.get_service_spec(image="").model_dump(mode="json"))}
    await host.start()
    try:
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{request['port']}{well_known_service_path}") as response:
                return {"status": response.status, "content_type": response.headers.get("Content-Type"), "text": await response.text()}
    finally:
        await host.stop()


async def main() -> None:
    request = json.loads(sys.stdin.read())
    output: dict[str, Any] = {}
    if "send" in request:
        output["send"] = await send_cases(request["send"])
    if "raw" in request:
        output["raw"] = await raw_cases(request["raw"])
    if "spec" in request:
        output["spec"] = await spec_case(request["spec"])
    print(json.dumps(output))


if __name__ == "__main__":
    asyncio.run(main())
