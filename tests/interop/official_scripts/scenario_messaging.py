"""Messaging between official participants: enable, presence lists, send_message with an
attachment, broadcast, participant attributes fan-out, disable, and a send to nobody."""

from __future__ import annotations

from _official import connect, expect_error, observed, run, timed, wait_until

from meshagent.api.participant import Participant


def presence(client) -> list[dict]:
    return sorted(
        ({"id": p.id, "role": p.role, "name": p.get_attribute("name"), "online": p.online} for p in client.messaging.remote_participants),
        key=lambda p: p["name"] or "",
    )


async def main() -> dict:
    async with connect("alice") as alice, connect("bob") as bob, connect("carol") as carol:
        inbox: dict[str, list] = {"alice": [], "bob": [], "carol": []}
        for name, client in (("alice", alice), ("bob", bob), ("carol", carol)):
            client.messaging.on(
                "message",
                lambda message, name=name: inbox[name].append(
                    {"from": message.from_participant_id, "type": message.type, "message": message.message, "attachment": message.attachment.hex() if message.attachment else None}
                ),
            )
        added: list[str] = []
        removed: list[str] = []
        updated: list[dict] = []
        alice.messaging.on("participant_added", lambda participant: added.append(participant.id))
        alice.messaging.on("participant_removed", lambda participant: removed.append(participant.id))
        alice.messaging.on(
            "participant_attributes_updated", lambda participant: updated.append({"id": participant.id, "attributes": participant.attributes})
        )
        ids = {"alice": alice.local_participant.id, "bob": bob.local_participant.id, "carol": carol.local_participant.id}
        observed["ids"] = ids

        alice.messaging.enable()
        observed["alice_online"] = await wait_until("alice online", lambda: alice.messaging.online)
        observed["alice_presence_alone"] = presence(alice)  # carol never enables, bob not yet
        bob.messaging.enable()
        observed["bob_online"] = await wait_until("bob online", lambda: bob.messaging.online)
        observed["bob_presence"] = presence(bob)
        observed["alice_sees_bob"] = await wait_until("alice sees bob", lambda: alice.messaging.get_participant(ids["bob"]) is not None)
        observed["alice_presence"] = presence(alice)
        observed["added"] = list(added)

        to_bob = alice.messaging.get_participant(ids["bob"])
        await timed("send_message with attachment", alice.messaging.send_message(to=to_bob, type="greeting", message={"text": "hi bob", "n": 1}, attachment=b"\x00\x01binary\xff"))
        await timed("send_message no attachment", alice.messaging.send_message(to=to_bob, type="greeting", message={"text": "again", "n": 2}))
        observed["bob_got_direct"] = await wait_until("bob receives", lambda: len(inbox["bob"]) >= 2)

        # The official client pipelines queued sends (the next one goes out before the previous
        # answer): they must still arrive in the order they were sent.
        # Three rounds, each waited for: a server that starts the calls of one read in an
        # arbitrary order passes one round by chance, not three.
        pipelined_ok = True
        for round in range(3):
            for n in range(10):
                alice.messaging.send_message_nowait(to=to_bob, type="seq", message={"n": round * 10 + n})
            pipelined_ok &= await wait_until(
                "bob receives pipelined", lambda: len([m for m in inbox["bob"] if m["type"] == "seq"]) >= (round + 1) * 10
            )
        observed["bob_got_pipelined"] = pipelined_ok
        observed["pipelined_order"] = [m["message"]["n"] for m in inbox["bob"] if m["type"] == "seq"]

        await timed("broadcast", bob.messaging.broadcast_message(type="news", message={"headline": "broadcast"}, attachment=b"att"))
        observed["alice_got_broadcast"] = await wait_until("alice receives broadcast", lambda: any(m["type"] == "news" for m in inbox["alice"]))

        alice.local_participant.set_attribute("mood", "happy")
        observed["bob_sees_attribute"] = await wait_until(
            "bob sees alice's attribute",
            lambda: (p := bob.messaging.get_participant(ids["alice"])) is not None and p.get_attribute("mood") == "happy",
        )
        bob.local_participant.set_attribute("status", {"busy": True})
        observed["alice_sees_attribute"] = await wait_until("alice sees bob's attribute", lambda: any(u["id"] == ids["bob"] for u in updated))
        observed["updated"] = list(updated)

        # A send to an id nobody has: the server must answer with an error (1003 expected).
        observed["send_to_nobody"] = await expect_error(
            "send to unknown participant",
            alice.messaging.send_message(to=Participant(id="no-such-participant", attributes={}), type="x", message={}),
        )
        # carol is connected but never enabled messaging: she gets nothing from the broadcast.
        observed["carol_inbox"] = inbox["carol"]

        bob.messaging.disable()
        observed["alice_sees_bob_leave"] = await wait_until("alice sees bob disabled", lambda: ids["bob"] in removed)
        observed["alice_presence_after_disable"] = presence(alice)
        # After bob disabled, a direct send to him must fail rather than vanish.
        observed["send_to_disabled"] = await expect_error(
            "send to disabled participant",
            alice.messaging.send_message(to=Participant(id=ids["bob"], attributes={}), type="x", message={}),
        )
        observed["inbox"] = inbox
    return observed


run(main)
