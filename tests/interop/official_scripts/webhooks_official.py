"""The official 0.56 webhook sender and receiver, driven by tests/interop/test_webhooks_interop.py.
Runs under the OFFICIAL interpreter (`.venv-official`), never under ours.

stdin: one JSON object {"sign": [{"event", "data", "secret"}...], "verify": [{"body_b64",
"signature" (or null), "secret"}...]}. stdout: one JSON line {"sign": [{"body_b64",
"signature"}...], "verify": [{"status", "text", "events"}...]}.

Signing calls the official `send_webhook` with a session that records what it would POST;
verifying POSTs each body to a real official `WebhookServer` on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import base64
import json
import sys
from typing import Any

import aiohttp

from meshagent.api.services import send_webhook
from meshagent.api.webhooks import WebhookServer


class _Response:
    status = 200

    def raise_for_status(self) -> None:
        pass

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        return False


class _RecordingSession:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def post(self, url, *, headers, data):
        self.sent.append({"url": url, "headers": dict(headers), "data": data})
        return _Response()


class _Receiver(WebhookServer):
    def __init__(self) -> None:
        super().__init__(host="127.0.0.1", port=0, webhook_secret="unset")
        self.seen: list[list[Any]] = []

    async def on_call(self, event):
        self.seen.append(["room.call", event.room_name, event.room_url, event.token, event.arguments])

    async def on_room_started(self, event):
        self.seen.append(["room.started", event.room_name, event.room_url])

    async def on_room_ended(self, event):
        self.seen.append(["room.ended", event.room_name])


async def sign_cases(cases: list[dict[str, Any]]) -> list[dict[str, Any]]:
    results = []
    for case in cases:
        session = _RecordingSession()
        await send_webhook(session, url="http://receiver.test/webhook", event=case["event"], data=case["data"], secret=case["secret"])
        (sent,) = session.sent
        results.append(
            {"body_b64": base64.b64encode(sent["data"].encode("utf-8")).decode(), "signature": sent["headers"].get("Meshagent-Signature")}
        )
    return results


async def verify_cases(cases: list[dict[str, Any]]) -> list[dict[str, Any]]:
    receiver = _Receiver()
    results = []
    async with receiver:
        port = receiver._runner.addresses[0][1]
        async with aiohttp.ClientSession() as client:
            for case in cases:
                receiver._webhook_secret = case["secret"]
                receiver.seen.clear()
                headers = {"Content-Type": "application/json"}
                if case["signature"] is not None:
                    headers["Meshagent-Signature"] = case["signature"]
                body = base64.b64decode(case["body_b64"])
                async with client.post(f"http://127.0.0.1:{port}/webhook", data=body, headers=headers) as response:
                    results.append({"status": response.status, "text": await response.text(), "events": list(receiver.seen)})
    return results


async def main() -> None:
    request = json.loads(sys.stdin.read())
    output = {"sign": await sign_cases(request.get("sign", [])), "verify": await verify_cases(request.get("verify", []))}
    print(json.dumps(output))


if __name__ == "__main__":
    asyncio.run(main())
