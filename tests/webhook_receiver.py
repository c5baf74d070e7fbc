"""A webhook receiver for tests: a real HTTP server in a thread that records every request and
answers with the status the test sets (`receiver.status`), after `receiver.delay` seconds."""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator

import trio

from httptest import QuietHandler, serve_http


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    status: int  # what the receiver answered


@dataclass
class Receiver:
    url: str = ""
    status: int = 200
    delay: float = 0.0
    requests: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def taken(self) -> list[Received]:
        with self.lock:
            return list(self.requests)

    def accepted(self) -> list[Received]:
        """The requests answered 2xx."""
        return [request for request in self.taken() if 200 <= request.status < 300]

    async def wait_for(self, count: int, timeout: float = 10.0, *, accepted: bool = False) -> list[Received]:
        """Until `count` requests (answered 2xx, with `accepted`) have arrived; fails the test
        after `timeout` seconds."""
        taken = self.accepted if accepted else self.taken
        with trio.fail_after(timeout):
            while len(taken()) < count:
                await trio.sleep(0.01)
        return taken()


@contextmanager
def webhook_receiver() -> Iterator[Receiver]:
    receiver = Receiver()

    class Handler(QuietHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            if receiver.delay:
                time.sleep(receiver.delay)
            with receiver.lock:
                status = receiver.status
                receiver.requests.append(Received("POST", self.path, {k.lower(): v for k, v in self.headers.items()}, body, status))
            self.send_json(status, b'{"ok": true}')

    with serve_http(Handler) as url:
        receiver.url = url
        yield receiver
