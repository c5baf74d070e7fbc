"""Sending one webhook: the envelope as the official sender writes it, signed with the project's
secret, POSTed with a deadline (protocol/webhooks.md §5).

A receiver's answer counts by its status only: 2xx is delivered, anything else fails with the
official sender's text ("error status returned from webhook call <url>, http status code: N").
The answer's body is never read, so a receiver that sends a large or endless one costs nothing.
A refused connection, a reset or the deadline fail the same way, saying what happened.
"""

from __future__ import annotations

from typing import Mapping

import httpx

from meshagent_core.webhooks import SIGNATURE_HEADER, sign

#: Seconds a webhook may take, from connecting to the answer's status line.
DELIVERY_TIMEOUT = 10.0


class DeliveryFailed(Exception):
    """The webhook was not delivered (the receiver refused it or could not be reached)."""


async def post_webhook(
    url: str, body: bytes, *, secret: str | None, timeout: float = DELIVERY_TIMEOUT, headers: Mapping[str, str] | None = None
) -> None:
    """POST `body` (a `meshagent_core.webhooks.webhook_body`) to `url`, signed when `secret` is
    given; `DeliveryFailed` unless the answer is 2xx."""
    fields = {**(headers or {}), "Content-Type": "application/json"}
    if secret:
        fields[SIGNATURE_HEADER] = sign(body, secret)
    try:
        # trust_env=False: a proxy set for the developer's browsing must not sit between the
        # server and a service on the same machine.
        async with httpx.AsyncClient(timeout=timeout, trust_env=False, follow_redirects=False) as client:
            async with client.stream("POST", url, content=body, headers=fields) as response:
                status = response.status_code
    except httpx.TimeoutException:
        raise DeliveryFailed(f"webhook call {url} timed out after {timeout:g} s") from None
    except httpx.HTTPError as error:
        raise DeliveryFailed(f"webhook call {url} failed: {error or type(error).__name__}") from None
    if not 200 <= status < 300:
        raise DeliveryFailed(f"error status returned from webhook call {url}, http status code: {status}")


__all__ = ["DELIVERY_TIMEOUT", "DeliveryFailed", "post_webhook"]
