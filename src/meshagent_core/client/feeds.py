"""`Feed`: the async iterators the sub-clients hand out (messages, presence, document changes).

A feed is fed synchronously by its sub-client (`_push`) from its creation until the sub-client
ends it (`_end`, optionally with the error that ended the source) or its reader stops
(`aclose()`, or leaving `async with`). It never blocks the room: the buffer is unbounded, and a
feed closed by its reader just loses what is pushed afterwards.
"""

from __future__ import annotations

import math
from typing import Any, Generic, TypeVar

T = TypeVar("T")


def close_receiver(receive: Any) -> bool:
    """Close a memory channel's receive side unless a task is waiting on it (that task then
    sees the end of the channel and closes it). AnyIO warns about unclosed receive streams."""
    if receive.statistics().tasks_waiting_receive:
        return False
    receive.close()
    return True


class _Failed:
    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


class Feed(Generic[T]):
    """An async iterator over what a sub-client pushes; also an async context manager that
    closes it. `feeds` is the sub-client's set of live feeds (this one joins it unless the
    source has already `ended` or `failed`)."""

    def __init__(self, backend: Any, feeds: set[Any], *, ended: bool = False, failure: BaseException | None = None) -> None:
        self._feeds = feeds
        self._send, self._receive = backend.open_memory_channel(math.inf)
        self._receiver_closed = False
        if failure is not None:
            self._end(failure)
        elif ended:
            self._end()
        else:
            feeds.add(self)

    def _push(self, item: T) -> None:
        try:
            self._send.send_nowait(item)
        except Exception:  # closed by its reader meanwhile: it loses the item, not the room
            self._feeds.discard(self)

    def _end(self, error: BaseException | None = None) -> None:
        """No more items; with `error`, the iteration raises it after the items before."""
        self._feeds.discard(self)
        if error is not None:
            try:
                self._send.send_nowait(_Failed(error))
            except Exception:
                pass
        self._send.close()

    def _raise(self, error: BaseException) -> BaseException:
        """The exception the iteration raises for the failure `error` (subclasses may copy it)."""
        return error

    def __aiter__(self) -> "Feed[T]":
        return self

    async def __anext__(self) -> T:
        if not self._receiver_closed:
            async for item in self._receive:
                if isinstance(item, _Failed):
                    self._receiver_closed = close_receiver(self._receive)
                    raise self._raise(item.error)
                return item  # type: ignore[no-any-return]
            self._receiver_closed = close_receiver(self._receive)
        raise StopAsyncIteration

    async def __aenter__(self) -> "Feed[T]":
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop receiving: the iteration ends."""
        self._end()
        self._receiver_closed = self._receiver_closed or close_receiver(self._receive)


__all__ = ["Feed", "close_receiver"]
