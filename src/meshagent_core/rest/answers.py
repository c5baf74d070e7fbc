"""Reading a REST answer as the official client does: the typed errors of a status, and the
model of a success (`read_answer`). Pure: it takes the status and the body bytes."""

from __future__ import annotations

from typing import Any

import msgspec

from ..errors import ErrorCode, RoomException
from ..jsondepth import decode_bounded
from .routes import Route


class RestError(RoomException):
    """A REST call answered with an error status. `status_code` (400) and `code` (1002) are the
    official client's constants; `http_status` is the status the server really sent."""

    def __init__(self, message: str, *, http_status: int, body: str = "") -> None:
        super().__init__(message, code=ErrorCode.INVALID_REQUEST)
        self.http_status = http_status
        self.body = body


class ValidationErrorResponse(RestError):
    """400: the request did not fit (the body says which field)."""


class PermissionDeniedError(RestError):
    """403: the token may not do this."""


class NotFoundError(RestError):
    """404: no such project, room, key, …"""


class ConflictError(RestError):
    """409: the name is taken."""


class ServerError(RestError):
    """5xx."""


class RoomDisabledError(RestError):
    """423: the room exists and is disabled (the official class: `status_code` 423, no code)."""

    def __init__(self, message: str = "This room is currently disabled.", *, http_status: int = 423, body: str = "") -> None:
        super().__init__(message, http_status=http_status, body=body)
        self.status_code = 423
        self.code = None


_TYPED: dict[int, type[RestError]] = {
    400: ValidationErrorResponse,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
}


def error_for(status: int, body: bytes) -> RestError:
    """The exception the official client raises for an error status (`Status=N, body=…`)."""
    text = body.decode("utf-8", "replace")
    if status == 423:
        return RoomDisabledError(_disabled_message(body), body=text)
    message = f"Status={status}, body={text}"
    kind = _TYPED.get(status) or (ServerError if status >= 500 else RestError)
    return kind(message, http_status=status, body=text)


def _disabled_message(body: bytes) -> str:
    try:
        payload = decode_bounded(body)
    except msgspec.DecodeError:
        payload = None
    error = payload.get("error") if isinstance(payload, dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    return message if isinstance(message, str) else "This room is currently disabled."


def read_answer(route: Route, status: int, body: bytes) -> Any:
    """The value of a 2xx answer (its model, or any JSON; None for an empty body; the bytes of
    a raw answer), or the error of any other status (a route's own 404 message first, then its
    own failure message, as the official client)."""
    if status == 404 and route.none_when_missing:
        return None
    if status == 404 and route.not_found is not None:
        raise RestError(route.not_found, http_status=404, body=body.decode("utf-8", "replace"))
    if status >= 400 and route.failure is not None:
        text = body.decode("utf-8", "replace")
        raise RestError(f"{route.failure}. Status code: {status}, body: {text}", http_status=status, body=text)
    if status >= 400:
        raise error_for(status, body)
    if route.raw_answer:
        return body
    if route.response is None:
        return None
    if not body.strip():
        if route.response is Any:
            return None
        raise RoomException(f"Invalid {_noun(route)} payload: the answer is empty", code=ErrorCode.INVALID_REQUEST)
    try:
        if route.response is Any:
            return decode_bounded(body)
        return decode_bounded(body, route.response)
    except (msgspec.ValidationError, msgspec.DecodeError) as error:
        raise RoomException(f"Invalid {_noun(route)} payload: {error}", code=ErrorCode.INVALID_REQUEST) from None


def _noun(route: Route) -> str:
    return route.payload_noun or getattr(route.response, "__name__", str(route.response))


__all__ = [
    "ConflictError",
    "NotFoundError",
    "PermissionDeniedError",
    "RestError",
    "RoomDisabledError",
    "ServerError",
    "ValidationErrorResponse",
    "error_for",
    "read_answer",
]
