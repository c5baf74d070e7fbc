"""Webhook bodies and signatures against the official 0.56 sender and receiver
(protocol/webhooks.md §2).

The official code runs in its own interpreter (`official_scripts/webhooks_official.py`, one
process per Hypothesis example, each example a batch of cases):

  (a) the official `send_webhook` signs random events: our `webhook_body` and `sign` produce
      the same bytes, our `verify` accepts them and `read_event` reads them;
  (b) our bodies and signatures are POSTed to the official `WebhookServer`: it answers 200 and
      sees the event we read; altered bodies, other secrets and missing signatures get the
      same refusal from both.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meshagent_core.webhooks import (
    CallEvent,
    RoomEndedEvent,
    RoomStartedEvent,
    UnknownEvent,
    WebhookBodyError,
    WebhookSignatureError,
    read_event,
    sign,
    verify,
    webhook_body,
)

pytestmark = pytest.mark.interop

SCRIPT = Path(__file__).resolve().parent / "official_scripts" / "webhooks_official.py"
NOW = 1_800_000_000

SETTINGS = settings(
    max_examples=6,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)
texts = st.text(max_size=20)
call_data = st.fixed_dictionaries(
    {"room_name": texts, "room_url": texts, "token": texts},
    optional={"arguments": st.none() | st.dictionaries(st.text(max_size=6), json_values, max_size=3)},
)
events = st.one_of(
    st.tuples(st.just("room.call"), call_data),
    st.tuples(st.just("room.started"), st.fixed_dictionaries({"room_name": texts, "room_url": texts})),
    st.tuples(st.just("room.ended"), st.fixed_dictionaries({"room_name": texts})),
    st.tuples(st.text(max_size=12).filter(lambda name: name not in {"room.call", "room.started", "room.ended"}), json_values),
)
secrets = st.text(min_size=1, max_size=40)
cases = st.lists(st.tuples(events, secrets), min_size=1, max_size=12)


def official(python: str, request: dict[str, Any]) -> dict[str, Any]:
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)  # the official interpreter must not see our src/
    done = subprocess.run(
        [python, str(SCRIPT)], input=json.dumps(request), capture_output=True, text=True, timeout=120, env=env
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(done.stdout.splitlines()[-1])


def b64(body: bytes) -> str:
    return base64.b64encode(body).decode("ascii")


def seen(event: Any) -> list[list[Any]]:
    """What the official receiver's handlers record for `event` (nothing for unknown names)."""
    if isinstance(event, CallEvent):
        return [["room.call", event.room_name, event.room_url, event.token, event.arguments]]
    if isinstance(event, RoomStartedEvent):
        return [["room.started", event.room_name, event.room_url]]
    if isinstance(event, RoomEndedEvent):
        return [["room.ended", event.room_name]]
    assert isinstance(event, UnknownEvent)
    return []


@SETTINGS
@given(batch=cases)
def test_official_sender_and_receiver(official_python, batch):
    sign_requests = [{"event": name, "data": data, "secret": secret} for (name, data), secret in batch]
    ours = [webhook_body(name, data) for (name, data), _ in batch]
    verify_requests: list[dict[str, Any]] = []
    expected: list[tuple[int, str | None]] = []
    for body, ((name, data), secret) in zip(ours, batch):
        signature = sign(body, secret)
        verify_requests.append({"body_b64": b64(body), "signature": signature, "secret": secret})
        expected.append((200, None))
        altered = webhook_body(name, [data])
        verify_requests.append({"body_b64": b64(altered), "signature": signature, "secret": secret})
        expected.append((401, "signature does not match payload"))
        verify_requests.append({"body_b64": b64(body), "signature": sign(body, secret + "!"), "secret": secret})
        expected.append((401, "invalid jwt"))
        verify_requests.append({"body_b64": b64(body), "signature": None, "secret": secret})
        expected.append((401, "missing signature"))

    answer = official(official_python, {"sign": sign_requests, "verify": verify_requests})

    # (a) the official sender's bytes are ours, and we accept them
    for signed, body, ((name, data), secret) in zip(answer["sign"], ours, batch):
        official_body = base64.b64decode(signed["body_b64"])
        assert official_body == body
        assert signed["signature"] == sign(body, secret)
        assert verify(official_body, signed["signature"], secret, now=NOW) == {"event": name, "data": data}
        assert read_event(official_body).name == name

    # (b) the official receiver accepts ours and refuses what we refuse, with the same answers
    for request, (status, reason), result in zip(verify_requests, expected, answer["verify"]):
        body = base64.b64decode(request["body_b64"])
        assert result["status"] == status, (request, result)
        if status == 200:
            verify(body, request["signature"], request["secret"], now=NOW)
            assert result["events"] == seen(read_event(body))
        else:
            assert result["text"] == f"{status}: {reason}"
            with pytest.raises(WebhookSignatureError) as caught:
                verify(body, request["signature"], request["secret"], now=NOW)
            assert str(caught.value) == reason


def test_official_receiver_refuses_what_read_event_refuses(official_python):
    """A well-signed envelope that is not an object: 400 from both."""
    body = b"[1, 2]"
    answer = official(official_python, {"verify": [{"body_b64": b64(body), "signature": sign(body, "s" * 32), "secret": "s" * 32}]})
    assert (answer["verify"][0]["status"], answer["verify"][0]["text"]) == (400, "400: invalid request body")
    with pytest.raises(WebhookBodyError, match="invalid request body"):
        verify(body, sign(body, "s" * 32), "s" * 32, now=NOW)
