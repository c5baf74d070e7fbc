"""Project webhooks (protocol/webhooks.md §7) against a real server and a real receiver: every
`room.started` / `room.ended` reaches every matching webhook once, signed, in order, also when
the receiver is down for a while or the server restarts in between."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import trio

from meshagent_core.client.rest import Meshagent
from meshagent_core.webhooks import SIGNATURE_HEADER, verify
from meshagent_trio import connect
from meshagent_trio.connection import RoomConnection
from meshagent_trio.server import Credentials, Server
from meshagent_trio.server.control.webhook_outbox import DELIVERED, FAILED
from meshagent_trio.server.process import LocalServerProcess
from meshagent_trio.server.services.project_webhooks import DELIVERY_ID_HEADER

from roomtest import mint, room_url, running_server
from webhook_receiver import webhook_receiver


def fast_retries(server: Server) -> None:
    server.config.webhook_retry_initial = 0.05
    server.config.webhook_retry_max = 0.2


async def add_webhook(server: Server, url: str, events: list[str], name: str = "lifecycle") -> Any:
    async with Meshagent(base_url=f"http://127.0.0.1:{server.port}", token=server.config.credentials.api_key) as api:
        return await api.create_webhook(project_id=server.config.credentials.project_id, name=name, url=url, events=events)


async def one_session(server: Server, credentials: Credentials, room: str = "test-room") -> None:
    async with connect(room_url(server, room), mint(credentials, room)):
        pass


def events_of(requests: list) -> list[tuple[str, dict]]:
    return [(json.loads(r.body)["event"], json.loads(r.body)["data"]) for r in requests]


async def settled(server: Server, count: int, timeout: float = 10.0) -> list[tuple]:
    """The project's deliveries once `count` of them are no longer pending."""
    outbox = server.control.webhooks.outbox
    with trio.fail_after(timeout):
        while True:
            states = await outbox.states(server.config.credentials.project_id)
            if sum(state in (DELIVERED, FAILED) for _, _, _, state, _, _ in states) >= count:
                return states
            await trio.sleep(0.02)


async def test_a_session_is_announced_started_then_ended_signed(server: Server, credentials: Credentials) -> None:
    secret = await server.control.webhooks.project_secret(credentials.project_id)
    with webhook_receiver() as receiver:
        await add_webhook(server, receiver.url + "/hooks", ["room.started", "room.ended"])
        await one_session(server, credentials)
        requests = await receiver.wait_for(2)
        assert events_of(requests) == [
            ("room.started", {"room_name": "test-room", "room_url": server.config.room_url("test-room")}),
            ("room.ended", {"room_name": "test-room"}),
        ]
        for request in requests:
            assert request.path == "/hooks"
            envelope = verify(request.body, request.headers[SIGNATURE_HEADER.lower()], secret, now=None)
            assert request.body == json.dumps(envelope).encode()
        assert len({request.headers[DELIVERY_ID_HEADER.lower()] for request in requests}) == 2
        assert [state for *_, state, _, _ in await settled(server, 2)] == [DELIVERED, DELIVERED]
        await trio.sleep(0.3)
        assert len(receiver.taken()) == 2  # nothing is sent again


async def test_each_webhook_gets_only_the_events_it_names(server: Server, credentials: Credentials) -> None:
    with webhook_receiver() as ended_only, webhook_receiver() as everything, webhook_receiver() as other:
        await add_webhook(server, ended_only.url, ["room.ended"], "ended")
        await add_webhook(server, everything.url, ["*"], "all")
        await add_webhook(server, other.url, ["participant.joined"], "other")
        await one_session(server, credentials)
        await settled(server, 3)
        assert [event for event, _ in events_of(ended_only.taken())] == ["room.ended"]
        assert [event for event, _ in events_of(everything.taken())] == ["room.started", "room.ended"]
        assert other.taken() == []


async def test_a_receiver_down_for_a_while_still_gets_every_event_once_in_order(server: Server, credentials: Credentials) -> None:
    fast_retries(server)
    with webhook_receiver() as receiver:
        receiver.status = 503
        await add_webhook(server, receiver.url, ["room.started", "room.ended"])
        await one_session(server, credentials, "first")
        await one_session(server, credentials, "second")
        await receiver.wait_for(4)  # several refused attempts of the first event
        assert {json.loads(r.body)["event"] for r in receiver.taken()} == {"room.started"}  # later ones wait their turn
        receiver.status = 200
        accepted = await receiver.wait_for(4, accepted=True)
        assert [(event, data["room_name"]) for event, data in events_of(accepted)] == [
            ("room.started", "first"), ("room.ended", "first"), ("room.started", "second"), ("room.ended", "second"),
        ]  # fmt: skip
        states = await settled(server, 4)
        assert [state for *_, state, _, _ in states] == [DELIVERED] * 4
        assert states[0][4] >= 2  # attempts of the first one
        await trio.sleep(0.5)
        assert len(receiver.accepted()) == 4


async def test_a_slow_receiver_does_not_hold_up_another_webhook(server: Server, credentials: Credentials) -> None:
    fast_retries(server)
    server.config.webhook_timeout = 5.0
    with webhook_receiver() as slow, webhook_receiver() as quick:
        slow.delay = 2.0
        await add_webhook(server, slow.url, ["*"], "slow")
        await add_webhook(server, quick.url, ["*"], "quick")
        await one_session(server, credentials)
        with trio.fail_after(1.5):
            await quick.wait_for(2)


async def test_an_event_undelivered_too_long_is_given_up_and_the_next_goes(server: Server, credentials: Credentials) -> None:
    fast_retries(server)
    server.config.webhook_give_up_after = 0.3
    with webhook_receiver() as receiver:
        receiver.status = 500
        await add_webhook(server, receiver.url, ["room.started"])
        await one_session(server, credentials, "first")
        states = await settled(server, 1)
        assert states[0][3] == FAILED and "http status code: 500" in states[0][5]
        receiver.status = 200
        server.config.webhook_give_up_after = 60
        await one_session(server, credentials, "second")
        [accepted] = await receiver.wait_for(1, accepted=True)
        assert events_of([accepted])[0][1]["room_name"] == "second"


async def test_deleting_a_webhook_drops_what_it_had_pending(server: Server, credentials: Credentials) -> None:
    fast_retries(server)
    with webhook_receiver() as receiver:
        receiver.status = 503
        webhook = await add_webhook(server, receiver.url, ["*"])
        await one_session(server, credentials)
        await receiver.wait_for(1)
        async with Meshagent(base_url=f"http://127.0.0.1:{server.port}", token=credentials.api_key) as api:
            await api.delete_webhook(project_id=credentials.project_id, webhook_id=webhook.id)
        assert await server.control.webhooks.outbox.states(credentials.project_id) == []
        receiver.status = 200
        await trio.sleep(0.5)
        assert receiver.accepted() == []


async def test_a_restart_neither_loses_nor_repeats_a_delivery(tmp_path: Path, credentials: Credentials) -> None:
    data_dir = tmp_path / "data"
    with webhook_receiver() as receiver:
        async with running_server(data_dir, credentials) as server:
            fast_retries(server)
            await add_webhook(server, receiver.url, ["room.started", "room.ended"])
            await one_session(server, credentials, "before")  # delivered before the restart
            await receiver.wait_for(2, accepted=True)
            await settled(server, 2)
            receiver.status = 503
            await one_session(server, credentials, "queued")  # refused until after it
            await receiver.wait_for(len(receiver.taken()) + 1)
        receiver.status = 200
        async with running_server(data_dir, credentials) as server:
            fast_retries(server)
            await receiver.wait_for(4, accepted=True)
            await settled(server, 4)
            await trio.sleep(0.5)
            accepted = receiver.accepted()
    assert [(event, data["room_name"]) for event, data in events_of(accepted)] == [
        ("room.started", "before"), ("room.ended", "before"), ("room.started", "queued"), ("room.ended", "queued"),
    ]  # fmt: skip
    assert len({r.headers[DELIVERY_ID_HEADER.lower()] for r in accepted}) == 4


async def test_a_session_cut_off_by_sigkill_is_announced_ended_after_the_restart(tmp_path: Path) -> None:
    """The server is killed while a participant is in the room and the receiver is down; the
    next start ends the session and delivers its start and its end, once each."""
    with webhook_receiver() as receiver, LocalServerProcess(data_dir=tmp_path / "data") as process:
        receiver.status = 503
        async with Meshagent(base_url=process.api_url, token=process.api_key) as api:
            await api.create_webhook(project_id=process.credentials.project_id, name="w", url=receiver.url, events=["*"])
        async with RoomConnection.open(process.room_url("cut-off"), mint(process.credentials, "cut-off")):
            await receiver.wait_for(1)  # room.started, refused
            await trio.to_thread.run_sync(process.kill)
        receiver.status = 200
        await trio.to_thread.run_sync(process.restart)
        accepted = await receiver.wait_for(2, accepted=True, timeout=30)
        await trio.sleep(1.5)
        accepted = receiver.accepted()
    assert [(event, data["room_name"]) for event, data in events_of(accepted)] == [("room.started", "cut-off"), ("room.ended", "cut-off")]
