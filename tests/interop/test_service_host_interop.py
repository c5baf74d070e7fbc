"""`WebhookServer` and `ServiceHost` against the official 0.56 code (protocol/webhooks.md §3, §4),
which runs in its own interpreter (`official_scripts/services_official.py`):

  (a) the official `send_webhook` delivers to our `WebhookServer`: accepted and delivered
      with the right secret, refused (the official sender raises its error) without it; raw
      requests from the official interpreter's HTTP client get the official reasons (a compact
      body signed over its own bytes, missing signatures), and the header form, a body
      without a JSON content type (the envelope `{}`) and an oversized body are answered as
      documented;
  (b) `/.well-known/meshagent-service.json` of our `ServiceHost` is byte for byte the official
      host's for the same registrations (served over HTTP, and rendered without a port).
"""

from __future__ import annotations

import base64
import json
import os
import socket
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from meshagent_core.tokens import AgentsGrant, ApiScope, MessagingGrant
from meshagent_core.rest.service_spec import read_service_spec
from meshagent_core.webhooks import CallEvent, RoomEndedEvent, RoomStartedEvent, sign, webhook_body
from meshagent_trio import ServiceHost, WebhookServer

pytestmark = pytest.mark.interop

SCRIPT = Path(__file__).resolve().parent / "official_scripts" / "services_official.py"
SECRET = "interop-webhook-secret-0123456789"


async def official(python: str, request: dict[str, Any]) -> dict[str, Any]:
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)  # the official interpreter must not see our src/
    with trio.fail_after(120):
        done = await trio.run_process(
            [python, str(SCRIPT)], stdin=json.dumps(request).encode(), capture_stdout=True, capture_stderr=True, env=env, check=False
        )
    assert done.returncode == 0, done.stderr.decode()[-4000:]
    return json.loads(done.stdout.decode().splitlines()[-1])


class Recorder(WebhookServer):
    def __init__(self) -> None:
        super().__init__(host="127.0.0.1", port=0, webhook_secret=SECRET)
        self.seen: list[Any] = []

    async def on_call(self, event: CallEvent) -> None:
        self.seen.append(event)

    async def on_room_started(self, event: RoomStartedEvent) -> None:
        self.seen.append(event)

    async def on_room_ended(self, event: RoomEndedEvent) -> None:
        self.seen.append(event)


def raw(url: str, body: bytes, headers: dict[str, str], method: str = "POST") -> dict[str, Any]:
    return {"url": url, "method": method, "headers": headers, "body_b64": base64.b64encode(body).decode()}


async def test_the_official_sender_reaches_our_webhook_server(official_python: str) -> None:
    call = {"room_name": "r", "room_url": "ws://127.0.0.1:1/rooms/r", "token": "jwt", "arguments": {"é": [1, 2.5, None]}}
    async with Recorder() as server, server.events() as events:
        url = f"http://127.0.0.1:{server.bound_port}/webhook"
        compact = json.dumps({"event": "room.ended", "data": {"room_name": "c"}}, separators=(",", ":")).encode()
        header_envelope = webhook_body("room.ended", {"room_name": "from-header"}).decode()
        results = await official(
            official_python,
            {
                "send": [
                    {"url": url, "event": "room.call", "data": call, "secret": SECRET},
                    {"url": url, "event": "room.started", "data": {"room_name": "s", "room_url": "u"}, "secret": SECRET},
                    {"url": url, "event": "room.ended", "data": {"room_name": "e"}, "secret": "another-secret"},
                    {"url": url, "event": "room.ended", "data": {"room_name": "e"}, "secret": None},
                ],
                "raw": [
                    raw(url, compact, {"Content-Type": "application/json", "Meshagent-Signature": sign(compact, SECRET)}),
                    raw(url, compact, {"Content-Type": "application/json", "Meshagent-Signature": sign(webhook_body("room.ended", {"room_name": "c"}), SECRET)}),
                    raw(url, b"", {"Meshagent-Webhook": header_envelope, "Meshagent-Signature": sign(header_envelope, SECRET)}, "GET"),
                    raw(url, b"ignored", {"Content-Type": "text/plain", "Meshagent-Signature": sign(b"{}", SECRET)}),
                    raw(url, b"x" * (1024 * 1024 + 1), {"Content-Type": "application/json"}),
                ],
            },
        )
        assert results["send"] == [
            {"ok": True, "error": None},
            {"ok": True, "error": None},
            {"ok": False, "error": f"error status returned from webhook call {url}, http status code: 401"},
            {"ok": False, "error": f"error status returned from webhook call {url}, http status code: 401"},
        ]
        assert [(r["status"], r["reason"]) for r in results["raw"]] == [
            (401, "signature does not match payload"),
            (200, "OK"),
            (200, "OK"),
            (400, "webhook body has no event name"),  # past the signature: the envelope was {}
            (413, f"request body larger than {1024 * 1024} bytes"),
        ]
        assert results["raw"][0]["text"] == "401: signature does not match payload"
        expected = [
            CallEvent(**call),
            RoomStartedEvent(room_name="s", room_url="u"),
            RoomEndedEvent(room_name="c"),
            RoomEndedEvent(room_name="from-header"),
        ]
        assert server.seen == expected
        with trio.fail_after(5):
            assert [await events.__anext__() for _ in expected] == expected


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


REGISTRATIONS = {
    "paths": [
        {"path": "/agent", "identity": None, "permissions": None},
        {"path": "/tools", "identity": "tool-bot", "permissions": ApiScope.agent_default().model_dump(mode="json")},
        {
            "path": "/narrow",
            "identity": "narrow",
            "permissions": ApiScope(agents=AgentsGrant(call=False), messaging=MessagingGrant(broadcast=False)).model_dump(mode="json"),
        },
    ],
    "agents": [
        {"name": "helper", "description": "helps", "annotations": {"meshagent.agent.type": "ChatBot"}, "channels": {"messaging": [{}]}},
    ],
}


def our_host(name: str | None, port: int | None) -> ServiceHost:
    host = ServiceHost(host="127.0.0.1", port=port, name=name)
    for path in REGISTRATIONS["paths"]:
        permissions = None if path["permissions"] is None else ApiScope.from_json(path["permissions"])
        host.add_path(path["path"], cls=object, identity=path["identity"], permissions=permissions)
    host.agents = [read_service_spec({"version": "v1", "kind": "Service", "metadata": {"name": "x"}, "agents": REGISTRATIONS["agents"]}).agents[0]]
    return host


async def test_the_well_known_spec_is_the_official_hosts(official_python: str) -> None:
    port = free_port()
    served = await official(official_python, {"spec": {"name": "interop", "port": port, "serve": True, **REGISTRATIONS}})
    rendered = await official(official_python, {"spec": {"name": None, "port": None, "serve": False, **REGISTRATIONS}})
    async with our_host("interop", port) as host, httpx.AsyncClient(timeout=10) as http:
        answer = await http.get(f"http://127.0.0.1:{host.bound_port}/.well-known/meshagent-service.json")
    assert answer.status_code == served["spec"]["status"] == 200
    assert answer.headers["content-type"] == served["spec"]["content_type"]
    assert answer.text == served["spec"]["text"]
    assert json.loads(answer.text)["ports"][0]["num"] == port
    async with our_host(None, None) as host, httpx.AsyncClient(timeout=10) as http:
        answer = await http.get(f"http://127.0.0.1:{host.bound_port}/.well-known/meshagent-service.json")
    assert answer.text == rendered["spec"]["text"]
    spec = json.loads(answer.text)
    assert spec["ports"][0]["num"] == "*" and spec["metadata"]["name"] == "<YOUR_SERVICE_NAME>"

