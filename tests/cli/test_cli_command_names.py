"""The command tree against the official `meshagent` CLI's (0.56, stored in
official_cli_tree.json by scripts/official_cli_tree.py): every command and option we have is
named as the official CLI names it, or is one of our declared extensions; every command says
what it does and shows an example."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from meshagent_trio.cli import PROG
from meshagent_trio.cli import app as cli_app
from meshagent_trio.cli.app import ROOM_GROUPS, TOP_GROUPS, build_command

HERE = Path(__file__).parent
OFFICIAL = json.loads((HERE / "official_cli_tree.json").read_text())

#: Groups the official CLI builds from one command, which typer collapses into the group's own
#: name: `meshagent room developer` is its `watch`, `meshagent token` its `generate`.
COLLAPSED = {"room developer": "watch", "token": "generate"}

#: Commands of ours that the official CLI does not have at all (not in any module's EXTENSIONS
#: because they are the local server's own).
OWN_COMMANDS = ("serve", "demo", "conformance")

#: Official commands, in groups we have too, that we do not offer (docs/cli.md says why).
NOT_OFFERED = ("project activate", "room container", "room dataset install", "room memory import", "room sqlite recover", "room sync import")

#: Options every command has.
UNIVERSAL_OPTIONS = {"--help"}


def walk(command: Any, path: tuple[str, ...] = (), parent: Any = None, out: dict | None = None) -> dict[str, dict[str, Any]]:
    out = {} if out is None else out
    context_class = type(command.make_context(PROG, [], resilient_parsing=True)) if parent is None else type(parent)
    children = getattr(command, "commands", None)
    out[" ".join(path)] = {
        "command": command,
        "group": children is not None,
        "hidden": bool(getattr(command, "hidden", False)),
        "options": {
            option
            for param in command.params
            if type(param).__name__.endswith("Option")
            for option in [*param.opts, *getattr(param, "secondary_opts", [])]
        }
        - {"--install-completion", "--show-completion"},
        "arguments": [param.name for param in command.params if type(param).__name__.endswith("Argument")],
    }
    if children is not None:
        context = context_class(command, info_name=path[-1] if path else PROG, parent=parent)
        for name in command.list_commands(context):
            walk(command.get_command(context, name), (*path, name), context, out)
    return out


def official_commands() -> dict[str, dict[str, Any]]:
    commands = dict(OFFICIAL["commands"])
    for path, name in COLLAPSED.items():
        leaf = commands[path]
        commands[f"{path} {name}"] = leaf
        commands[path] = {**leaf, "group": True, "options": [], "arguments": []}
    return commands


def aliases() -> dict[str, str]:
    """Our hidden alias prefixes and the names they stand for."""
    found = {}
    for name, _module, names in ROOM_GROUPS:
        found.update({f"room {alias}": f"room {name}" for alias in names})
    for name, _module, names in TOP_GROUPS:
        found.update({alias: name for alias in names})
    return found


def extensions() -> set[str]:
    declared: set[str] = set(OWN_COMMANDS) | set(cli_app.EXTENSIONS)
    for module in {module for _name, module, _aliases in (*ROOM_GROUPS, *TOP_GROUPS)} | {"room_connect", "local_commands"}:
        declared.update(getattr(cli_app._module(module), "EXTENSIONS", ()))
    return declared


def is_extension(path: str, declared: set[str]) -> bool:
    words = path.split()
    return any(" ".join(words[:length]) in declared for length in range(1, len(words) + 1))


def canonical(path: str, alias_map: dict[str, str]) -> str:
    for alias, name in sorted(alias_map.items(), key=lambda item: -len(item[0])):
        if path == alias or path.startswith(alias + " "):
            return name + path[len(alias) :]
    return path


OURS = walk(build_command())


def test_every_command_is_official_or_a_declared_extension() -> None:
    official, declared, alias_map = official_commands(), extensions(), aliases()
    strangers = []
    for path in OURS:
        if not path:
            continue
        if path in official or is_extension(path, declared):
            continue
        if canonical(path, alias_map) in official or is_extension(canonical(path, alias_map), declared):
            if path in alias_map and path not in official and not is_extension(path, declared):
                strangers.append(f"{path} (an alias neither official nor declared)")
            continue
        strangers.append(path)
    assert not strangers, f"commands named neither as the official CLI nor declared in EXTENSIONS: {strangers}"


def test_shared_commands_take_the_official_option_names() -> None:
    official, declared = official_commands(), extensions()
    wrong = []
    for path, ours in OURS.items():
        if not path or path not in official or ours["group"]:
            continue
        theirs = set(official[path]["options"]) | UNIVERSAL_OPTIONS
        for option in sorted(ours["options"] - theirs):
            if f"{path} {option}" not in declared:
                wrong.append(f"{path} {option}")
        if len(ours["arguments"]) != len(official[path]["arguments"]) and f"{path} (arguments)" not in declared:
            wrong.append(f"{path}: arguments {ours['arguments']} where the official CLI has {official[path]['arguments']}")
    assert not wrong, f"options not named as the official CLI names them, nor declared in EXTENSIONS: {wrong}"


def test_declared_extensions_exist_and_are_not_official() -> None:
    official = official_commands()
    for item in extensions():
        path, _, option = item.partition(" -")
        path = path.removesuffix(" (arguments)")
        assert path in OURS, f"EXTENSIONS names {item!r}, which is not a command of ours"
        if option:
            assert ("-" + option) in OURS[path]["options"], f"EXTENSIONS names {item!r}, which is not an option of {path!r}"
            assert ("-" + option) not in official.get(path, {}).get("options", ()), f"{item!r} is official: not an extension"
        elif item not in OWN_COMMANDS:
            assert path not in official, f"{item!r} is an official command: not an extension"


def test_every_command_has_a_help_line_and_an_example() -> None:
    missing = []
    for path, ours in OURS.items():
        command = ours["command"]
        if not path or ours["group"]:
            continue
        text = command.help or command.short_help or ""
        epilog = command.epilog or ""
        examples = [line.strip() for line in epilog.splitlines() if line.strip().startswith(PROG)]
        if not text.strip():
            missing.append(f"{path}: no help text")
        if not any(example.startswith(f"{PROG} {path}") or _is_alias_example(example, path) for example in examples):
            missing.append(f"{path}: no example of itself in its --help")
    assert not missing, missing


def _is_alias_example(example: str, path: str) -> bool:
    return canonical(path, aliases()) != path and example.startswith(f"{PROG} {canonical(path, aliases())}")


def test_help_shows_the_example(cli_env) -> None:
    from clirun import invoke

    result = invoke("room", "mounts", "list", "--help")
    assert result.exit_code == 0 and "Example" in result.stdout and "meshagent-trio room mounts list --room lobby" in result.stdout


def test_the_official_commands_we_lack_are_the_documented_ones() -> None:
    """The official commands in groups we both have that we do not have are exactly those
    docs/cli.md lists, with why."""
    official, alias_map = official_commands(), aliases()
    ours = set(OURS) | {canonical(path, alias_map) for path in OURS}
    shared_groups = {path for path, entry in OURS.items() if entry["group"] and path in official}

    def visible(path: str) -> bool:
        words = path.split()
        return not any(official[" ".join(words[:length])]["hidden"] for length in range(1, len(words) + 1))

    missing = sorted(
        path for path in official if " " in path and path.rsplit(" ", 1)[0] in shared_groups and path not in ours and visible(path)
    )
    assert missing == sorted(NOT_OFFERED)
    documented = (HERE.parent.parent / "docs" / "cli.md").read_text()
    assert all(f"`{path}`" in documented for path in NOT_OFFERED)


def test_shell_completion_completes_command_names(tmp_path: Path) -> None:
    assert complete("meshagent-trio room sto", 2, tmp_path) == ["storage"]
    assert complete("meshagent-trio room storage l", 3, tmp_path) == ["ls"]


def complete(words: str, index: int, cwd: Path) -> list[str]:
    environ = {**os.environ, "_MESHAGENT_TRIO_COMPLETE": "complete_bash", "COMP_WORDS": words, "COMP_CWORD": str(index)}
    result = subprocess.run([sys.executable, "-m", "meshagent_trio"], env=environ, capture_output=True, text=True, timeout=60, cwd=cwd)
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


@pytest.mark.skipif(not os.environ.get("MESHAGENT_OFFICIAL_CLI_PYTHON"), reason="MESHAGENT_OFFICIAL_CLI_PYTHON (a Python with meshagent-cli 0.56) is not set")
def test_the_stored_official_tree_is_the_installed_packages() -> None:
    script = HERE.parent.parent / "scripts" / "official_cli_tree.py"
    fresh = json.loads(subprocess.run([os.environ["MESHAGENT_OFFICIAL_CLI_PYTHON"], str(script)], capture_output=True, text=True, check=True, timeout=300).stdout)
    assert fresh == OFFICIAL
