"""The five ingest tools of the `memory` toolkit (protocol/room-apis.md §15.4): they gather their
sources (room storage files, an image, dataset rows), let the strategy read them, and write what
it found (`memory_ingest`).

* `ingest_text`: `text` (non-empty).
* `ingest_file`: `path` (a room storage path; the caller needs `storage` `read` on it) or, when
  there is no path, `text` (read as `mime_type` says: plain, Markdown or JSON).
* `ingest_from_storage`: up to `MAX_PATHS` storage paths, each a source as in `ingest_file`.
* `ingest_image`: `caption`, `annotations_json` (a JSON object of strings) and the image
  (`data_base64`, at most `MAX_IMAGE_BYTES`). The image is kept in room storage at
  `memories/<namespace…>/<memory>/images/<sha256>.<ext>` (the caller needs `storage` `write`
  there; a `storage.file.updated` event follows) and named in the image entity's metadata
  (`path`). The caption is the text the strategy reads; each annotation becomes an entity
  (its value the name, its key the type) that the image `MENTIONS`.
* `ingest_from_table`: the rows of a `dataset` toolkit table (the caller needs `dataset` `read`
  on it), `text_columns` (default: every string column) joined as `column: value` lines, at most
  `limit` rows (default `DEFAULT_TABLE_ROWS`, at most `MAX_TABLE_ROWS`); each row a source.

Sources whose content was ingested before are not read by the strategy again (nor written);
the new ones are written together, one write per dataset. One call ingests at most
`MAX_CALL_TEXT` characters of text. Images kept in storage stay there when the memory is
dropped (they are the room's files).
Strategy `llm` is checked first — configuration (1007) and the `llm` grant (1001) — so a refused
call reads nothing.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import msgspec

from meshagent_core import Content
from meshagent_core.toolkits.memory import (
    IngestFileInput,
    IngestFromStorageInput,
    IngestFromTableInput,
    IngestImageInput,
    IngestInput,
    IngestTextInput,
)

from ..toolkit import ToolCall, permission_denied
from .dataset_access import store_of
from .dataset_store import check_name, check_namespace, show_table
from .memory_access import json_answer, require, run, state_of, toolkit
from .memory_documents import MAX_FILE_BYTES, MAX_IMAGE_BYTES, bounded, file_text, image_type, kind_of
from .memory_extract import Extraction, extract
from .memory_ingest import Source, file_source, image_source, recorded, result, row_source, sha256, text_source, write_sources
from .memory_llm import PROVIDER, llm_extract, model_of, settings
from .memory_store import MemoryRef, invalid
from .storage import storage_root, write_file
from .storage_disk import open_for_download
from .storage_paths import canonical_path, show

MAX_PATHS = 100
DEFAULT_TABLE_ROWS = 1000
MAX_TABLE_ROWS = 10_000
#: Characters of text one call may ingest, all its sources together.
MAX_CALL_TEXT = 16 * 1024 * 1024


async def _ingest(call: ToolCall, arguments: IngestInput, gather: Any) -> Content:
    """Check, gather the sources (`await gather(ref)`), extract, write."""
    ref = MemoryRef.of(arguments.name, arguments.namespace)
    require(call, ref, "ingest")
    model = model_of(arguments.llm_model)
    if arguments.strategy == "llm":
        settings()
        llm = call.scope.llm if call.scope is not None else None
        if llm is None or not llm.can_use_model(provider=PROVIDER, model=model):
            raise permission_denied(f"the llm strategy needs an llm grant for {PROVIDER}/{model}")
    state = state_of(call)
    store = await state.get()
    await run(store.require, ref)
    sources: list[Source] = await gather(ref)
    if sum(len(source.text) for source in sources) > MAX_CALL_TEXT:
        raise invalid(f"one call ingests at most {MAX_CALL_TEXT} characters of text: split it")
    known = await run(recorded, store, ref, sources)
    found: dict[str, Extraction] = {}
    for source in sources:
        if source.source_id in known or source.source_id in found:
            continue
        if not source.text.strip():
            found[source.source_id] = Extraction()
        elif arguments.strategy == "llm":
            found[source.source_id] = await llm_extract(source.text, model, arguments.llm_temperature)
        else:
            found[source.source_id] = await run(extract, source.text)
    for source in sources:  # kept only once the strategy has read them (a refused call keeps nothing)
        if source.attachment is not None and source.source_id not in known:
            path, data, mime = source.attachment
            await write_file(call.room, path, data, participant_id=call.caller.id, mime_type=mime, overwrite=True)
    async with state.locked(ref):
        await run(store.require, ref)
        outcomes = await run(write_sources, store, ref, [(source, found.get(source.source_id, Extraction())) for source in sources])
    return json_answer(result(ref, outcomes))


# --- text and files --------------------------------------------------------------------------------


@toolkit.tool("ingest_text")
async def ingest_text(call: ToolCall) -> Content:
    arguments = call.json_arguments(IngestTextInput)

    async def gather(ref: MemoryRef) -> list[Source]:
        if not arguments.text.strip():
            raise invalid("the text is empty")
        return [text_source(bounded(arguments.text))]

    return await _ingest(call, arguments, gather)


async def _storage_file(call: ToolCall, raw_path: str, mime_type: str | None) -> Source:
    path = canonical_path(raw_path)
    grant = call.scope.storage if call.scope is not None else None
    if grant is None or not grant.can_read(path):
        raise permission_denied(f"you do not have permission to read {show(path)}")
    kind = kind_of(path, mime_type)

    def read() -> tuple[bytes, str]:
        file, size, _ = open_for_download(root, path)
        with file:
            if size > MAX_FILE_BYTES:
                raise invalid(f"{show(path)} is larger than {MAX_FILE_BYTES} bytes")
            data = file.read(MAX_FILE_BYTES + 1)
        return data, file_text(data, kind)

    root = await storage_root(call.room)
    data, text = await run(read)
    return file_source(path, data, text)


@toolkit.tool("ingest_file")
async def ingest_file(call: ToolCall) -> Content:
    arguments = call.json_arguments(IngestFileInput)

    async def gather(ref: MemoryRef) -> list[Source]:
        if arguments.path:
            return [await _storage_file(call, arguments.path, arguments.mime_type)]
        if arguments.text is None or not arguments.text.strip():
            raise invalid("give a storage path or the text to ingest")
        text = await run(file_text, arguments.text.encode("utf-8"), kind_of(None, arguments.mime_type or "text/plain"))
        return [text_source(text)]

    return await _ingest(call, arguments, gather)


@toolkit.tool("ingest_from_storage")
async def ingest_from_storage(call: ToolCall) -> Content:
    arguments = call.json_arguments(IngestFromStorageInput)

    async def gather(ref: MemoryRef) -> list[Source]:
        if not arguments.paths:
            raise invalid("give at least one storage path")
        if len(arguments.paths) > MAX_PATHS:
            raise invalid(f"at most {MAX_PATHS} paths per call")
        return [await _storage_file(call, path, None) for path in arguments.paths]

    return await _ingest(call, arguments, gather)


# --- images ----------------------------------------------------------------------------------------


def _annotations(annotations_json: str | None) -> dict[str, str]:
    if annotations_json is None:
        return {}
    try:
        return msgspec.json.decode(annotations_json, type=dict[str, str])
    except (msgspec.DecodeError, msgspec.ValidationError) as error:
        raise invalid(f"annotations_json must be a JSON object of strings: {error}") from None


def _image_bytes(data_base64: str | None) -> bytes | None:
    if data_base64 is None:
        return None
    if len(data_base64) > (MAX_IMAGE_BYTES * 4) // 3 + 4:
        raise invalid(f"the image is larger than {MAX_IMAGE_BYTES} bytes")
    try:
        return base64.b64decode(data_base64, validate=True)
    except (binascii.Error, ValueError):
        raise invalid("data_base64 is not valid base64") from None


@toolkit.tool("ingest_image")
async def ingest_image(call: ToolCall) -> Content:
    arguments = call.json_arguments(IngestImageInput)

    async def gather(ref: MemoryRef) -> list[Source]:
        annotations = _annotations(arguments.annotations_json)
        data = _image_bytes(arguments.data_base64)
        if data is None and not (arguments.caption or "").strip() and not annotations:
            raise invalid("nothing to ingest: give a caption, annotations or the image")
        stored_at = None
        if data is not None:
            mime, extension = image_type(data, arguments.mime_type)
            stored_at = "/".join(("memories", *ref.namespace, ref.name, "images", f"{sha256(data)}.{extension}"))
            grant = call.scope.storage if call.scope is not None else None
            if grant is None or not grant.can_write(stored_at):
                raise permission_denied(f"you do not have permission to write {stored_at} (where the image is kept)")
            source = image_source(arguments.caption, data, annotations, arguments.source, stored_at)
            source.attachment = (stored_at, data, mime)
            return [source]
        return [image_source(arguments.caption, None, annotations, arguments.source, None)]

    return await _ingest(call, arguments, gather)


# --- dataset tables ---------------------------------------------------------------------------------


@toolkit.tool("ingest_from_table")
async def ingest_from_table(call: ToolCall) -> Content:
    arguments = call.json_arguments(IngestFromTableInput)

    async def gather(ref: MemoryRef) -> list[Source]:
        namespace = check_namespace(arguments.table_namespace)
        table = check_name(arguments.table)
        grant = call.scope.dataset if call.scope is not None else None
        if grant is None or not grant.can_read(table, namespace=list(namespace) if namespace else None):
            raise permission_denied(f"you do not have permission to read table {show_table(namespace, table)!r}")
        limit = DEFAULT_TABLE_ROWS if arguments.limit is None else arguments.limit
        if not 1 <= limit <= MAX_TABLE_ROWS:
            raise invalid(f"limit must be between 1 and {MAX_TABLE_ROWS}")
        datasets = await store_of(call)
        label = show_table(namespace, table)

        def read() -> list[Source]:
            import pyarrow as pa

            dataset = datasets.open(namespace, table)
            schema = dataset.schema
            if arguments.text_columns is None:
                columns = [field.name for field in schema if pa.types.is_string(field.type) or pa.types.is_large_string(field.type)]
            else:
                unknown = [column for column in arguments.text_columns if column not in schema.names]
                if unknown:
                    raise invalid(f"table {label!r} has no column {unknown[0]!r}")
                columns = list(arguments.text_columns)
            if not columns:
                raise invalid(f"table {label!r} has no text column: name the columns to read in text_columns")
            rows = dataset.to_table(columns=columns, limit=limit).to_pylist()
            sources = []
            for row in rows:
                lines = [f"{column}: {row[column]}" for column in columns if row.get(column) not in (None, "")]
                if lines:
                    sources.append(row_source(label, bounded("\n".join(lines))))
            return sources

        return await run(read)

    return await _ingest(call, arguments, gather)


__all__ = ["MAX_PATHS", "MAX_TABLE_ROWS"]
