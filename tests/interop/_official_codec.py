"""Runs the official meshagent-api 0.56 codec on request, for tests/interop.

Started once per test session under the official client's interpreter (Python 3.13, see
scripts/official-env.sh). It never imports our package. Protocol: one JSON request per line on
stdin, one JSON response per line on stdout:

    request:  {"op": "<name>", "cases": [...]}
    response: {"ok": [...one result per case...]}   or   {"error": "<traceback>"}

Bytes travel as base64 strings. Headers travel as JSON, which is lossless for the values the
tests generate (finite floats, any ints, non-surrogate strings) and keeps key order.

Ops:
  unpack_message  cases: [b64 envelope]            -> [{"header": {...}, "payload": b64} | {"raises": str}]
  pack_message    cases: [{"header", "payload"}]   -> [b64 envelope]
  unpack_content  cases: [b64 envelope]            -> [{"class", "json", "data"} | {"raises": str}]
  pack_content    cases: [{"json", "data"}]        -> [b64 envelope]   (content built with
                                                      its class's own `unpack`, then packed)
  receive_packets cases: [b64 packet, ...]         -> [{"id", "type", "data"}, ...] (all the
                                                      packets fed in order to one Protocol)
  send_messages   cases: [{"id", "type", "data"}]  -> [[b64 packet, ...], ...]
  ping            -> {"version": meshagent-api version}
"""

from __future__ import annotations

import asyncio
import base64
import json
import sys
import traceback

# Anything the official package prints while importing must not corrupt the response stream.
_out = sys.stdout
sys.stdout = sys.stderr

from meshagent.api import messaging  # noqa: E402
from meshagent.api.protocol import Protocol  # noqa: E402


def b64(data: bytes) -> str:
    return base64.b64encode(bytes(data)).decode("ascii")


def unb64(text: str) -> bytes:
    return base64.b64decode(text)


class CollectingProtocol(Protocol):
    def __init__(self) -> None:
        super().__init__()
        self.sent: list[bytes] = []
        self._open = True  # _send_message stops after the header packet otherwise

    async def send_packet(self, data: bytes) -> None:
        self.sent.append(bytes(data))


def _raises(error: BaseException) -> dict:
    return {"raises": f"{type(error).__name__}: {error}"}


def unpack_message(cases):
    results = []
    for case in cases:
        try:
            header, payload = messaging.unpack_message(unb64(case))
        except Exception as error:
            results.append(_raises(error))
        else:
            results.append({"header": header, "payload": b64(payload)})
    return results


def pack_message(cases):
    return [b64(messaging.pack_message(case["header"], unb64(case["payload"]))) for case in cases]


def unpack_content(cases):
    results = []
    for case in cases:
        try:
            content = messaging.unpack_content(unb64(case))
        except Exception as error:
            results.append(_raises(error))
        else:
            results.append(
                {
                    "class": type(content).__name__,
                    "json": content.to_json(),
                    "data": b64(content.get_data() or b""),
                }
            )
    return results


def pack_content(cases):
    results = []
    for case in cases:
        header = case["json"]
        content = messaging.content_types[header["type"]].unpack(
            header=dict(header), payload=unb64(case["data"])
        )
        results.append(b64(messaging.pack_content(content)))
    return results


async def receive_packets(cases):
    proto = CollectingProtocol()
    messages = []
    for packet in cases:
        proto.receive_packet(unb64(packet))
        while not proto._recv_ch.empty():
            message = proto._recv_ch.recv_nowait()
            messages.append({"id": message.id, "type": message.type, "data": b64(message.data)})
    return messages


async def send_messages(cases):
    results = []
    for case in cases:
        proto = CollectingProtocol()
        await proto._send_message(message_id=case["id"], type=case["type"], data=unb64(case["data"]))
        results.append([b64(packet) for packet in proto.sent])
    return results


def ping(cases):
    from importlib.metadata import version

    return {"version": version("meshagent-api"), "python": sys.version.split()[0]}


OPS = {
    "unpack_message": unpack_message,
    "pack_message": pack_message,
    "unpack_content": unpack_content,
    "pack_content": pack_content,
    "receive_packets": receive_packets,
    "send_messages": send_messages,
    "ping": ping,
}


async def main() -> None:
    # The official Protocol and Chan want a running event loop when constructed.
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            request = json.loads(line)
            result = OPS[request["op"]](request.get("cases", []))
            if asyncio.iscoroutine(result):
                result = await result
            response = {"ok": result}
        except Exception:
            response = {"error": traceback.format_exc()}
        _out.write(json.dumps(response) + "\n")
        _out.flush()


if __name__ == "__main__":
    asyncio.run(main())
