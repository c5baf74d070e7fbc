"""The `meshagent-trio` command line: the local server (`serve`, `demo`, `conformance`) and
every room API and REST group, named as the official `meshagent` CLI names them.

`main(argv)` runs one command and returns its exit status: 0 done, 1 the operation failed (one
line on stderr), 2 a usage error (one line on stderr, pointing at `--help`), 130 Ctrl-C."""

from __future__ import annotations

import os
import sys
from typing import Any

PROG = "meshagent-trio"


def main(argv: list[str] | None = None) -> int:
    from .common import load_dotenv_file

    args = list(sys.argv[1:] if argv is None else argv)
    load_dotenv_file()
    from .app import build_command, leading_words

    completing = os.environ.get(f"_{PROG.replace('-', '_').upper()}_COMPLETE")
    words = os.environ.get("COMP_WORDS", "").split()[1:] if completing else args
    command = build_command(leading_words(words))
    try:
        status = command.main(args=args, prog_name=PROG, standalone_mode=False)
    except KeyboardInterrupt:
        return 130
    except BaseException as error:  # noqa: BLE001 - every failure becomes one line
        return _report(error, command, args)
    finally:
        sys.stdout.flush()
    return status if isinstance(status, int) else 0


def _report(error: BaseException, command: Any, args: list[str]) -> int:
    from .common import describe

    if isinstance(error, SystemExit):
        return error.code if isinstance(error.code, int) else 1
    leaf = error
    while isinstance(leaf, BaseExceptionGroup) and len(leaf.exceptions) == 1:
        leaf = leaf.exceptions[0]
    if isinstance(leaf, KeyboardInterrupt):
        return 130
    if hasattr(leaf, "format_message") and hasattr(leaf, "exit_code"):  # click's own (usage) errors
        context = getattr(leaf, "ctx", None)
        path = context.command_path if context is not None else PROG
        if type(leaf).__name__ == "Abort":
            return 130
        if type(leaf).__name__ == "NoArgsIsHelpError":  # a group called alone: its help
            print(leaf.format_message())
            return 0
        hint = f" (see {path} --help)" if leaf.exit_code == 2 else ""
        print(f"{path}: error: {' '.join(leaf.format_message().split())}{hint}", file=sys.stderr)
        return int(leaf.exit_code)
    print(f"{_command_path(command, args)}: error: {describe(leaf)}", file=sys.stderr)
    if os.environ.get("MESHAGENT_CLI_TRACEBACK"):
        import traceback

        traceback.print_exception(error)
    return 1


def _command_path(command: Any, args: list[str]) -> str:
    """`meshagent-trio room storage cp`: the groups and command the arguments named."""
    path = [PROG]
    for arg in args:
        children = getattr(command, "commands", None)
        if arg.startswith("-") or not children or arg not in children:
            if arg.startswith("-") and children:
                continue
            break
        command = children[arg]
        path.append(arg)
    return " ".join(path)


__all__ = ["PROG", "main"]
