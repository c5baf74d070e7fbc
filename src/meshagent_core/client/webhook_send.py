"""`send_webhook`: POST a webhook as the official 0.56 sender does (protocol/webhooks.md §2), on
any event loop (httpx over AnyIO)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Mapping

from ..errors import RoomException
from ..webhooks import SIGNATURE_HEADER, sign, webhook_body

if TYPE_CHECKING:
    import httpx

log = logging.getLogger("meshagent_core.client.webhook_send")

#: Seconds a webhook delivery may take, answer included.
DEFAULT_TIMEOUT = 30.0


async def send_webhook(
    http: "httpx.AsyncClient | None" = None,
    *,
    url: str,
    event: str,
    data: Any,
    secret: str | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> None:
    """POST `{"event": event, "data": data}` to `url`, rendered as the official sender renders
    it (`webhook_body`), with `Content-Type: application/json` (over the caller's `headers`)
    and, when `secret` is given, the `Meshagent-Signature` over those exact bytes.

    `http` is an httpx client to send with (the official first argument is an aiohttp
    session); without one, a client is made for this call. A non-2xx answer raises
    `RoomException("error status returned from webhook call <url>, http status code: N")`, as
    officially; a transport failure raises `RoomException` saying what failed."""
    import httpx

    body = webhook_body(event, data)
    request_headers = {**(headers or {}), "Content-Type": "application/json"}
    if secret is not None:
        request_headers[SIGNATURE_HEADER] = sign(body, secret)
    try:
        if http is None:
            async with httpx.AsyncClient(timeout=timeout) as client:
                response = await client.post(url, content=body, headers=request_headers)
        else:
            response = await http.post(url, content=body, headers=request_headers, timeout=timeout)
    except httpx.HTTPError as error:
        log.warning("webhook call failed %s %s: %s", event, url, error)
        raise RoomException(f"webhook call to {url} failed: {error or type(error).__name__}") from None
    if not 200 <= response.status_code < 300:
        log.warning("webhook call failed %s %s: HTTP %d", event, url, response.status_code)
        raise RoomException(f"error status returned from webhook call {url}, http status code: {response.status_code}")


__all__ = ["send_webhook"]
