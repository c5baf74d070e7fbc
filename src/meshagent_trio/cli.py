"""The `meshagent-trio` command line.

Errors end a command with one line on stderr (`meshagent-trio serve: error: …`) and exit
status 1; `--log-level debug` adds the traceback."""

from __future__ import annotations

import argparse
import errno
import logging
import os
import sys
import traceback
from pathlib import Path

import trio

DEFAULT_DATA_DIR = Path(".meshagent-data")
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"a port is between 0 and 65535, not {port}")
    return port


def _log_level(text: str) -> str:
    level = text.lower()
    if level not in LOG_LEVELS:
        raise argparse.ArgumentTypeError(f"{text!r} is not one of {', '.join(LOG_LEVELS)}")
    return level


class _Parser(argparse.ArgumentParser):
    """Usage errors in one line, pointing at `--help` instead of printing the usage."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    formatter = argparse.ArgumentDefaultsHelpFormatter
    parser = _Parser(
        prog="meshagent-trio", description="MeshAgent on Trio: the local MeshAgent server and tools.", formatter_class=formatter
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)

    serve = commands.add_parser(
        "serve",
        help="run the local MeshAgent server",
        description="Run the local MeshAgent server: rooms over WebSockets and the HTTP front on one port.",
        formatter_class=formatter,
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve.add_argument("--port", type=_port, default=8078, help="port to listen on (0: any free port)")
    serve.add_argument(
        "--data-dir",
        type=Path,
        default=DEFAULT_DATA_DIR,
        help="where rooms keep their files, queues and documents, and where the API key is created",
    )
    serve.add_argument("--log-level", type=_log_level, default="warning", help=f"one of {', '.join(LOG_LEVELS)}")

    demo = commands.add_parser(
        "demo",
        help="start the local server and run a demo session against it",
        description="Start the local server on a free port and run a session against it over real sockets.",
        formatter_class=formatter,
    )
    demo.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR, help="the server's data directory")
    demo.add_argument(
        "--transcript", action="store_true", help="only print a session transcript through the protocol core"
    )

    conformance = commands.add_parser(
        "conformance",
        help="check any MeshAgent room server over the wire",
        description="Check a MeshAgent room server over the wire: one PASS/FAIL line per check, a summary, "
        "and exit status 1 if a check failed (2 if the run could not start).",
        formatter_class=formatter,
    )
    conformance.add_argument(
        "url", nargs="?", default=argparse.SUPPRESS, help="the server's API base URL, http://host:port (default: $MESHAGENT_API_URL)"
    )
    conformance.add_argument(
        "--api-key",
        default=argparse.SUPPRESS,
        help="the API key (ma-...) the server trusts, to sign participant tokens (default: $MESHAGENT_API_KEY)",
    )
    conformance.add_argument(
        "--check",
        dest="checks",
        action="append",
        metavar="NAME",
        default=argparse.SUPPRESS,
        help="run only this check, area (storage) or pattern ('handshake.*'); repeatable (default: every check)",
    )
    conformance.add_argument("--timeout", type=float, default=30.0, metavar="SECONDS", help="seconds each check may take before it fails")
    conformance.add_argument("--list", action="store_true", help="list the checks (those --check selects) and exit")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    debug = getattr(args, "log_level", "warning") == "debug"
    try:
        if args.command == "serve":
            return _serve(args)
        if args.command == "demo":
            return _demo(args)
        if args.command == "conformance":
            from .conformance import main as conformance

            return conformance(
                getattr(args, "url", None),
                getattr(args, "api_key", None),
                select=getattr(args, "checks", None),
                timeout=args.timeout,
                list_only=args.list,
            )
    except KeyboardInterrupt:
        return 130
    except Exception as error:
        if debug:
            traceback.print_exc()
        print(f"meshagent-trio {args.command}: error: {describe_failure(error, args)}", file=sys.stderr)
        return 1
    parser.error(f"unknown command {args.command!r}")
    return 2


def _serve(args: argparse.Namespace) -> int:
    logging.basicConfig(level=args.log_level.upper())
    from .server import ServerConfig, load_credentials, run_server

    credentials, created = load_credentials(args.data_dir)
    if created:
        print(f"created a project and API key in {args.data_dir}/credentials.json; clients need:")
    else:
        print("clients need:")
    print(f"  export MESHAGENT_API_KEY={credentials.api_key}")
    print(f"  export MESHAGENT_API_URL=http://{args.host}:{args.port}", flush=True)
    config = ServerConfig(
        data_dir=args.data_dir, credentials=credentials, host=args.host, port=args.port, webhook_secret=os.environ.get("MESHAGENT_WEBHOOK_SECRET") or None
    )
    trio.run(run_server, config)
    return 0


def _demo(args: argparse.Namespace) -> int:
    if args.transcript:
        from .demo import run_transcript

        run_transcript()
    else:
        from .demo import run_demo

        trio.run(run_demo, args.data_dir)
    return 0


def describe_failure(error: BaseException, args: argparse.Namespace) -> str:
    """One line for what went wrong: the first leaf of an exception group, with the address
    for a port that cannot be bound."""
    while isinstance(error, BaseExceptionGroup) and error.exceptions:
        error = error.exceptions[0]
    if isinstance(error, OSError) and error.errno in (errno.EADDRINUSE, errno.EADDRNOTAVAIL, errno.EACCES):
        where = f"{getattr(args, 'host', '?')}:{getattr(args, 'port', '?')}"
        reason = {errno.EADDRINUSE: "the address is already in use", errno.EADDRNOTAVAIL: "no such local address"}.get(
            error.errno, error.strerror or str(error)
        )
        return f"cannot listen on {where}: {reason}"
    text = " ".join(str(error).split()) or type(error).__name__
    return text if isinstance(error, OSError) else f"{type(error).__name__}: {text}"
