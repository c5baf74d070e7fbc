"""Protocol section references in the code point into docs/protocol (see docs/protocol/README.md).

A reference is `protocol/<name>.md §<number>` (several numbers may follow: `§2.4, §2.5`). The
file must exist under docs/ and some heading of it must carry each number (`## 3. Framing`,
`### 3.2 Header packet`). The research notes the code used to cite are gone: their names must
not appear any more.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
SCANNED = ("src", "tests", "benchmarks", "examples", "README.md")
THIS_FILE = Path(__file__).resolve()

#: `protocol/<name>.md` and the section numbers after it (`§3`, `§3.2, §3.3`, `§2 and §3`).
REFERENCE = re.compile(
    r"protocol/(?P<name>[A-Za-z0-9_.-]+?\.md)"
    r"(?P<sections>(?:(?:\s*,\s*|\s+and\s+|\s*[–-]\s*|\s+)§\s*\d+(?:\.\d+)*)*)"
)
SECTION = re.compile(r"§\s*(\d+(?:\.\d+)*)")
HEADING = re.compile(r"^#{1,6}\s+(\d+(?:\.\d+)*)\.?\s", re.MULTILINE)
#: How the research notes were cited before docs/protocol existed.
OLD_FORMS = re.compile(
    r"ROOM_WIRE|ROOM_APIS|SYNC §|SYNC\.md|TOKENS\.md|TOKENS §|REST_API\.md|REST_API §|WEBHOOKS_AND_SERVICES"
)


def section_numbers(document: Path) -> set[str]:
    return set(HEADING.findall(document.read_text(encoding="utf-8")))


def scanned_files(root: Path) -> list[Path]:
    files: list[Path] = []
    for entry in SCANNED:
        path = root / entry
        if path.is_file():
            files.append(path)
        elif path.is_dir():
            files.extend(
                p for p in sorted(path.rglob("*"))
                if p.is_file() and "__pycache__" not in p.parts and p.suffix not in {".pyc", ".pyo"}
            )
    return [p for p in files if p.resolve() != THIS_FILE]


def read_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (UnicodeDecodeError, OSError):
        return None  # binary files cite nothing


def line_of(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def bad_references(root: Path, docs: Path) -> list[str]:
    """`file:line: problem` for every reference that points nowhere."""
    sections: dict[str, set[str] | None] = {}
    problems: list[str] = []
    for path in scanned_files(root):
        text = read_text(path)
        if text is None:
            continue
        for match in REFERENCE.finditer(text):
            name = match["name"]
            if name not in sections:
                document = docs / "protocol" / name
                sections[name] = section_numbers(document) if document.is_file() else None
            where = f"{path.relative_to(root)}:{line_of(text, match.start())}"
            known = sections[name]
            if known is None:
                problems.append(f"{where}: protocol/{name} does not exist under docs/")
                continue
            for number in SECTION.findall(match["sections"]):
                if number not in known:
                    problems.append(f"{where}: protocol/{name} has no section §{number}")
    return problems


def old_references(root: Path) -> list[str]:
    """`file:line: text` for every citation of the research notes."""
    found: list[str] = []
    for path in scanned_files(root):
        text = read_text(path)
        if text is None:
            continue
        for match in OLD_FORMS.finditer(text):
            found.append(f"{path.relative_to(root)}:{line_of(text, match.start())}: {match.group()}")
    return found


# --- the repository ----------------------------------------------------------------------------


def test_every_reference_points_at_an_existing_section() -> None:
    problems = bad_references(ROOT, DOCS)
    assert not problems, "protocol references that point nowhere:\n" + "\n".join(problems)


def test_no_reference_to_the_research_notes_remains() -> None:
    found = old_references(ROOT)
    assert not found, "cite docs/protocol (protocol/<file>.md §<n>) instead of:\n" + "\n".join(found)


def test_section_numbers_are_unique_in_each_document() -> None:
    for document in sorted((DOCS / "protocol").glob("*.md")):
        numbers = HEADING.findall(document.read_text(encoding="utf-8"))
        duplicates = sorted({n for n in numbers if numbers.count(n) > 1})
        assert not duplicates, f"{document.name}: section numbers used twice: {duplicates}"


def test_links_between_the_documents_resolve() -> None:
    """`[room-apis.md §2.2](room-apis.md)` inside docs/protocol points at an existing section."""
    link = re.compile(r"\[(?P<name>[A-Za-z0-9_.-]+\.md) §(?P<number>\d+(?:\.\d+)*)\]")
    problems = []
    for document in sorted((DOCS / "protocol").glob("*.md")):
        text = document.read_text(encoding="utf-8")
        for match in link.finditer(text):
            target = DOCS / "protocol" / match["name"]
            if not target.is_file() or match["number"] not in section_numbers(target):
                problems.append(f"{document.name}:{line_of(text, match.start())}: {match.group()}")
    assert not problems, "links to sections that do not exist:\n" + "\n".join(problems)


def test_the_code_cites_the_protocol_documents() -> None:
    cited = set()
    for path in scanned_files(ROOT):
        text = read_text(path)
        if text is not None:
            cited.update(match["name"] for match in REFERENCE.finditer(text))
    assert {"wire.md", "room-apis.md", "documents.md", "tokens.md"} <= cited


# --- the checks themselves ---------------------------------------------------------------------


def test_the_checks_catch_bad_references(tmp_path: Path) -> None:
    (tmp_path / "docs" / "protocol").mkdir(parents=True)
    (tmp_path / "docs" / "protocol" / "wire.md").write_text("# Wire\n\n## 3. Framing\n\n### 3.2 Header packet\n")
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "good.py").write_text('"""Framing (protocol/wire.md §3, §3.2)."""\n')
    (tmp_path / "src" / "bad.py").write_text(
        "# fine: protocol/wire.md §3.2\n"
        "# no such section: protocol/wire.md §3.2, §9.1\n"
        "# no such file: protocol/nothing.md §1\n"
        "# old: ROOM_WIRE §2\n"
    )
    assert bad_references(tmp_path, tmp_path / "docs") == [
        "src/bad.py:2: protocol/wire.md has no section §9.1",
        "src/bad.py:3: protocol/nothing.md does not exist under docs/",
    ]
    assert old_references(tmp_path) == ["src/bad.py:4: ROOM_WIRE"]
