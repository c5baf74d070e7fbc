"""Print the official `meshagent` CLI's command tree as JSON: every command path with its
options and arguments, and whether it is hidden or a group.

Run it with a Python that has the official `meshagent-cli` package installed (it needs Python
3.13; a scratch virtualenv does: `python3.13 -m venv /tmp/cli && /tmp/cli/bin/pip install
'meshagent-cli[all]==0.56.0'`):

    /tmp/cli/bin/python scripts/official_cli_tree.py > tests/cli/official_cli_tree.json

tests/cli/test_cli_command_names.py compares our tree with the stored copy, and with a fresh one
when MESHAGENT_OFFICIAL_CLI_PYTHON names such a Python.
"""

from __future__ import annotations

import importlib.metadata
import json
import sys
from typing import Any


def tree() -> dict[str, Any]:
    from meshagent.cli.async_typer import get_command
    from meshagent.cli.cli import app

    root = get_command(app, materialize_lazy=True)
    context_class = type(root.make_context("meshagent", [], resilient_parsing=True))
    commands: dict[str, Any] = {}

    def walk(command: Any, path: list[str], parent: Any) -> None:
        children = getattr(command, "commands", None)
        commands[" ".join(path)] = {
            "hidden": bool(getattr(command, "hidden", False)),
            "group": children is not None,
            "options": sorted(
                option
                for param in command.params
                if type(param).__name__.endswith("Option")
                for option in [*param.opts, *getattr(param, "secondary_opts", [])]
                if option not in ("--install-completion", "--show-completion")
            ),
            "arguments": [param.name for param in command.params if type(param).__name__.endswith("Argument")],
        }
        if children is not None:
            context = context_class(command, info_name=path[-1] if path else "meshagent", parent=parent)
            for name in command.list_commands(context):
                child = command.get_command(context, name)
                if child is not None:
                    walk(child, [*path, name], context)

    walk(root, [], None)
    return {"package": "meshagent-cli", "version": importlib.metadata.version("meshagent-cli"), "commands": commands}


if __name__ == "__main__":
    json.dump(tree(), sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")
