"""A local stand-in for an OpenAI-compatible chat completions endpoint, for the tests of the
`memory` toolkit's `llm` ingest strategy — the one place a stand-in is right: no language model
runs here. A real HTTP server on a free port (in a thread); it records each request and answers
with what the test set."""

from __future__ import annotations

import json
import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Iterator


class FakeModel:
    """What the endpoint saw (`requests`: path, authorization header, JSON body) and will answer
    (`answer`: status and body)."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.answer: tuple[int, bytes] = (500, b"")
        #: When set, picks the graph to answer from the user's text (None: answer `answer`).
        self.graph_for: Callable[[str], dict[str, Any]] | None = None

    def completion(self, content: str) -> None:
        """Answer with a chat completion whose message content is `content`."""
        choice = {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
        self.answer = (200, json.dumps({"id": "chatcmpl-1", "object": "chat.completion", "choices": [choice]}).encode())

    def graph(self, document: dict[str, Any]) -> None:
        """Answer with `document` (entities and relationships) as the message content."""
        self.completion(json.dumps(document))

    def respond(self, body: dict[str, Any]) -> tuple[int, bytes]:
        if self.graph_for is not None:
            user = next((message["content"] for message in body.get("messages", []) if message.get("role") == "user"), "")
            self.graph(self.graph_for(user))
        return self.answer


@contextmanager
def fake_model() -> Iterator[tuple[FakeModel, str]]:
    """(the model, its base URL `http://127.0.0.1:<port>/v1`), stopped on exit."""
    model = FakeModel()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the http.server API
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            request = json.loads(body)
            model.requests.append({"path": self.path, "authorization": self.headers.get("Authorization"), "body": request})
            status, answer = model.respond(request)
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args: Any) -> None:
            pass

    http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    try:
        yield model, f"http://127.0.0.1:{http.server_address[1]}/v1"
    finally:
        http.shutdown()
        http.server_close()
        thread.join(timeout=10)


__all__ = ["FakeModel", "fake_model"]
