"""The command tree. Group and command names are the official `meshagent` CLI's where it has
the same thing (tests/cli/test_cli_command_names.py checks them against its tree); the hidden
aliases take the plural names some users type."""

from __future__ import annotations

import functools
import importlib
from typing import Annotated, Any, Optional

import typer

from . import PROG
from .common import example

#: (name, module, hidden aliases) of the groups under `meshagent-trio room`.
ROOM_GROUPS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("agents", "room_agents", ("agent",)),
    ("queue", "room_queue", ()),
    ("messaging", "room_messaging", ()),
    ("storage", "room_storage", ()),
    ("mounts", "room_mounts", ()),
    ("service", "room_services", ("services",)),
    ("developer", "room_developer", ()),
    ("dataset", "room_dataset", ("database",)),
    ("sqlite", "room_sqlite", ()),
    ("memory", "room_memory", ()),
    ("sync", "room_sync", ()),
)

#: (name, module, hidden aliases) of the top-level groups.
TOP_GROUPS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("project", "rest_projects", ("projects",)),
    ("rooms", "rest_rooms", ()),
    ("api-key", "rest_keys", ("api-keys",)),
    ("secret", "rest_secrets", ("secrets",)),
    ("service", "rest_services", ("services",)),
    ("scheduled-task", "rest_tasks", ("scheduled-tasks",)),
    ("mailbox", "rest_mailboxes", ("mailboxes",)),
    ("webhook", "rest_webhooks", ("webhooks",)),
    ("session", "rest_sessions", ("sessions",)),
    ("usage", "rest_usage", ()),
    ("token", "token_commands", ()),
    ("call", "call_commands", ()),
)


#: Hidden aliases that are not the official CLI's: the older `room database`, and the plural
#: group names the issue and some users type.
EXTENSIONS = ("room database", "projects", "api-keys", "secrets", "services", "scheduled-tasks", "mailboxes", "webhooks", "sessions")


def _module(name: str) -> Any:
    return importlib.import_module(f"{__package__}.{name}")


def _version_option(value: bool) -> None:
    if value:
        from .. import __version__

        print(f"{PROG} {__version__}")
        raise typer.Exit(0)


def build_app(named: tuple[str, ...] | None = None) -> typer.Typer:
    """The whole tree, or, with `named` (the leading words of a command line), the tree with
    only the named groups built: the others stand in by name and help line, enough for a
    listing, at a fraction of the cost (typer reads every command's signature when it builds)."""
    root = typer.Typer(
        name=PROG,
        help="MeshAgent on Trio: the local MeshAgent server, and every room API and REST group from the command line.",
        no_args_is_help=True,
        rich_markup_mode=None,
        pretty_exceptions_enable=False,
        epilog=example("meshagent-trio serve", "meshagent-trio room storage ls --room lobby"),
    )

    @root.callback()
    def _root(
        version: Annotated[
            Optional[bool], typer.Option("--version", help="Print the version and exit.", callback=_version_option, is_eager=True)
        ] = None,
    ) -> None:
        """MeshAgent on Trio: the local MeshAgent server, and every room API and REST group from the command line.

        Configuration comes from the environment the SDK reads (MESHAGENT_API_URL,
        MESHAGENT_API_KEY, MESHAGENT_ROOM, MESHAGENT_TOKEN, MESHAGENT_PROJECT_ID), and from a
        .env file in the working directory for what the environment does not set."""

    _module("local_commands").register(root)

    room = typer.Typer(help="Operate within a room.", no_args_is_help=True, add_completion=False, rich_markup_mode=None)
    for name, module, aliases in ROOM_GROUPS:
        _add(room, name, _module(module).app, aliases, _wanted(named, 1, "room"))
    _module("room_connect").register(room)
    root.add_typer(room, name="room")
    for name, module, aliases in TOP_GROUPS:
        _add(root, name, _module(module).app, aliases, _wanted(named, 0, None))
    return root


def _wanted(named: tuple[str, ...] | None, level: int, parent: str | None) -> tuple[str, ...] | None:
    """The name the command line gives at `level` under `parent` (None: build everything)."""
    if named is None:
        return None
    if parent is not None and (not named or named[0] != parent):
        return ()
    return named[level : level + 1]


def _add(parent: typer.Typer, name: str, child: typer.Typer, aliases: tuple[str, ...], wanted: tuple[str, ...] | None = None) -> None:
    """`child` under `name` and its hidden aliases; when `wanted` names another group, a
    stand-in with the same help line instead."""
    if wanted is not None and not set(wanted) & {name, *aliases}:
        child = typer.Typer(help=child.info.help, add_completion=False, rich_markup_mode=None)
    parent.add_typer(child, name=name)
    for alias in aliases:
        parent.add_typer(child, name=alias, hidden=True)


@functools.cache
def build_command(named: tuple[str, ...] | None = None) -> Any:
    """The click command `main()` runs (built once per process and `named`; see `build_app`)."""
    return typer.main.get_command(build_app(named))


def leading_words(args: list[str]) -> tuple[str, ...]:
    """The group names a command line starts with (`room storage` of `room storage ls …`)."""
    words: list[str] = []
    for arg in args:
        if arg.startswith("-") or len(words) == 2:
            break
        words.append(arg)
    return tuple(words)
