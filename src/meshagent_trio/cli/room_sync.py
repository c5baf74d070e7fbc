"""`meshagent-trio room sync`: the room's collaborative documents as JSON: print one (`get`,
alias `show`), its schema (`inspect`), matching elements (`grep`), create one (`create`), apply
a JSON patch to one (`update`, alias `edit`), and follow its changes (`watch`, ours).

A document's JSON form is `{"<root tag>": {attributes…, "<child property>": [nodes…]}}`
(protocol/documents.md §2.1); `--include-ids` adds each element's `$id`."""

from __future__ import annotations

import json
import sys
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any, AsyncIterator, Optional

import typer

from .common import CommandFailed, ProjectIdOption, RoomOption, example, group, parse_json_option, room_session, run

EXTENSIONS = ("room sync show", "room sync edit", "room sync watch")

app = group("Inspect and update mesh documents in a room.")

PathArgument = Annotated[str, typer.Argument(help="The document's path in room storage (e.g. notes/plan.doc).")]
IncludeIds = Annotated[bool, typer.Option("--include-ids", help="Include each element's $id.")]
Pretty = Annotated[bool, typer.Option("--pretty/--compact", help="Indented JSON, or one line.")]


def _document_path(path: str) -> str:
    return path[len("room://") :] if path.startswith("room://") else path


def _write_json(value: Any, pretty: bool) -> None:
    if pretty:
        text = json.dumps(value, indent=2, ensure_ascii=False)
    else:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


@asynccontextmanager
async def open_document(room: str | None, path: str) -> AsyncIterator[Any]:
    """The existing document at `path`, open (and synchronised) for the block."""
    async with room_session(room) as client:
        document = await client.sync.open(path=path, create=False)
        try:
            yield document
        finally:
            await client.sync.close(path=path)


# --- reading -------------------------------------------------------------------------------------


def sync_get(path: PathArgument, project_id: ProjectIdOption = None, room: RoomOption = None, include_ids: IncludeIds = False, pretty: Pretty = True) -> None:
    """Print the document as JSON."""

    async def body() -> Any:
        async with open_document(room, _document_path(path)) as document:
            return document.root.to_json(include_ids=include_ids)

    _write_json(run(body), pretty)


app.command("get", epilog=example("meshagent-trio room sync get --room lobby notes/plan.doc", "meshagent-trio room sync get --room lobby notes/plan.doc --compact --include-ids"))(sync_get)
app.command("show", hidden=True, epilog=example("meshagent-trio room sync show --room lobby notes/plan.doc"))(sync_get)


@app.command("inspect", epilog=example("meshagent-trio room sync inspect --room lobby notes/plan.doc"))
def sync_inspect(path: PathArgument, project_id: ProjectIdOption = None, room: RoomOption = None, pretty: Pretty = True) -> None:
    """Print the document's schema as JSON."""

    async def body() -> Any:
        async with open_document(room, _document_path(path)) as document:
            return document.schema.to_json()

    _write_json(run(body), pretty)


@app.command("grep", epilog=example("meshagent-trio room sync grep --room lobby notes/plan.doc 'ship it'", "meshagent-trio room sync grep --room lobby notes/plan.doc todo --ignore-case --after 1"))
def sync_grep(
    path: PathArgument,
    pattern: Annotated[str, typer.Argument(help="A regular expression, matched against tags, attribute names and values.")],
    project_id: ProjectIdOption = None,
    room: RoomOption = None,
    ignore_case: Annotated[bool, typer.Option("--ignore-case", help="Ignore case.")] = False,
    before: Annotated[int, typer.Option("--before", min=0, help="Include this many siblings before each match.")] = 0,
    after: Annotated[int, typer.Option("--after", min=0, help="Include this many siblings after each match.")] = 0,
    include_ids: IncludeIds = False,
    pretty: Pretty = True,
) -> None:
    """Print the elements of the document that match a pattern, as a JSON list."""
    import re

    try:
        re.compile(pattern)
    except re.error as error:
        raise typer.BadParameter(f"not a regular expression: {error}", param_hint="PATTERN") from None

    async def body() -> Any:
        async with open_document(room, _document_path(path)) as document:
            matches = document.root.grep(pattern, ignore_case=ignore_case, before=before, after=after)
            return [match.to_json(include_ids=include_ids) for match in matches]

    _write_json(run(body), pretty)


# --- writing -------------------------------------------------------------------------------------


def _json_input(text: str | None, file: Path | None, option: str, file_option: str) -> Any:
    """The JSON of `--x` or `--x-file` (not both); None when neither is given."""
    if text is not None and file is not None:
        raise typer.BadParameter(f"pass {option} or {file_option}, not both", param_hint=option)
    if file is not None:
        try:
            text = file.expanduser().read_text()
        except OSError as error:
            raise typer.BadParameter(f"{file}: {error.strerror or error}", param_hint=file_option) from None
        return parse_json_option(text, file_option)
    return None if text is None else parse_json_option(text, option)


@app.command("create", epilog=example("meshagent-trio room sync create --room lobby notes/plan.doc --schema plan.schema.json --json '{\"plan\": {\"items\": []}}'"))
def sync_create(
    path: PathArgument,
    project_id: ProjectIdOption = None,
    room: RoomOption = None,
    schema: Annotated[
        Optional[Path], typer.Option("--schema", help="The schema (JSON file); default: the one the path's extension names in .schemas/.")
    ] = None,
    json_payload: Annotated[Optional[str], typer.Option("--json", help="The initial document, as JSON.")] = None,
    json_file: Annotated[Optional[Path], typer.Option("--json-file", help="A file holding the initial document's JSON.")] = None,
) -> None:
    """Create a new document at a path."""
    initial = _json_input(json_payload, json_file, "--json", "--json-file")
    if initial is not None and not isinstance(initial, dict):
        raise typer.BadParameter("a document is a JSON object", param_hint="--json")
    schema_json = _json_input(None, schema, "--schema", "--schema")
    if schema_json is not None:
        from meshagent_core.sync import MeshSchema, MeshSchemaException

        try:
            MeshSchema.from_json(schema_json)
        except (MeshSchemaException, TypeError, ValueError) as error:
            raise typer.BadParameter(f"not a document schema: {error}", param_hint="--schema") from None
    document_path = _document_path(path)

    async def body() -> None:
        async with room_session(room) as client:
            if await client.storage.exists(path=document_path):
                raise CommandFailed(f"a document already exists at {document_path}")
            await client.sync.create(path=document_path, json=initial, schema=schema_json)

    run(body)
    print(f"created {document_path}", file=sys.stderr)


def sync_update(
    path: PathArgument,
    project_id: ProjectIdOption = None,
    room: RoomOption = None,
    patch: Annotated[Optional[str], typer.Option("--patch", help="A JSON patch (RFC 6902): a list of operations.")] = None,
    patch_file: Annotated[Optional[Path], typer.Option("--patch-file", help="A file holding the JSON patch.")] = None,
) -> None:
    """Apply a JSON patch (RFC 6902) to a document."""
    operations = _json_input(patch, patch_file, "--patch", "--patch-file")
    hint = "--patch-file" if patch_file is not None else "--patch"
    if operations is None:
        raise typer.BadParameter("pass --patch or --patch-file", param_hint="--patch")
    if not isinstance(operations, list):
        raise typer.BadParameter("a JSON patch is a list of operations", param_hint=hint)
    document_path = _document_path(path)

    async def body() -> None:
        async with open_document(room, document_path) as document:
            try:
                updated = apply_patch(document.root.to_json(), operations)
            except PatchError as error:
                if error.malformed:
                    raise typer.BadParameter(str(error), param_hint=hint) from None
                raise CommandFailed(f"the patch does not apply to {document_path}: {error}") from None
            if not isinstance(updated, dict):
                raise CommandFailed("the patch must leave the document a JSON object")
            with document.transaction():
                reconcile(document.root, updated)

    run(body)
    print(f"updated {document_path}", file=sys.stderr)


app.command(
    "update",
    epilog=example(
        "meshagent-trio room sync update --room lobby notes/plan.doc --patch '[{\"op\": \"add\", \"path\": \"/plan/items/-\", \"value\": {\"item\": {\"title\": \"ship it\"}}}]'",
        "meshagent-trio room sync update --room lobby notes/plan.doc --patch-file changes.json",
    ),
)(sync_update)
app.command("edit", hidden=True, epilog=example("meshagent-trio room sync edit --room lobby notes/plan.doc --patch-file changes.json"))(sync_update)


# --- following -----------------------------------------------------------------------------------


@app.command(
    "watch",
    epilog=example("meshagent-trio room sync watch --room lobby notes/plan.doc", "meshagent-trio room sync watch --room lobby notes/plan.doc --pretty --count 3"),
)
def sync_watch(
    path: PathArgument,
    project_id: ProjectIdOption = None,
    room: RoomOption = None,
    include_ids: IncludeIds = False,
    pretty: Annotated[bool, typer.Option("--pretty/--compact", help="Indented JSON, or one line per version (the default).")] = False,
    count: Annotated[Optional[int], typer.Option("--count", min=1, help="Stop after printing this many versions (the first included).")] = None,
) -> None:
    """Print the document as JSON now and after every change, until Ctrl-C."""
    document_path = _document_path(path)

    async def body() -> None:
        async with room_session(room) as client:
            document = await client.sync.open(path=document_path, create=False)
            try:
                async with client.sync.changes(path=document_path) as changes:
                    printed = 0
                    last = None
                    iterator = changes.__aiter__()
                    while count is None or printed < count:
                        current = document.root.to_json(include_ids=include_ids)
                        if current != last:
                            _write_json(current, pretty)
                            printed += 1
                            last = current
                            if count is not None and printed >= count:
                                break
                        try:
                            await iterator.__anext__()
                        except StopAsyncIteration:
                            raise CommandFailed(f"the document {document_path} was closed") from None
            finally:
                await client.sync.close(path=document_path)

    run(body)


# --- JSON patch (RFC 6902) and applying its result to a live document ---------------------------


class PatchError(Exception):
    """A patch that is malformed (`malformed`: a usage error) or does not apply to the document."""

    def __init__(self, message: str, *, malformed: bool = False) -> None:
        super().__init__(message)
        self.malformed = malformed


def apply_patch(document: Any, operations: list[Any]) -> Any:
    """`document` (JSON, not changed) with the RFC 6902 `operations` applied, all or none (by
    the `jsonpatch` library)."""
    import jsonpatch
    import jsonpointer

    for number, operation in enumerate(operations, 1):
        pointers = [operation.get(key) for key in ("path", "from") if key in operation] if isinstance(operation, dict) else [None]
        if not pointers or not all(isinstance(pointer, str) and (pointer == "" or pointer.startswith("/")) for pointer in pointers):
            raise PatchError(f"operation {number} needs a 'path' that is a JSON pointer ('' or '/…')", malformed=True)
    try:
        patch = jsonpatch.JsonPatch(operations)
        return patch.apply(document)
    except jsonpatch.InvalidJsonPatch as error:
        raise PatchError(str(error), malformed=True) from None
    except jsonpatch.JsonPatchTestFailed as error:
        raise PatchError(f"test failed: {error}") from None
    except (jsonpatch.JsonPatchConflict, jsonpointer.JsonPointerException) as error:
        raise PatchError(str(error)) from None
    except (TypeError, AttributeError, KeyError) as error:  # an operation that is not an object, or lacks 'op'
        raise PatchError(f"not a JSON patch operation: {error}", malformed=True) from None


def reconcile(element: Any, wanted: dict[str, Any]) -> None:
    """Make the live `element` read as the JSON node `wanted` with as few edits as it takes:
    attributes are set or removed in place; children are kept (with their `$id`) as long as
    they still match position by position, and from the first that does not, the old ones are
    deleted and the wanted ones appended."""
    from meshagent_core.sync.document import DocumentError

    tag, body = next(iter(wanted.items())) if len(wanted) == 1 else ("", None)
    if tag != element.tag_name or not isinstance(body, dict):
        raise CommandFailed(f"the patched document must keep its root element {element.tag_name!r}")
    try:
        if not _update_in_place(element, body):
            raise CommandFailed("the patch changes rich text of the root element, which is not supported")
    except DocumentError as error:
        raise CommandFailed(str(error)) from None


def _update_in_place(element: Any, body: dict[str, Any]) -> bool:
    """Edit `element` to `body`; False (nothing changed) when its rich text differs."""
    from meshagent_core.sync.document import Element

    child_property = element.schema.child_property_name
    wanted_children = body.get(child_property, []) if child_property else []
    if not isinstance(wanted_children, list):
        raise CommandFailed(f"{element.tag_name}.{child_property} must be a list")
    children = element.get_children()
    has_text = any(not isinstance(child, Element) for child in children)
    if has_text and [child.to_json() for child in children] != wanted_children:
        return False
    current = {key: value for key, value in element.to_json()[element.tag_name].items() if key != child_property}
    attributes = {key: value for key, value in body.items() if key != child_property and key != "$id"}
    for key in current.keys() - attributes.keys():
        element.remove_attribute(key)
    for key, value in attributes.items():
        if current.get(key) != value:
            element.set_attribute(key, value)
    if has_text:
        return True
    kept = 0
    for child, node in zip(children, wanted_children):
        if child.to_json() == node:
            kept += 1
            continue
        if isinstance(node, dict) and len(node) == 1 and child.tag_name in node and isinstance(node[child.tag_name], dict):
            if _update_in_place(child, node[child.tag_name]):
                kept += 1
                continue
        break
    for child in children[kept:]:
        child.delete()
    for node in wanted_children[kept:]:
        element.append_json(node)
    return True
