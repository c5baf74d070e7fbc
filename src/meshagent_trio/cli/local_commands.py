"""The commands that run things here: `serve` (the local server), `demo`, `conformance`
(check any server over the wire) and `version`."""

from __future__ import annotations

import errno
import logging
import os
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from .common import CommandFailed, example, run

DEFAULT_DATA_DIR = Path(".meshagent-data")


class LogLevel(str, Enum):
    debug = "debug"
    info = "info"
    warning = "warning"
    error = "error"
    critical = "critical"


def register(app: typer.Typer) -> None:
    app.command(
        "serve",
        help="Run the local MeshAgent server: rooms over WebSockets and the HTTP front on one port.",
        epilog=example("meshagent-trio serve --port 8078 --data-dir .meshagent-data"),
    )(serve)
    app.command(
        "demo",
        help="Start the local server on a free port and run a session against it over real sockets.",
        epilog=example("meshagent-trio demo", "meshagent-trio demo --transcript"),
    )(demo)
    app.command(
        "conformance",
        help="Check a MeshAgent room server over the wire: one PASS/FAIL line per check, a summary, "
        "and exit status 1 if a check failed (2 if the run could not start).",
        epilog=example("meshagent-trio conformance http://127.0.0.1:8078 --api-key ma-…", "meshagent-trio conformance --list"),
    )(conformance)
    app.command("version", help="Print the version.", epilog=example("meshagent-trio version"))(version)


def serve(
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="port to listen on (0: any free port)")] = 8078,
    data_dir: Annotated[
        Path, typer.Option(help="where rooms keep their files, queues and documents, and where the API key is created")
    ] = DEFAULT_DATA_DIR,
    log_level: Annotated[LogLevel, typer.Option(case_sensitive=False)] = LogLevel.warning,
) -> None:
    logging.basicConfig(level=log_level.value.upper())
    from ..server import ServerConfig, load_credentials, run_server

    try:
        credentials, created = load_credentials(data_dir)
    except OSError as error:
        raise CommandFailed(f"cannot use the data directory {data_dir}: {error.strerror or error}") from None
    if created:
        print(f"created a project and API key in {data_dir}/credentials.json; clients need:")
    else:
        print("clients need:")
    print(f"  export MESHAGENT_API_KEY={credentials.api_key}")
    print(f"  export MESHAGENT_API_URL=http://{host}:{port}", flush=True)
    config = ServerConfig(
        data_dir=data_dir, credentials=credentials, host=host, port=port, webhook_secret=os.environ.get("MESHAGENT_WEBHOOK_SECRET") or None
    )
    try:
        run(lambda: run_server(config))
    except BaseException as error:
        leaf = error
        while isinstance(leaf, BaseExceptionGroup) and leaf.exceptions:
            leaf = leaf.exceptions[0]
        if isinstance(leaf, OSError) and leaf.errno in (errno.EADDRINUSE, errno.EADDRNOTAVAIL, errno.EACCES):
            reason = {errno.EADDRINUSE: "the address is already in use", errno.EADDRNOTAVAIL: "no such local address"}.get(
                leaf.errno, leaf.strerror or str(leaf)
            )
            raise CommandFailed(f"cannot listen on {host}:{port}: {reason}") from None
        raise


def demo(
    data_dir: Annotated[Path, typer.Option(help="the server's data directory")] = DEFAULT_DATA_DIR,
    transcript: Annotated[bool, typer.Option("--transcript", help="only print a session transcript through the protocol core")] = False,
) -> None:
    if transcript:
        from ..demo import run_transcript

        run_transcript()
    else:
        from ..demo import run_demo

        run(lambda: run_demo(data_dir))


def conformance(
    url: Annotated[Optional[str], typer.Argument(help="the server's API base URL, http://host:port (default: $MESHAGENT_API_URL)")] = None,
    api_key: Annotated[
        Optional[str], typer.Option(help="the API key (ma-...) the server trusts, to sign participant tokens (default: $MESHAGENT_API_KEY)")
    ] = None,
    check: Annotated[
        Optional[list[str]],
        typer.Option(
            "--check", metavar="NAME", help="run only this check, area (storage) or pattern ('handshake.*'); repeatable (default: every check)"
        ),
    ] = None,
    timeout: Annotated[float, typer.Option(metavar="SECONDS", help="seconds each check may take before it fails")] = 30.0,
    list_only: Annotated[bool, typer.Option("--list", help="list the checks (those --check selects) and exit")] = False,
) -> None:
    from ..conformance import main as conformance_main

    status = conformance_main(url, api_key, select=check or None, timeout=timeout, list_only=list_only)
    if status:
        raise typer.Exit(status)


def version() -> None:
    from .. import __version__

    print(f"meshagent-trio {__version__}")
