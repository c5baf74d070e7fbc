"""The check registry, the run loop and the report of `meshagent-trio conformance`.

A check is an async function of a `Context`, registered with `@check(name, description)`. It
returns a short detail for its PASS line (or None), and fails by raising: `CheckFailed` (see
`expect`) with the reason, or any other exception, which is reported as a FAIL with a one-line
reason and never stops the run. Every check runs under its own deadline (`trio.fail_after`), so
a server that never answers fails the check that waited for it, after `timeout` seconds.

Checks are independent: each works in rooms of its own (`Context.new_room()`), with its own
connections, and leaves nothing running behind it. They run one after the other, in
registration order (by area: handshake, framing, content, errors, storage, queues, messaging,
agents, sync).
"""

from __future__ import annotations

import fnmatch
import os
import re
import sys
import uuid
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Awaitable, Callable, Iterable

import trio

from .target import Target

#: Seconds a check may take before it fails as timed out (a hang guard, not a performance bar).
DEFAULT_TIMEOUT = 30.0
#: Longest reason printed on a FAIL line.
MAX_REASON = 300


class CheckFailed(Exception):
    """A check's expectation did not hold; the message is the FAIL line's reason."""


def expect(condition: object, reason: str) -> None:
    """Fail the running check with `reason` unless `condition` holds."""
    if not condition:
        raise CheckFailed(reason)


@dataclass(frozen=True)
class Check:
    name: str
    description: str
    function: Callable[["Context"], Awaitable[str | None]]

    @property
    def area(self) -> str:
        return self.name.split(".", 1)[0]


#: Every registered check by name, in registration order.
CHECKS: dict[str, Check] = {}


def check(name: str, description: str) -> Callable[[Callable[["Context"], Awaitable[str | None]]], Check]:
    """Register a check (`@check("storage.basics", "upload, exists, list, download, delete")`)."""

    def register(function: Callable[["Context"], Awaitable[str | None]]) -> Check:
        if name in CHECKS:
            raise ValueError(f"a check named {name!r} is already registered")
        registered = Check(name, description, function)
        CHECKS[name] = registered
        return registered

    return register


def select_checks(select: Iterable[str] | None = None) -> list[Check]:
    """The checks named by `select` (names, areas such as `storage`, or shell patterns such as
    `handshake.*`), in registration order; all of them when `select` is None. A selector that
    matches nothing raises `ValueError`."""
    checks = list(CHECKS.values())
    if select is None:
        return checks
    chosen: set[str] = set()
    for selector in select:
        matched = [c.name for c in checks if c.name == selector or c.area == selector or fnmatch.fnmatchcase(c.name, selector)]
        if not matched:
            raise ValueError(f"no conformance check matches {selector!r} (see --list)")
        chosen.update(matched)
    return [c for c in checks if c.name in chosen]


class Context:
    """What a check works with: the target server, fresh room names, tokens and connections.

    `step` says what the check is doing; a timeout reports it ("timed out after 30s while
    waiting for bob to receive the message")."""

    def __init__(self, target: Target, check: Check, *, timeout: float) -> None:
        self.target = target
        self.check = check
        self.timeout = timeout
        self.step = ""
        self._rooms = 0

    @property
    def settle(self) -> float:
        """How long a check waits for a reaction that may never come (a refusal, a close):
        a third of its timeout, at most 10 seconds."""
        return min(10.0, self.timeout / 3)

    def new_room(self) -> str:
        """A room name nobody used before: `conformance-<check>-<random>` (`[a-z0-9-]`, at
        most 63 characters)."""
        self._rooms += 1
        slug = re.sub(r"[^a-z0-9]+", "-", self.check.name.lower()).strip("-")[:36].rstrip("-")
        return f"conformance-{slug}-{uuid.uuid4().hex[:10]}"

    def token(self, room: str, name: str = "conformance", **options: Any) -> str:
        return self.target.token(room, name=name, **options)

    @asynccontextmanager
    async def connect(self, room: str, name: str = "conformance") -> AsyncIterator[Any]:
        """A `RoomClient` of the project's public client, joined as `name` (no reconnects:
        a refused or lost connection fails the check)."""
        import meshagent_trio

        self.step = f"connecting {name} to room {room!r}"
        async with meshagent_trio.connect(self.target.room_url(room), self.token(room, name), reconnect_timeout=0) as client:
            yield client


@dataclass(frozen=True)
class CheckResult:
    name: str
    passed: bool
    detail: str
    seconds: float

    def line(self, width: int = 34) -> str:
        return f"{'PASS' if self.passed else 'FAIL'}  {self.name:<{width}} {self.detail}".rstrip()


@dataclass
class ConformanceReport:
    api_url: str
    results: list[CheckResult] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return bool(self.results) and all(result.passed for result in self.results)

    @property
    def failures(self) -> list[CheckResult]:
        return [result for result in self.results if not result.passed]

    @property
    def exit_code(self) -> int:
        return 0 if self.passed else 1

    def result(self, name: str) -> CheckResult:
        for result in self.results:
            if result.name == name:
                return result
        raise KeyError(name)

    def summary(self) -> str:
        failed = len(self.failures)
        verdict = "conformant" if failed == 0 else f"{failed} FAILED"
        return (
            f"{len(self.results)} checks against {self.api_url}: {len(self.results) - failed} passed, "
            f"{failed} failed ({verdict}) in {self.seconds:.1f}s"
        )

    def lines(self) -> list[str]:
        return [result.line() for result in self.results] + [self.summary()]


def describe(error: BaseException) -> str:
    """One line for an exception (the first leaf of an exception group, with a count of the others)."""
    leaves = _leaves(error)
    first = leaves[0]
    text = " ".join(str(first).split()) or "(no message)"
    code = getattr(first, "code", None)
    line = f"{type(first).__name__}{f' [code {code}]' if isinstance(code, int) else ''}: {text}"
    if len(leaves) > 1:
        line += f" (and {len(leaves) - 1} more error(s))"
    return line


def _leaves(error: BaseException) -> list[BaseException]:
    if isinstance(error, BaseExceptionGroup):
        found = [leaf for inner in error.exceptions for leaf in _leaves(inner)]
        return found or [error]
    return [error]


def _one_line(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_REASON else text[: MAX_REASON - 1] + "…"


async def run_check(check: Check, target: Target, *, timeout: float = DEFAULT_TIMEOUT) -> CheckResult:
    """Run one check under its deadline; whatever it raises becomes a FAIL."""
    context = Context(target, check, timeout=timeout)
    started = trio.current_time()
    try:
        with trio.fail_after(timeout):
            detail = await check.function(context)
        passed, text = True, detail or ""
    except trio.TooSlowError:
        passed, text = False, f"timed out after {timeout:g}s" + (f" while {context.step}" if context.step else "")
    except Exception as error:  # a check never crashes the run
        first = _leaves(error)[0]
        if isinstance(first, CheckFailed):  # also when a task group wrapped it
            passed, text = False, str(first)
        else:
            passed, text = False, (f"while {context.step}: " if context.step else "") + describe(error)
    return CheckResult(check.name, passed, _one_line(text), trio.current_time() - started)


async def run_conformance(
    api_url: str,
    api_key: str,
    *,
    select: Iterable[str] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    on_result: Callable[[CheckResult], None] | None = None,
) -> ConformanceReport:
    """Run the checks (all, or those `select` names) against the MeshAgent server whose API
    base URL is `api_url` (`http://host:port`, as `MESHAGENT_API_URL`), minting participant
    tokens with `api_key` (an `ma-…` API key string). `on_result` sees each result as it comes.
    Raises `ValueError` for a malformed URL or key, or a selector that matches nothing."""
    target = Target(api_url, api_key)
    checks = select_checks(select)
    report = ConformanceReport(target.api_url)
    started = trio.current_time()
    for each in checks:
        result = await run_check(each, target, timeout=timeout)
        report.results.append(result)
        if on_result is not None:
            on_result(result)
    report.seconds = trio.current_time() - started
    return report


def _print(line: str) -> None:
    print(line, flush=True)


def main(
    api_url: str | None = None,
    api_key: str | None = None,
    *,
    select: Iterable[str] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    list_only: bool = False,
    out: Callable[[str], None] = _print,
) -> int:
    """The `meshagent-trio conformance` command: prints one PASS/FAIL line per check as it
    completes, then a summary. `api_url` and `api_key` default to `MESHAGENT_API_URL` and
    `MESHAGENT_API_KEY`. Returns 0 when every check passed, 1 when one failed, 2 when the run
    could not start (no URL or key, a malformed one, a selector that matches no check)."""

    def usage(message: str) -> int:
        print(f"meshagent-trio conformance: error: {message}", file=sys.stderr)
        return 2

    try:
        chosen = select_checks(select)
    except ValueError as error:
        return usage(str(error))
    if list_only:
        for each in chosen:
            out(f"{each.name:<34} {each.description}")
        return 0
    if timeout <= 0:
        return usage(f"the timeout must be positive, not {timeout:g}")
    api_url = api_url or os.environ.get("MESHAGENT_API_URL")
    api_key = api_key or os.environ.get("MESHAGENT_API_KEY")
    if not api_url:
        return usage("no API URL: pass it (http://host:port) or set MESHAGENT_API_URL")
    if not api_key:
        return usage("no API key: pass --api-key or set MESHAGENT_API_KEY")
    try:
        Target(api_url, api_key)
    except ValueError as error:
        return usage(str(error))

    def show(result: CheckResult) -> None:
        out(result.line())

    report = trio.run(lambda: run_conformance(api_url, api_key, select=select, timeout=timeout, on_result=show))
    out(report.summary())
    return report.exit_code


__all__ = [
    "CHECKS",
    "DEFAULT_TIMEOUT",
    "Check",
    "CheckFailed",
    "CheckResult",
    "ConformanceReport",
    "Context",
    "check",
    "describe",
    "expect",
    "main",
    "run_check",
    "run_conformance",
    "select_checks",
]
