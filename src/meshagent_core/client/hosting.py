"""Hosting a toolkit in a room (protocol/room-apis.md §6.4): `room.agents.host(toolkit)`.

Failures follow the official host (`meshagent-tools`): before the answer, an `error` content
(code 1002 for invalid data, the `RoomException`'s code, or none); after a stream opened,
invalid data closes it with status 1007 and the message, any other exception sends an `error`
chunk and closes normally. A failing tool never affects the room or other calls.

Calls are answered concurrently, each in its own task of a task group that the hosting owns
(itself a task of the room); leaving the `async with` unregisters the toolkit, then cancels the
calls still running (their callers get an `error`, code 1008). After a reconnect the toolkit is
registered again. `start_hosted_toolkit` is the official name for the same.
"""

from __future__ import annotations

import logging
import math
from collections.abc import AsyncIterable, AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Callable


from .. import messages as m
from ..content import CONTROL_CLOSE, CONTROL_OPEN, Content, ControlContent, ErrorContent, JsonContent
from ..errors import ErrorCode, RoomException
from ..session import events as ev
from .participants import Participant, RemoteParticipant
from .tool_values import InvalidToolDataException, RoomToolContext
from .tools import Toolkit


log = logging.getLogger("meshagent_core.client.hosting")

#: How long leaving a hosting block may take to unregister and stop its calls.
STOP_TIMEOUT = 5.0


# --- hosting ---------------------------------------------------------------------------------


def _error_content(error: BaseException) -> ErrorContent:
    code = error.code if isinstance(error, RoomException) else None
    return ErrorContent(text=str(error) or type(error).__name__, code=code)


class _HostedCall:
    """One call being answered; every send is one-way and tolerates a closed connection."""

    def __init__(self, room: Any, event: ev.ToolCallReceived) -> None:
        self.event = event
        self.connection = room.connection
        self.responded = False
        self.streaming = False
        self.closed = False
        self.scope: Any = None
        self.cancelled = False

    @property
    def key(self) -> tuple[int, str]:
        return (self.event.call_id, self.event.tool_call_id)

    def cancel(self) -> None:
        self.cancelled = True
        if self.scope is not None:
            self.scope.cancel()

    def _send(self, action: Callable[[Any], None]) -> None:
        connection = self.connection
        if connection is None or connection.closed:
            return
        try:
            action(connection)
        except Exception as error:  # the call is gone on the session side (connection lost)
            log.debug("dropped an answer to tool call %s: %s", self.event.tool_call_id, error)

    def respond(self, content: Content) -> None:
        if self.responded:
            return
        self.responded = True
        self.streaming = isinstance(content, ControlContent) and content.is_open
        self._send(lambda connection: connection.respond_to_tool_call(self.event.call_id, content))

    def chunk(self, chunk: Content | dict[str, Any]) -> None:
        if self.closed:
            return
        if isinstance(chunk, ControlContent) and chunk.is_close:
            self.closed = True
        self._send(lambda connection: connection.send_tool_call_chunk(self.event.call_id, chunk))

    def emit(self, event: dict[str, Any]) -> None:
        if not isinstance(event, dict):
            raise TypeError("a tool event must be a JSON object")
        self.chunk(dict(event))

    def fail(self, error: BaseException) -> None:
        if not self.responded:
            self.respond(_error_content(error))
        elif self.streaming and not self.closed:
            if isinstance(error, InvalidToolDataException):
                self.chunk(ControlContent(method="close", status_code=1007, message=str(error)))
            else:
                self.chunk(_error_content(error))
                self.chunk(CONTROL_CLOSE)


async def _input_stream(receive: Any) -> AsyncIterator[Content]:
    """A hosted call's input chunks until the caller closes the input."""
    async for item in receive:
        if isinstance(item, ev.ToolCallInputClosed):
            if item.status_code != 1000:
                raise RoomException(
                    item.message or "the input stream was closed abnormally",
                    code=ErrorCode.INVALID_REQUEST,
                    status_code=item.status_code,
                )
            return
        yield item


class HostedToolkit:
    """A toolkit hosted in a room (what `host_toolkit` yields and `start_hosted_toolkit`
    returns): `registration_id` while registered; `stop()` ends the hosting."""

    def __init__(self, room: Any, toolkit: Toolkit, *, public: bool | None = None) -> None:
        self.room = room
        self.toolkit = toolkit
        self.public = toolkit.public if public is None else public
        self.registration_id: str | None = None
        self._backend = room.backend
        self._subscription: Any = None
        self._calls: dict[tuple[int, str], _HostedCall] = {}
        self._inputs: dict[str, Any] = {}
        self._served: Any = None

    @property
    def running(self) -> bool:
        return self._subscription is not None

    async def start(self) -> None:
        """Register the toolkit and start answering its calls."""
        if self._subscription is not None:
            raise RoomException(f"the toolkit {self.toolkit.name!r} is already hosted", code=ErrorCode.ALREADY_EXISTS)
        self.room.agents._add_hosted(self)
        subscription = self.room.subscribe(
            ev.ToolCallReceived, ev.ToolCallInputChunk, ev.ToolCallInputClosed, ev.ToolCallCancelled
        )
        try:
            await self._register()
            self._served = self._backend.Event()
            self.room.start_soon(self._serve, subscription, self._served)
        except BaseException:
            subscription.close()
            self.room.agents._remove_hosted(self)
            raise
        self._subscription = subscription

    async def stop(self) -> None:
        """Unregister the toolkit, then cancel the calls still running (their callers get an
        `error`). Does nothing when not started."""
        subscription, self._subscription = self._subscription, None
        if subscription is None:
            return
        failure: BaseException | None = None
        with self._backend.shielded(STOP_TIMEOUT):
            try:
                await self._unregister()
            except Exception as error:
                failure = error
            finally:
                self.room.agents._remove_hosted(self)
                subscription.close()  # the serve loop answers what is queued, then ends
                await self._served.wait()
        if failure is not None:
            raise failure

    async def _register(self) -> None:
        answer = await self.room.send_request(m.REGISTER_TOOLKIT, self.toolkit.registration(public=self.public))
        registration_id = answer.json.get("id") if isinstance(answer, JsonContent) and isinstance(answer.json, dict) else None
        if not isinstance(registration_id, str):
            raise RoomException("unexpected return type from room.register_toolkit", code=ErrorCode.UNEXPECTED_RESPONSE_TYPE)
        self.registration_id = registration_id

    async def _unregister(self) -> None:
        registration_id, self.registration_id = self.registration_id, None
        connection = self.room.connection
        if registration_id is None or connection is None or connection.closed:
            return  # a closed connection took the registration with it
        try:
            await self.room.send_request(m.UNREGISTER_TOOLKIT, m.UnregisterToolkit(id=registration_id))
        except RoomException:
            if self.room.connection is None or self.room.connection.closed:
                return
            raise

    async def _reregister(self) -> None:
        """After a reconnect: the old registration went with the old connection."""
        if self._subscription is None:
            return
        self.registration_id = None
        try:
            await self._register()
        except Exception:
            log.exception("could not register toolkit %r again after a reconnect", self.toolkit.name)

    # --- answering calls ----------------------------------------------------------------

    async def _serve(self, subscription: Any, served: Any) -> None:
        try:
            async with self._backend.open_task_group() as task_group:
                async for event in subscription:
                    try:
                        self._dispatch(event, task_group)
                    except Exception:
                        log.exception("toolkit %r could not dispatch %r", self.toolkit.name, event)
                task_group.cancel_scope.cancel()
        except Exception:
            log.exception("hosting of toolkit %r failed", self.toolkit.name)
        finally:
            for send in self._inputs.values():
                send.close()
            self._inputs.clear()
            served.set()

    def _dispatch(self, event: Any, task_group: Any) -> None:
        name = self.toolkit.name
        if isinstance(event, ev.ToolCallReceived):
            if event.toolkit != name:
                return
            receive = None
            if isinstance(event.arguments, ControlContent) and event.arguments.is_open:
                send, receive = self._backend.open_memory_channel(math.inf)
                self._inputs[event.tool_call_id] = send
            call = _HostedCall(self.room, event)
            self._calls[call.key] = call
            task_group.start_soon(self._run_call, call, receive)
        elif isinstance(event, (ev.ToolCallInputChunk, ev.ToolCallInputClosed)):
            if event.toolkit != name:
                return
            send = self._inputs.get(event.tool_call_id)
            if send is None:
                return
            try:
                send.send_nowait(event.chunk if isinstance(event, ev.ToolCallInputChunk) else event)
            except Exception:  # the tool stopped reading its input
                pass
            if isinstance(event, ev.ToolCallInputClosed):
                send.close()
                del self._inputs[event.tool_call_id]
        elif isinstance(event, ev.ToolCallCancelled):
            call = self._calls.get((event.call_id, event.tool_call_id))
            if call is not None:
                call.cancel()

    async def _run_call(self, call: _HostedCall, receive: Any) -> None:
        try:
            with self._backend.move_on_after(math.inf) as scope:
                call.scope = scope
                if call.cancelled:
                    scope.cancel()
                await self._answer(call, receive)
        finally:
            self._calls.pop(call.key, None)
            send = self._inputs.pop(call.event.tool_call_id, None)
            if send is not None:
                send.close()
            if receive is not None:
                receive.close()

    async def _answer(self, call: _HostedCall, receive: Any) -> None:
        event = call.event
        context = RoomToolContext(
            room=self.room,
            caller=self._participant(event.caller_id),
            on_behalf_of=None if event.on_behalf_of_id is None else self._participant(event.on_behalf_of_id),
            event_handler=call.emit,
            tool_call_id=event.tool_call_id,
        )
        input: Content | AsyncIterable[Content] = _input_stream(receive) if receive is not None else event.arguments
        try:
            result = await self.toolkit.invoke(context=context, name=event.name, input=input)
            if isinstance(result, AsyncIterable):
                call.respond(CONTROL_OPEN)
                iterator = result.__aiter__()
                try:
                    while True:
                        try:
                            item = await iterator.__anext__()
                        except StopAsyncIteration:
                            break
                        call.chunk(item)
                finally:
                    aclose = getattr(iterator, "aclose", None)
                    if aclose is not None:
                        await aclose()
                call.chunk(CONTROL_CLOSE)
            else:
                call.respond(result)
        except Exception as error:
            if not isinstance(error, InvalidToolDataException):
                log.warning("tool %s.%s failed", self.toolkit.name, event.name, exc_info=error)
            call.fail(error)
        except BaseException:
            call.fail(
                RoomException(
                    f"the host of toolkit {self.toolkit.name!r} stopped before the call finished",
                    code=ErrorCode.OPERATION_FAILED,
                )
            )
            raise

    def _participant(self, participant_id: str) -> Participant:
        """The participant from the messaging presence list when known, else just its id."""
        known = getattr(self.room.messaging, "remote_participants", None)
        try:
            for participant in known or ():
                if getattr(participant, "id", None) == participant_id:
                    return participant  # type: ignore[no-any-return]
        except TypeError:
            pass
        return RemoteParticipant(id=participant_id, role="", attributes={})


@asynccontextmanager
async def host_toolkit(room: Any, toolkit: Toolkit, *, public: bool | None = None) -> AsyncIterator[HostedToolkit]:
    """Host `toolkit` in `room` while the block runs (what `room.agents.host(toolkit)` does).
    `public` overrides `toolkit.public` (public toolkits are listed and callable by everyone;
    private ones only by this participant)."""
    hosted = HostedToolkit(room, toolkit, public=public)
    await hosted.start()
    try:
        yield hosted
    finally:
        await hosted.stop()


async def start_hosted_toolkit(*, room: Any, toolkit: Toolkit, public: bool | None = None) -> HostedToolkit:
    """The official package's entry point: host `toolkit` until `await hosted.stop()` (or the
    room closes). Prefer `async with room.agents.host(toolkit):`, which cannot forget to stop."""
    hosted = HostedToolkit(room, toolkit, public=public)
    await hosted.start()
    return hosted


__all__ = ["HostedToolkit", "STOP_TIMEOUT", "host_toolkit", "start_hosted_toolkit"]
