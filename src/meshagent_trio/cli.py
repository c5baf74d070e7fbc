"""The `meshagent-trio` command line."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import trio

DEFAULT_DATA_DIR = Path(".meshagent-data")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="meshagent-trio", description="MeshAgent on Trio")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the local MeshAgent server")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8078)
    serve.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    serve.add_argument("--log-level", default="WARNING")
    demo = commands.add_parser("demo", help="start the local server and run a demo session against it")
    demo.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    demo.add_argument("--transcript", action="store_true", help="only print a session transcript through the protocol core")
    args = parser.parse_args(argv)

    if args.command == "serve":
        logging.basicConfig(level=args.log_level.upper())
        from .server import ServerConfig, load_credentials, run_server

        credentials, created = load_credentials(args.data_dir)
        if created:
            print(f"created a project and API key in {args.data_dir}/credentials.json; clients need:")
        else:
            print("clients need:")
        print(f"  export MESHAGENT_API_KEY={credentials.api_key}")
        print(f"  export MESHAGENT_API_URL=http://{args.host}:{args.port}", flush=True)
        config = ServerConfig(data_dir=args.data_dir, credentials=credentials, host=args.host, port=args.port)
        trio.run(run_server, config)
        return 0
    if args.command == "demo":
        if args.transcript:
            from .demo import run_transcript

            run_transcript()
        else:
            from .demo import run_demo

            trio.run(run_demo, args.data_dir)
        return 0
    return 2
