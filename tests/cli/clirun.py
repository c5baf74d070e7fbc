"""Running `meshagent-trio` in the test process as a user runs it: `main(argv)` with stdin,
stdout and stderr redirected, returning what it printed and its exit status."""

from __future__ import annotations

import io
import json
import sys
from dataclasses import dataclass
from typing import Any, Callable

from meshagent_trio.cli import main


@dataclass
class CliResult:
    args: tuple[str, ...]
    exit_code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        """stdout parsed as JSON (for `-o json`)."""
        return json.loads(self.stdout)

    @property
    def error_lines(self) -> list[str]:
        return self.stderr.splitlines()

    def __repr__(self) -> str:
        return f"CliResult({' '.join(self.args)!r} -> {self.exit_code}, stdout={self.stdout[:2000]!r}, stderr={self.stderr[:2000]!r})"


class _Text(io.StringIO):
    """A text stream that says it is not a terminal (as a pipe would)."""

    def isatty(self) -> bool:
        return False


def invoke(*args: str, input: str | None = None) -> CliResult:
    """Run `meshagent-trio ARGS…` in this process (the environment is the process's)."""
    stdin, stdout, stderr = sys.stdin, sys.stdout, sys.stderr
    sys.stdin, sys.stdout, sys.stderr = _Text(input or ""), _Text(), _Text()
    out, err = sys.stdout, sys.stderr
    try:
        code = main(list(args))
    finally:
        sys.stdin, sys.stdout, sys.stderr = stdin, stdout, stderr
    return CliResult(tuple(args), code, out.getvalue(), err.getvalue())


#: The `cli` fixture's type.
Cli = Callable[..., CliResult]


def ok(result: CliResult) -> CliResult:
    """The command succeeded; its result."""
    assert result.exit_code == 0, result
    return result


def assert_one_line_error(result: CliResult, code: int, *fragments: str) -> str:
    """The command failed with `code` and said why in one line on stderr containing every
    fragment; returns that line."""
    assert result.exit_code == code, result
    lines = result.error_lines
    assert len(lines) == 1, result
    for fragment in fragments:
        assert fragment in lines[0], (fragment, result)
    return lines[0]
