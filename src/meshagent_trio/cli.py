"""The `meshagent-trio` command line."""

from __future__ import annotations

import argparse


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="meshagent-trio", description="MeshAgent on Trio")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("demo", help="run a session transcript through the protocol core")
    args = parser.parse_args(argv)
    if args.command == "demo":
        from .demo import run_transcript

        run_transcript()
    return 0
