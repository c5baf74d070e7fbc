"""Billing and usage (protocol/rest.md §21) over real sockets with our `Meshagent`: the billing
methods answer 501 (the local server has no billing) with the official `Failed to …` errors, the
project's status is real, and `get_usage` reports the participant minutes of sessions real
participants made (checked against the times the server recorded) and the bytes in each room's
storage, with its filters; the bucketing is checked with Hypothesis."""

from __future__ import annotations

from contextlib import AsyncExitStack
from datetime import datetime, timedelta, timezone

import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st

from meshagent_core.client.rest import Meshagent
from meshagent_core.rest import RestError
from meshagent_trio.connection import RoomConnection
from meshagent_trio.server import Credentials, Server
from meshagent_trio.server.control.billing import minutes_by_bucket
from roomtest import mint, room_url


def client(server: Server, credentials: Credentials) -> Meshagent:
    return Meshagent(base_url=f"http://127.0.0.1:{server.port}", token=credentials.api_key)


BILLING_CALLS = [
    ("get_pricing", {}, "fetch pricing data"),
    ("get_balance", {}, "fetch balance"),
    ("get_recent_transactions", {}, "fetch transactions"),
    ("set_auto_recharge", {"enabled": True, "amount": 10.0, "threshold": 1.0}, "update auto recharge settings"),
    ("get_checkout_url", {"success_url": "http://a", "cancel_url": "http://b"}, "create subscription checkout"),
    ("get_credits_checkout_url", {"success_url": "http://a", "cancel_url": "http://b", "quantity": 2.0}, "create credits checkout"),
    ("get_subscription", {}, "fetch subscription"),
    ("get_current_user_llm_proxy_usage", {}, "retrieve current user LLM proxy usage"),
]


async def test_billing_is_not_there_and_says_so(server: Server, credentials: Credentials) -> None:
    own = credentials.project_id
    async with client(server, credentials) as api:
        assert (await api.get_project_status(project_id=own)).enabled is True
        for name, arguments, action in BILLING_CALLS:
            project = {} if name == "get_pricing" else {"project_id": own}
            with pytest.raises(RestError) as refused:
                await getattr(api, name)(**project, **arguments)
            assert str(refused.value).startswith(f"Failed to {action}. Status code: 501, body: "), name
            assert refused.value.http_status == 501
            assert "no billing" in refused.value.body or "no LLM proxy" in refused.value.body
            if project:
                with pytest.raises(RestError, match="Status code: 404.*project 'nope'"):
                    await getattr(api, name)(project_id="nope", **arguments)
        with pytest.raises(RestError, match="Failed to fetch project status. Status code: 404"):
            await api.get_project_status(project_id="nope")


def _seconds(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


async def test_usage_reports_what_the_sessions_and_the_storage_hold(server: Server, credentials: Credentials) -> None:
    own = credentials.project_id
    async with client(server, credentials) as api:
        await api.create_room(project_id=own, name="quiet")
        async with AsyncExitStack() as stack:
            for room, name in (("studio", "alice"), ("studio", "bob"), ("hall", "carol")):
                await stack.enter_async_context(RoomConnection.open(room_url(server, room), mint(credentials, room, name=name)))
            await api.files.for_room(project_id=own, room_name="studio").upload("a/b.bin", b"x" * 1000)
            await api.files.for_room(project_id=own, room_name="studio").upload("c.txt", b"y" * 24)
            await api.files.for_room(project_id=own, room_name="hall").upload("d.txt", b"z" * 7)
        with trio.fail_after(10):
            while await api.list_active_sessions(own):
                await trio.sleep(0.02)

        def recorded(db):
            return db.execute(
                "SELECT s.room_name, p.name, p.joined_at, p.left_at FROM session_participants p JOIN room_sessions s ON s.id = p.session_id"
            ).fetchall()

        stretches = await server.control.run(recorded)
        expected: dict[str, float] = {}
        for room, _, joined, left in stretches:
            expected[room] = expected.get(room, 0.0) + (_seconds(left) - _seconds(joined)) / 60

        rows = await api.get_usage(own)
        minutes = [row for row in rows if row["usage_type"] == "participant_minutes"]
        for room in ("studio", "hall"):
            assert sum(row["total"] for row in minutes if row["room"] == room) == pytest.approx(expected[room], abs=1e-5)
        assert {row["room"] for row in minutes} == {"studio", "hall"}  # the quiet room had no session
        storage = {row["room"]: row["total"] for row in rows if row["usage_type"] == "storage_bytes"}
        assert storage == {"studio": 1024, "hall": 7}
        assert sum(r["total"] for r in await api.get_usage(own, interval="hour", usage_type="participant_minutes")) == pytest.approx(sum(expected.values()), abs=1e-5)

        bob = await api.get_usage(own, users=["bob"])
        bob_minutes = sum((_seconds(left) - _seconds(joined)) / 60 for _, name, joined, left in stretches if name == "bob")
        assert [r["room"] for r in bob] == ["studio"] and bob[0]["total"] == pytest.approx(bob_minutes, abs=1e-5)
        assert {r["room"] for r in await api.get_usage(own, room="hall")} == {"hall"}
        assert [r["usage_type"] for r in await api.get_usage(own, usage_type="storage_bytes")] == ["storage_bytes"] * 2
        first_join = min(_seconds(joined) for _, _, joined, _ in stretches)
        before = datetime.fromtimestamp(first_join, tz=timezone.utc) - timedelta(days=2)
        assert await api.get_usage(own, start=before, end=before + timedelta(days=1)) == []
        assert await api.get_usage(own, provider="openai") == []
        for arguments, field in (({"interval": "week"}, "interval"), ({"usage_type": "tokens"}, "usage_type"), ({"start": "yesterday"}, "start")):
            with pytest.raises(RestError, match=f"Failed to retrieve usage. Status code: 400.*{field}"):
                await api.call("get_usage", project_id=own, **arguments)
        for arguments in ({"report": "daily"}, {"annotations": {"env": "prod"}}):
            with pytest.raises(RestError, match="Status code: 501"):
                await api.get_usage(own, **arguments)
        with pytest.raises(RestError, match="Status code: 404"):
            await api.get_usage("nope")


async def test_a_participant_still_in_the_room_counts_until_now(server: Server, credentials: Credentials) -> None:
    own = credentials.project_id
    async with client(server, credentials) as api:
        async with RoomConnection.open(room_url(server, "live"), mint(credentials, "live", name="dana")):
            (joined,) = await server.control.run(lambda db: db.execute("SELECT joined_at FROM session_participants").fetchall())
            server.config.clock = lambda: _seconds(joined[0]) + 90  # 1.5 minutes after the join
            rows = await api.get_usage(own, usage_type="participant_minutes")
            assert sum(row["total"] for row in rows) == pytest.approx(1.5)


@settings(deadline=None)  # pure, but the first example may pay for warming up
@given(
    stretches=st.lists(
        st.tuples(st.sampled_from(["a", "b"]), st.floats(0, 400_000), st.floats(0, 400_000)).map(lambda t: (t[0], min(t[1], t[2]), max(t[1], t[2]))),
        max_size=8,
    ),
    window=st.tuples(st.floats(0, 400_000), st.floats(0, 400_000)).map(sorted),
    bucket=st.sampled_from([3600, 86400]),
)
def test_buckets_split_time_without_losing_or_adding_any(stretches, window, bucket) -> None:
    start, end = window
    rows = minutes_by_bucket(stretches, bucket=bucket, start=start, end=end)
    for room in ("a", "b"):
        clipped = sum(max(0.0, min(b, end) - max(a, start)) for r, a, b in stretches if r == room) / 60
        assert sum(row["total"] for row in rows if row["room"] == room) == pytest.approx(clipped, abs=1e-4)
    for row in rows:  # each row is its room's time inside its bucket (and the window)
        first = _seconds(row["date"])
        last = first + bucket
        inside = sum(max(0.0, min(b, end, last) - max(a, start, first)) for r, a, b in stretches if r == row["room"]) / 60
        assert first % bucket == 0 and row["total"] >= 0 and row["total"] == pytest.approx(inside, abs=1e-4)
