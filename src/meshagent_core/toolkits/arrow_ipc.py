"""Apache Arrow on the wire (protocol/room-apis.md §12.2): schemas and rows of the `dataset` and
`sqlite` toolkits travel as Arrow IPC **stream** bytes (`application/vnd.apache.arrow.stream`).
A schema blob is a stream holding a schema and no batch; a row chunk is one stream holding one
or more batches.

`pyarrow` is imported on first use, not when this module is: `import meshagent_trio` stays light,
and only the data sub-clients and toolkits need it. Without it, `require_pyarrow()` raises an
`ImportError` that says what to install.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow

#: The content type of every Arrow payload.
ARROW_STREAM = "application/vnd.apache.arrow.stream"

__all__ = ["ARROW_STREAM", "ArrowDataError", "normalize_schema", "read_schema_blob", "read_stream", "require_pyarrow", "schema_blob", "stream_bytes"]


class ArrowDataError(ValueError):
    """Bytes that are not the Arrow IPC stream they should be."""


def require_pyarrow() -> Any:
    """The `pyarrow` module; an `ImportError` saying how to get it when it is missing."""
    try:
        import pyarrow
        import pyarrow.ipc  # noqa: F401
    except ImportError:
        raise ImportError(
            "the dataset and sqlite APIs need pyarrow: pip install 'meshagent-trio[data]' (or pyarrow itself)"
        ) from None
    return pyarrow


def schema_blob(schema: "pyarrow.Schema") -> bytes:
    """`schema` as an IPC stream with no batch."""
    pa = require_pyarrow()
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, schema):
        pass
    return bytes(sink.getvalue().to_pybytes())


def read_schema_blob(data: bytes) -> "pyarrow.Schema":
    """The schema of an IPC stream (its batches, if any, are not read)."""
    pa = require_pyarrow()
    try:
        return pa.ipc.open_stream(pa.BufferReader(data)).schema
    except (pa.ArrowInvalid, pa.ArrowException, OSError) as error:
        raise ArrowDataError(f"not an Arrow IPC stream: {error}") from None


def stream_bytes(data: "pyarrow.Table | pyarrow.RecordBatch") -> bytes:
    """A table or record batch as one IPC stream."""
    pa = require_pyarrow()
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, data.schema) as writer:
        if isinstance(data, pa.RecordBatch):
            writer.write_batch(data)
        else:
            writer.write_table(data)
    return bytes(sink.getvalue().to_pybytes())


def read_stream(data: bytes) -> "pyarrow.Table":
    """Every batch of an IPC stream, as one table (an empty table of the stream's schema when
    it has no batch)."""
    pa = require_pyarrow()
    try:
        return pa.ipc.open_stream(pa.BufferReader(data)).read_all()
    except (pa.ArrowInvalid, pa.ArrowException, OSError) as error:
        raise ArrowDataError(f"not an Arrow IPC stream: {error}") from None


def normalize_schema(schema: Any, *, label: str = "schema field") -> "pyarrow.Schema":
    """A `pyarrow.Schema` as it is, or one made from a mapping of column name →
    `pyarrow.DataType` / `pyarrow.Field`; `TypeError` "<label> '<name>' must be a
    pyarrow.DataType or pyarrow.Field" for anything else."""
    pa = require_pyarrow()
    if isinstance(schema, pa.Schema):
        return schema
    fields = []
    for name, value in schema.items():
        if isinstance(value, pa.Field):
            fields.append(pa.field(name, value.type, nullable=value.nullable, metadata=value.metadata))
        elif isinstance(value, pa.DataType):
            fields.append(pa.field(name, value))
        else:
            raise TypeError(f"{label} '{name}' must be a pyarrow.DataType or pyarrow.Field")
    return pa.schema(fields)
