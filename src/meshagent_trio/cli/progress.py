"""Progress bars for transfers and long operations: bytes, rate and time left, drawn on stderr
only when stderr is a terminal (`--progress/--no-progress` forces either); otherwise nothing is
drawn and the bar costs nothing."""

from __future__ import annotations

import sys
from contextlib import contextmanager
from typing import Callable, Iterator, Optional


def wanted(choice: Optional[bool] = None) -> bool:
    return sys.stderr.isatty() if choice is None else choice


@contextmanager
def transfer_bar(description: str, total: int | None, *, show: Optional[bool] = None) -> Iterator[Callable[[int], None]]:
    """`with transfer_bar("upload a.bin", size) as advance: … advance(len(chunk))`."""
    if not wanted(show):
        yield lambda count: None
        return
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

    from .output import console

    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console(stderr=True), transient=False) as progress:
        task = progress.add_task(description, total=total)
        yield lambda count: progress.advance(task, count)


@contextmanager
def work_bar(description: str, total: int | None, *, show: Optional[bool] = None) -> Iterator[Callable[[int], None]]:
    """As `transfer_bar`, counting items (rows, files) instead of bytes."""
    if not wanted(show):
        yield lambda count: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from .output import console

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console(stderr=True)) as progress:
        task = progress.add_task(description, total=total)
        yield lambda count: progress.advance(task, count)
