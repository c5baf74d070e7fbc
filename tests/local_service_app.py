"""A local room service for the tests (run by the server as `python local_service_app.py`): the
ServiceHost protocol in miniature (protocol/webhooks.md §3, §8).

* `GET /.well-known/meshagent-service.json` answers its spec: one `*` port with the endpoint
  `/agent` for identity `local-bot`; `GET /healthz` answers 200.
* `POST /agent` with a `room.call` answers 200, then joins the room with the call's token (our
  client), writes `started-<pid>.json` to room storage (what it saw: its environment, working
  directory, whether the call's signature verified with MESHAGENT_WEBHOOK_SECRET, the pid of a
  grandchild it started), and stays.
* While in the room it looks for `crash.txt` every 50 ms: it deletes it and exits with status 3.

It prints a line to stdout and one to stderr when it starts.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import trio

from meshagent_core.webhooks import SIGNATURE_HEADER, WebhookSignatureError, verify
from meshagent_trio import connect

PORT = int(os.environ["MESHAGENT_PORT"])
HOST = os.environ.get("MESHAGENT_HOST", "127.0.0.1")
SECRET = os.environ.get("MESHAGENT_WEBHOOK_SECRET")
SPEC = {
    "version": "v1",
    "kind": "Service",
    "id": None,
    "enabled": True,
    "metadata": {"name": "local-svc", "description": None, "repo": None, "icon": None, "annotations": None},
    "agents": [],
    "ports": [{"num": "*", "type": "http", "endpoints": [{"path": "/agent", "meshagent": {"identity": "local-bot", "api": None}}]}],
    "container": {"image": "", "template": "agent", "private": True},
}
ENVIRONMENT = (
    "MESHAGENT_PORT",
    "MESHAGENT_HOST",
    "MESHAGENT_ROOM",
    "MESHAGENT_ROOM_URL",
    "MESHAGENT_API_URL",
    "MESHAGENT_PROJECT_ID",
    "MESHAGENT_SESSION_ID",
    "MESHAGENT_TOKEN",
    "MESHAGENT_API_KEY",
    "MESHAGENT_SECRET",
    "EXTRA",
    "HELPER_TOKEN",
)


def main() -> None:
    # a grandchild, to show that stopping the service stops what it started
    grandchild = subprocess.Popen(["sleep", "600"])
    print(f"service up on port {PORT}", flush=True)
    print("a line on stderr", file=sys.stderr, flush=True)
    trio.run(serve, grandchild.pid)


async def serve(grandchild: int) -> None:
    calls_in, calls = trio.open_memory_channel[dict[str, Any]](16)
    token = trio.lowlevel.current_trio_token()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def answer(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            if self.path == "/.well-known/meshagent-service.json":
                self.answer(200, json.dumps(SPEC).encode())
            elif self.path == "/healthz":
                self.answer(200, b'{"ok": true}')
            else:
                self.answer(404, b"{}")

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            try:
                envelope = verify(body, self.headers.get(SIGNATURE_HEADER), SECRET, now=None) if SECRET else json.loads(body)
                signed = SECRET is not None
            except WebhookSignatureError:
                envelope, signed = json.loads(body), False
            self.answer(200, b'{"ok": true}')
            if self.path == "/agent" and envelope.get("event") == "room.call":
                trio.from_thread.run_sync(calls_in.send_nowait, {**envelope["data"], "signed": signed, "path": self.path}, trio_token=token)

    http = ThreadingHTTPServer((HOST, PORT), Handler)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    async with trio.open_nursery() as nursery:
        async for call in calls:
            nursery.start_soon(join, call, grandchild)


async def join(call: dict[str, Any], grandchild: int) -> None:
    async with connect(call["room_url"], call["token"]) as room:
        seen = {
            "pid": os.getpid(),
            "ppid": os.getppid(),  # the shell that runs the command, unless it exec'd
            "grandchild": grandchild,
            "cwd": os.getcwd(),
            "signed": call["signed"],
            "path": call["path"],
            "arguments": call["arguments"],
            "room_name": call["room_name"],
            "token": call["token"],
            "environment": {name: os.environ.get(name) for name in ENVIRONMENT},
        }
        await room.storage.upload(path=f"started-{os.getpid()}.json", data=json.dumps(seen).encode())
        while True:
            if await room.storage.exists(path="crash.txt"):
                await room.storage.delete("crash.txt")
                os._exit(3)
            await trio.sleep(0.05)


if __name__ == "__main__":
    main()
