"""Tables in files and on the command line, for `room sqlite` and `room dataset`: column
definitions (`--columns "id int not null, name text, tags list(text)"`, the official grammar),
JSON records from `--json`/`--file` options, and CSV / TSV / Parquet / Arrow / JSON / Excel files
read and written batch by batch with pyarrow (imported on first use)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Callable, Iterator, Optional

import typer

from .common import CommandFailed, parse_json_option

#: Rows per batch that imports read (and exports write) when not told otherwise.
BATCH_SIZE = 8192
#: What `--format` of an import accepts (`auto`: from the file's extension).
IMPORT_FORMATS = ("auto", "json", "arrow", "csv", "tsv", "parquet", "excel")
#: What `--format` of `sql` accepts (`table` and `json` are for people and programs; the others are files).
SQL_FORMATS = ("table", "json", "arrow", "csv", "tsv", "parquet", "excel")
SIMPLE_TYPES = ("int", "bool", "date", "timestamp", "float", "text", "json", "uuid", "binary")
COLUMNS_HELP = (
    'Column definitions, e.g. "id int not null, name text, tags list(text), embedding vector(3), '
    f'meta struct(owner text)". Types: {", ".join(SIMPLE_TYPES)}, vector(size[, type]), list(type), struct(name type, ...).'
)
_SUFFIXES = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".json": "json",
    ".jsonl": "json",
    ".ndjson": "json",
    ".arrow": "arrow",
    ".ipc": "arrow",
    ".feather": "arrow",
    ".xlsx": "excel",
    ".xlsm": "excel",
}


# --- column definitions ----------------------------------------------------------------------

_TOKEN = re.compile(r"\s*(?:(?P<word>[A-Za-z_][A-Za-z0-9_]*)|(?P<int>[0-9]+)|(?P<punct>[(),:]))")


class _Columns:
    """A recursive-descent reader of the official column grammar; `name:type` is also accepted."""

    def __init__(self, text: str) -> None:
        self.tokens: list[tuple[str, str, int]] = []
        position = 0
        while text[position:].strip():
            match = _TOKEN.match(text, position)
            if match is None:
                raise self.error(f"unexpected character {text[position:].lstrip()[0]!r}", position)
            kind = match.lastgroup or ""
            self.tokens.append((kind, match.group(kind), match.start(kind)))
            position = match.end()
        self.index = 0

    @staticmethod
    def error(message: str, position: int | None) -> typer.BadParameter:
        where = f" at position {position}" if position is not None else " at the end"
        return typer.BadParameter(f"{message}{where}", param_hint="--columns")

    def peek(self, kind: str, value: str | None = None) -> bool:
        if self.index >= len(self.tokens):
            return False
        token_kind, token, _ = self.tokens[self.index]
        return token_kind == kind and (value is None or token.lower() == value)

    def take(self, kind: str, value: str | None = None, what: str = "") -> str:
        if not self.peek(kind, value):
            position = self.tokens[self.index][2] if self.index < len(self.tokens) else None
            raise self.error(f"expected {what or value or kind}", position)
        self.index += 1
        return self.tokens[self.index - 1][1]

    def fields(self, end: Callable[[], bool]) -> list[Any]:
        import pyarrow as pa

        fields: list[Any] = []
        while True:
            name = self.take("word", what="a column name")
            if any(field.name == name for field in fields):
                raise self.error(f"column {name!r} is defined twice", None)
            if self.peek("punct", ":"):
                self.index += 1
            data_type = self.type()
            nullable = True
            if self.peek("word", "not"):
                self.index += 1
                self.take("word", "null")
                nullable = False
            elif self.peek("word", "null"):
                self.index += 1
            fields.append(pa.field(name, data_type, nullable=nullable))
            if not self.peek("punct", ","):
                break
            self.index += 1
            if end():
                break
        return fields

    def type(self) -> Any:
        import pyarrow as pa

        position = self.tokens[self.index][2] if self.index < len(self.tokens) else None
        name = self.take("word", what="a type").lower()
        if name == "vector":
            self.take("punct", "(")
            size = int(self.take("int", what="the vector's size"))
            element = pa.float64()
            if self.peek("punct", ","):
                self.index += 1
                element = self.type()
            self.take("punct", ")")
            if size <= 0:
                raise self.error("a vector's size must be positive", position)
            return pa.list_(element, size)
        if name == "list":
            self.take("punct", "(")
            element = self.type()
            self.take("punct", ")")
            return pa.list_(element)
        if name == "struct":
            self.take("punct", "(")
            fields = self.fields(lambda: False)
            self.take("punct", ")")
            return pa.struct(fields)
        simple = {
            "int": "int64",
            "bool": "bool_",
            "date": "date32",
            "timestamp": None,
            "float": "float64",
            "text": "string",
            "json": "json_",  # pyarrow 19 and newer
            "uuid": "uuid",
            "binary": "binary",
        }
        if name not in simple:
            raise self.error(f"unknown type {name!r} (types: {', '.join(SIMPLE_TYPES)}, vector, list, struct)", position)
        if name == "timestamp":
            return pa.timestamp("us", tz="UTC")
        factory = getattr(pa, simple[name], None)
        if factory is None:
            raise self.error(f"the {name!r} type needs a newer pyarrow than {pa.__version__}", position)
        return factory()


def parse_columns(text: str) -> Any:
    """`--columns` as a `pyarrow.Schema`; a mistake is a usage error naming the option."""
    import pyarrow as pa

    reader = _Columns(text)
    if not reader.tokens:
        raise typer.BadParameter("no columns given", param_hint="--columns")
    fields = reader.fields(lambda: False)
    if reader.index < len(reader.tokens):
        raise reader.error(f"unexpected {reader.tokens[reader.index][1]!r}", reader.tokens[reader.index][2])
    return pa.schema(fields)


# --- JSON options ----------------------------------------------------------------------------


def json_input(text: Optional[str], file: Optional[str], *, text_option: str, file_option: str) -> Any:
    """The value of a `--json`/`--file` pair (at most one given; None when neither is)."""
    if text is not None and file is not None:
        raise typer.BadParameter(f"use {text_option} or {file_option}, not both", param_hint=text_option)
    if text is not None:
        return parse_json_option(text, text_option)
    if file is None:
        return None
    try:
        return json.loads(Path(file).read_text(encoding="utf-8"))
    except ValueError as error:
        raise typer.BadParameter(f"{file} is not valid JSON: {error}", param_hint=file_option) from None


def record_list(value: Any, option: str) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise typer.BadParameter("expected a JSON array of objects", param_hint=option)
    return value


def records_table(records: list[dict[str, Any]], schema: Any, option: str) -> Any:
    """JSON records as a table of the `schema` columns they name, with the values JSON cannot
    spell converted: objects for `json` columns, strings for uuid, timestamp, date, binary
    (base64) columns."""
    import base64
    import binascii
    import datetime
    import uuid

    import pyarrow as pa

    names = list(dict.fromkeys(name for record in records for name in record))
    unknown = [name for name in names if name not in schema.names]
    if unknown:
        raise typer.BadParameter(f"the table has no column {unknown[0]!r}", param_hint=option)
    fields = [schema.field(name) for name in names]

    def convert(value: Any, field: Any) -> Any:
        kind = field.type
        if value is None:
            return None
        if is_json_field(field):
            return value if isinstance(value, str) else json.dumps(value)
        if not isinstance(value, str):
            return value
        if isinstance(kind, pa.UuidType):
            return uuid.UUID(value).bytes
        if pa.types.is_timestamp(kind):
            return datetime.datetime.fromisoformat(value)
        if pa.types.is_date(kind):
            return datetime.date.fromisoformat(value)
        if pa.types.is_binary(kind) or pa.types.is_large_binary(kind):
            return base64.b64decode(value, validate=True)
        return value

    try:
        rows = [{field.name: convert(record.get(field.name), field) for field in fields} for record in records]
        return pa.Table.from_pylist(rows, schema=pa.schema(fields))
    except (ValueError, TypeError, binascii.Error, pa.ArrowException) as error:
        raise typer.BadParameter(f"the rows do not fit the table: {error}", param_hint=option) from None


def json_object(text: Optional[str], option: str) -> Optional[dict[str, Any]]:
    if text is None:
        return None
    value = parse_json_option(text, option)
    if not isinstance(value, dict):
        raise typer.BadParameter("expected a JSON object", param_hint=option)
    return value


# --- reading files -----------------------------------------------------------------------------


def file_format(path: str, given: str, *, allowed: tuple[str, ...] = IMPORT_FORMATS) -> str:
    """The format of `path`: `given` unless it is `auto`, else from its extension."""
    given = given.lower()
    if given not in allowed:
        raise typer.BadParameter(f"{given!r} is not one of {', '.join(allowed)}", param_hint="--format")
    if given != "auto":
        return given
    found = _SUFFIXES.get(Path(path).suffix.lower())
    if found is None or found not in allowed:
        raise typer.BadParameter(f"cannot tell the format of {path} from its name: pass --format", param_hint="--format")
    return found


@dataclass
class Source:
    """A file's rows: its schema (None for JSON and Excel, where the first batch says), the rows
    it holds when the file says without reading them (else None), and its batches."""

    schema: Any
    rows: Optional[int]
    batches: Iterator[Any]


def open_source(path: str, fmt: str, *, batch_size: int = BATCH_SIZE, sheet: Optional[str] = None) -> Source:
    """`path` read as `fmt`, at most `batch_size` rows per batch; a missing file is OSError."""
    import pyarrow as pa

    if not Path(path).is_file():
        raise CommandFailed(f"no such file: {path}")
    try:
        if fmt in ("csv", "tsv"):
            import pyarrow.csv as pa_csv

            reader = pa_csv.open_csv(path, parse_options=pa_csv.ParseOptions(delimiter="\t" if fmt == "tsv" else ","))
            return Source(reader.schema, None, _sliced(reader, batch_size))
        if fmt == "parquet":
            import pyarrow.parquet as pq

            parquet = pq.ParquetFile(path)
            return Source(parquet.schema_arrow, parquet.metadata.num_rows, parquet.iter_batches(batch_size=batch_size))
        if fmt == "arrow":
            return _arrow_source(path, batch_size)
        if fmt == "json":
            return Source(None, None, _json_batches(path, batch_size))
        if fmt == "excel":
            return Source(None, None, _excel_batches(path, sheet, batch_size))
    except pa.ArrowInvalid as error:
        raise CommandFailed(f"cannot read {path} as {fmt}: {error}") from None
    raise AssertionError(fmt)


def _sliced(batches: Any, size: int) -> Iterator[Any]:
    for batch in batches:
        for start in range(0, batch.num_rows, size):
            yield batch.slice(start, size)


def _arrow_source(path: str, batch_size: int) -> Source:
    import pyarrow as pa

    try:
        reader = pa.ipc.open_file(pa.memory_map(path))
        rows = sum(reader.get_batch(index).num_rows for index in range(reader.num_record_batches))
        batches = (reader.get_batch(index) for index in range(reader.num_record_batches))
        return Source(reader.schema, rows, _sliced(batches, batch_size))
    except pa.ArrowInvalid:
        stream = pa.ipc.open_stream(pa.memory_map(path))
        return Source(stream.schema, None, _sliced(stream, batch_size))


def _records_batches(records: Iterator[dict[str, Any]], size: int) -> Iterator[Any]:
    import pyarrow as pa

    pending: list[dict[str, Any]] = []
    for record in records:
        pending.append(record)
        if len(pending) >= size:
            yield pa.Table.from_pylist(pending)
            pending = []
    if pending:
        yield pa.Table.from_pylist(pending)


def _json_batches(path: str, size: int) -> Iterator[Any]:
    return _records_batches(_json_records(path), size)


def _json_records(path: str) -> Iterator[dict[str, Any]]:
    """The objects of a JSON array or of JSON lines, read a megabyte at a time."""
    decoder = json.JSONDecoder()
    with open(path, encoding="utf-8") as handle:
        buffer, at_end, in_array = "", False, None
        while True:
            buffer = buffer.lstrip()
            if in_array and buffer.startswith(","):
                buffer = buffer[1:].lstrip()
            if in_array is None and buffer:
                in_array = buffer.startswith("[")
                if in_array:
                    buffer = buffer[1:].lstrip()
            if in_array and buffer.startswith("]"):
                return
            if buffer:
                try:
                    value, end = decoder.raw_decode(buffer)
                except ValueError as error:
                    if at_end:
                        raise CommandFailed(f"{path} is not a JSON array or JSON lines of objects: {error}") from None
                else:
                    if end < len(buffer) or at_end:
                        if not isinstance(value, dict):
                            raise CommandFailed(f"{path}: every row must be a JSON object")
                        yield value
                        buffer = buffer[end:]
                        continue
            elif at_end:
                if in_array:
                    raise CommandFailed(f"{path}: the JSON array has no closing ']'")
                return
            chunk = handle.read(1 << 20)
            at_end = not chunk
            buffer += chunk


def _excel_batches(path: str, sheet: Optional[str], size: int) -> Iterator[Any]:
    openpyxl = _optional("openpyxl")
    workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
    try:
        rows = workbook[sheet or workbook.sheetnames[0]].iter_rows(values_only=True)
        header = [None if cell is None or not str(cell).strip() else str(cell).strip() for cell in next(rows, ())]
        records = (
            {name: value for name, value in zip(header, row) if name is not None}
            for row in rows
            if any(value is not None for value in row)
        )
        yield from _records_batches(records, size)
    finally:
        workbook.close()


def _optional(module: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise CommandFailed(f"Excel files need the {module} package (pip install {module})") from None


# --- writing files -----------------------------------------------------------------------------


def is_json_field(field: Any) -> bool:
    name = getattr(field.type, "extension_name", None) or (field.metadata or {}).get(b"ARROW:extension:name", b"").decode()
    return name == "arrow.json"


def display_rows(batch: Any) -> list[dict[str, Any]]:
    """A batch's rows as dicts ready for `to_plain` (JSON columns decoded)."""
    json_columns = [field.name for field in batch.schema if is_json_field(field)]
    rows = batch.to_pylist()
    for row in rows:
        for name in json_columns:
            if isinstance(row.get(name), (str, bytes)):
                try:
                    row[name] = json.loads(row[name])
                except ValueError:
                    pass
    return rows


class JsonRowsWriter:
    """Rows as one JSON array, written as they come (one row per line, or indented)."""

    def __init__(self, sink: IO[str], pretty: bool) -> None:
        self.sink, self.pretty, self.first = sink, pretty, True

    def write(self, batch: Any) -> None:
        from .output import to_plain

        for row in display_rows(batch):
            text = json.dumps(to_plain(row), indent=2 if self.pretty else None, separators=None if self.pretty else (",", ":"), ensure_ascii=False)
            if self.pretty:
                text = "\n".join("  " + line for line in text.splitlines())
            self.sink.write(("[\n" if self.pretty else "[") if self.first else (",\n" if self.pretty else ","))
            self.sink.write(text)
            self.first = False

    def close(self) -> None:
        self.sink.write("[]\n" if self.first else ("\n]\n" if self.pretty else "]\n"))


def _stringified(batch: Any) -> Any:
    """Nested and extension columns as JSON / plain text, for CSV."""
    import pyarrow as pa

    from .output import to_plain

    columns, fields = [], []
    for index, field in enumerate(batch.schema):
        column = batch.column(index)
        if pa.types.is_nested(field.type) or isinstance(field.type, pa.ExtensionType):
            plain = [None if value is None else to_plain(value) for value in column.to_pylist()]
            values = [value if value is None or isinstance(value, str) else json.dumps(value, separators=(",", ":")) for value in plain]
            column, field = pa.array(values, pa.string()), pa.field(field.name, pa.string(), field.nullable)
        columns.append(column)
        fields.append(field)
    return pa.Table.from_arrays(columns, schema=pa.schema(fields))


class FileWriter:
    """Rows written to a file of one format as they come: `write(batch)`, then `close()`; the
    schema is the first batch's unless given. `abort()` removes a half-written file."""

    def __init__(self, path: str, fmt: str, schema: Any = None, *, pretty: bool = False) -> None:
        self.path, self.fmt, self.schema, self.pretty = path, fmt, schema, pretty
        self.writer: Any = None
        self.rows = 0
        if fmt == "excel":
            self.workbook = _optional("openpyxl").Workbook(write_only=True)
            self.sheet = self.workbook.create_sheet("rows")
        elif fmt == "json":
            self.handle: Any = open(path, "w", encoding="utf-8")
            self.writer = JsonRowsWriter(self.handle, pretty)

    def write(self, batch: Any) -> None:
        import pyarrow as pa

        if isinstance(batch, pa.RecordBatch):
            batch = pa.Table.from_batches([batch])
        self.rows += batch.num_rows
        if self.fmt in ("json",):
            self.writer.write(batch)
            return
        if self.fmt == "excel":
            if self.rows == batch.num_rows:
                self.sheet.append(batch.schema.names)
            for row in display_rows(_stringified(batch)):
                self.sheet.append(list(row.values()))
            return
        if self.writer is None:
            self._open(batch.schema)
        if self.fmt in ("csv", "tsv"):
            batch = _stringified(batch)
        elif self.schema is not None and batch.schema != self.schema:
            batch = batch.cast(self.schema)
        self.writer.write_table(batch)

    def _open(self, schema: Any) -> None:
        import pyarrow as pa

        self.schema = self.schema or schema
        if self.fmt in ("csv", "tsv"):
            import pyarrow.csv as pa_csv

            empty = _stringified(pa.Table.from_batches([], schema=self.schema))
            self.writer = pa_csv.CSVWriter(self.path, empty.schema, write_options=pa_csv.WriteOptions(delimiter="\t" if self.fmt == "tsv" else ","))
        elif self.fmt == "parquet":
            import pyarrow.parquet as pq

            self.writer = pq.ParquetWriter(self.path, self.schema)
        elif self.fmt == "arrow":
            self.writer = pa.ipc.new_file(self.path, self.schema)
        else:
            raise AssertionError(self.fmt)

    def close(self) -> None:
        import pyarrow as pa

        if self.fmt == "excel":
            self.workbook.save(self.path)
            return
        if self.fmt == "json":
            self.writer.close()
            self.handle.close()
            return
        if self.writer is None:
            self._open(self.schema if self.schema is not None else pa.schema([]))
        self.writer.close()

    def abort(self) -> None:
        try:
            if self.fmt == "json":
                self.handle.close()
            elif self.writer is not None and self.fmt != "excel":
                self.writer.close()
        finally:
            Path(self.path).unlink(missing_ok=True)
