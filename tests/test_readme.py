"""Every Python block in the README is a complete program, and runs as written.

A block is run in a fresh directory, as a subprocess, with `MESHAGENT_API_URL` and
`MESHAGENT_API_KEY` set to a local server's (what `meshagent-trio serve` tells you to export).
A block whose first line is `# test_<name>.py` is a user's test file: it is run by pytest,
with nothing but the installed package's plugin.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest

from meshagent_trio.server.process import LocalServerProcess

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCK = re.compile(r"^```python\n(.*?)^```", re.M | re.S)
TEST_FILE = re.compile(r"# (test_\w+\.py)\n")


def readme_blocks() -> list[tuple[int, str]]:
    text = README.read_text()
    return [(text.count("\n", 0, match.start()) + 1, match.group(1)) for match in BLOCK.finditer(text)]


BLOCKS = readme_blocks()


@pytest.fixture(scope="module")
def local_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServerProcess]:
    with LocalServerProcess(tmp_path_factory.mktemp("readme") / "data") as server:
        yield server


def test_the_readme_has_programs() -> None:
    assert len(BLOCKS) >= 8
    assert any(TEST_FILE.match(code) for _, code in BLOCKS)


@pytest.mark.parametrize(("line", "code"), BLOCKS, ids=[f"README.md:{line}" for line, _ in BLOCKS])
def test_readme_block_runs(line: int, code: str, local_server: LocalServerProcess, tmp_path: Path) -> None:
    environ = {
        **os.environ,
        "MESHAGENT_API_URL": local_server.api_url,
        "MESHAGENT_API_KEY": local_server.api_key,
        "PYTHONPATH": "",
    }
    test_file = TEST_FILE.match(code)
    if test_file:
        (tmp_path / test_file.group(1)).write_text(code)
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(tmp_path), str(tmp_path)]
    else:
        (tmp_path / "program.py").write_text(code)
        command = [sys.executable, "program.py"]
    result = subprocess.run(command, cwd=tmp_path, env=environ, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, (
        f"README.md:{line} failed ({result.returncode})\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
    )
