"""`meshagent-trio conformance URL`: checks any MeshAgent room server over the wire.

    meshagent-trio conformance http://127.0.0.1:8078 --api-key ma-...

or from code::

    report = await run_conformance("http://127.0.0.1:8078", api_key)
    for line in report.lines():
        print(line)

Each check is independent (rooms of its own, connections of its own, its own deadline) and
prints one PASS or FAIL line with a one-line reason; the command exits 1 if any failed.

* `handshake.*` (raw WebSocket): a valid token gets `room_ready` and `connected/init`; a
  token signed with another secret, expired, for another room, or missing gets HTTP 403.
* `framing.*` (raw packets): a ~400 KB message round-trips as hundreds of 1 KiB packets framed
  by the rules; undecodable requests get error answers and the connection stays usable; broken
  packets are dropped or end the connection with a protocol close code; a header packet
  announcing ~4 TiB is refused.
* `content.*`, `errors.*`: json, text, file, binary, empty and error answers (from built-in
  toolkits and relayed from a hosted tool) decode as sent; unknown toolkits, tools, request
  types and bad arguments get error answers with codes.
* `storage.*`, `queues.*`, `messaging.*`, `agents.*`, `sync.*` (the project's public client,
  `meshagent_trio.connect`): the room APIs with one, two or three participants.

The modules: `runner` (registry, run loop, report, `main`), `target` (URLs and tokens),
`wire` (the raw connection), and one module of checks per area.
"""

from . import checks_handshake, checks_framing, checks_content, checks_storage, checks_rooms  # noqa: F401  (registration)
from .runner import (
    CHECKS,
    DEFAULT_TIMEOUT,
    Check,
    CheckFailed,
    CheckResult,
    ConformanceReport,
    Context,
    check,
    main,
    run_conformance,
    select_checks,
)

__all__ = [
    "CHECKS",
    "DEFAULT_TIMEOUT",
    "Check",
    "CheckFailed",
    "CheckResult",
    "ConformanceReport",
    "Context",
    "check",
    "main",
    "run_conformance",
    "select_checks",
]
