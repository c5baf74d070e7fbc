"""Text out of what the ingest tools are given: files of room storage (plain text, Markdown,
JSON, PDF) and images (protocol/room-apis.md §15.4). Pure or blocking; no event loop.

* **Type**: the `mime_type` given, else the file's extension; `text/*` other than Markdown is
  plain text. Anything else (images included: use `ingest_image`) is refused with 1002.
* **Plain text** is decoded as UTF-8 (undecodable bytes replaced).
* **Markdown** loses its markup: heading marks, list bullets, emphasis, link targets
  (`[text](url)` → `text`), images, HTML tags and fenced code blocks; inline code stays
  (between backticks, so the heuristic rules read it as a quoted term).
* **JSON** becomes one line per scalar: `path.to.key: value` (arrays index as `[0]`), strings
  and numbers only.
* **PDF** text is extracted page by page with `pypdf` (at most `MAX_PDF_PAGES` pages); a PDF
  without a text layer (a scan) has no text and is refused.

Bounds: files up to `MAX_FILE_BYTES`, text up to `MAX_TEXT_CHARS` characters.
"""

from __future__ import annotations

import io
import json
import mimetypes
import re
from typing import Any

from meshagent_core import ErrorCode, RoomException

from .memory_store import invalid

MAX_FILE_BYTES = 32 * 1024 * 1024
MAX_TEXT_CHARS = 2 * 1024 * 1024
MAX_PDF_PAGES = 500
MAX_IMAGE_BYTES = 20 * 1024 * 1024
MAX_JSON_LINES = 20_000

MARKDOWN = "text/markdown"
JSON = "application/json"
PDF = "application/pdf"
PLAIN = "text/plain"
_EXTENSIONS = {".md": MARKDOWN, ".markdown": MARKDOWN, ".json": JSON, ".pdf": PDF, ".txt": PLAIN, ".text": PLAIN, ".log": PLAIN, ".csv": PLAIN}

_FENCE = re.compile(r"^\s*(```|~~~).*?^\s*\1\s*$", re.MULTILINE | re.DOTALL)
_IMAGE = re.compile(r"!\[([^\]]*)\]\([^)]*\)")
_LINK = re.compile(r"\[([^\]]+)\]\([^)]*\)")
_HTML = re.compile(r"<[^>\n]+>")
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s*", re.MULTILINE)
_QUOTE = re.compile(r"^\s{0,3}>\s?", re.MULTILINE)
_BULLET = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+", re.MULTILINE)
_EMPHASIS = re.compile(r"(\*\*|__|\*|_|~~)(?=\S)(.+?)(?<=\S)\1")
_RULE = re.compile(r"^\s*([-*_])(\s*\1){2,}\s*$", re.MULTILINE)


def kind_of(path: str | None, mime_type: str | None) -> str:
    """One of MARKDOWN, JSON, PDF, PLAIN; 1002 for what cannot be ingested as a file."""
    mime = (mime_type or "").split(";")[0].strip().lower()
    if not mime and path:
        extension = "." + path.rsplit(".", 1)[-1].lower() if "." in path.rsplit("/", 1)[-1] else ""
        mime = _EXTENSIONS.get(extension) or mimetypes.guess_type(path, strict=False)[0] or ""
    if mime in (MARKDOWN, "text/x-markdown"):
        return MARKDOWN
    if mime == JSON or mime.endswith("+json"):
        return JSON
    if mime == PDF:
        return PDF
    if mime.startswith("text/") or not mime:
        return PLAIN
    raise invalid(f"cannot ingest {mime} content as a file: text, Markdown, JSON and PDF are supported (images go to ingest_image)")


def strip_markdown(text: str) -> str:
    text = _FENCE.sub("", text)
    text = _IMAGE.sub(r"\1", text)
    text = _LINK.sub(r"\1", text)
    text = _HTML.sub("", text)
    text = _RULE.sub("", text)
    text = _HEADING.sub("", text)
    text = _QUOTE.sub("", text)
    text = _BULLET.sub("", text)
    return _EMPHASIS.sub(r"\2", text)


def json_text(data: bytes) -> str:
    try:
        document = json.loads(data.decode("utf-8", errors="replace"))
    except ValueError as error:
        raise invalid(f"the file is not valid JSON: {error}") from None
    lines: list[str] = []

    def walk(value: Any, path: str) -> None:
        if len(lines) >= MAX_JSON_LINES:
            return
        if isinstance(value, dict):
            for key, item in value.items():
                walk(item, f"{path}.{key}" if path else str(key))
        elif isinstance(value, list):
            for index, item in enumerate(value):
                walk(item, f"{path}[{index}]")
        elif isinstance(value, (str, int, float)) and not isinstance(value, bool):
            lines.append(f"{path}: {value}" if path else str(value))

    walk(document, "")
    return "\n".join(lines)


def pdf_text(data: bytes) -> str:
    try:
        from pypdf import PdfReader
        from pypdf.errors import PdfReadError
    except ImportError:
        raise RoomException(
            "ingesting PDF files needs the pypdf package on the server: pip install 'meshagent-trio[server]'", code=ErrorCode.DEPENDENCY_MISSING
        ) from None

    try:
        reader = PdfReader(io.BytesIO(data))
        pages = []
        for page in reader.pages[:MAX_PDF_PAGES]:
            pages.append(page.extract_text() or "")
    except (PdfReadError, ValueError, KeyError, TypeError) as error:
        raise invalid(f"the file is not a readable PDF: {error}") from None
    return "\n".join(pages)


def file_text(data: bytes, kind: str) -> str:
    """The text of a file's bytes (blocking for PDFs)."""
    if len(data) > MAX_FILE_BYTES:
        raise invalid(f"the file is larger than {MAX_FILE_BYTES} bytes")
    if kind == PDF:
        text = pdf_text(data)
    elif kind == JSON:
        text = json_text(data)
    else:
        text = data.decode("utf-8", errors="replace")
        if kind == MARKDOWN:
            text = strip_markdown(text)
    return bounded(text)


def bounded(text: str) -> str:
    if len(text) > MAX_TEXT_CHARS:
        raise invalid(f"the text is longer than {MAX_TEXT_CHARS} characters")
    return text


_IMAGE_SIGNATURES = [
    (b"\x89PNG\r\n\x1a\n", "image/png", "png"),
    (b"\xff\xd8\xff", "image/jpeg", "jpg"),
    (b"GIF87a", "image/gif", "gif"),
    (b"GIF89a", "image/gif", "gif"),
]


def image_type(data: bytes, mime_type: str | None) -> tuple[str, str]:
    """(mime type, file extension) of an image: the given type, else sniffed from its bytes."""
    given = (mime_type or "").split(";")[0].strip().lower()
    if given:
        extension = (mimetypes.guess_extension(given, strict=False) or ".bin").lstrip(".")
        return given, {"jpe": "jpg", "jpeg": "jpg"}.get(extension, extension)
    for signature, mime, extension in _IMAGE_SIGNATURES:
        if data.startswith(signature):
            return mime, extension
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp", "webp"
    return "application/octet-stream", "bin"


__all__ = ["MAX_IMAGE_BYTES", "file_text", "image_type", "kind_of", "strip_markdown"]
