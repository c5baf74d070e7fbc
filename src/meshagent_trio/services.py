"""Webhooks and services on Trio: `WebhookServer` and `ServiceHost` of `meshagent_core.client`,
bound to this package's `RoomClient`."""

from __future__ import annotations

from meshagent_core.client import service_host as _service_host
from meshagent_core.client import webhook_server as _webhook_server

from .client import RoomClient


class WebhookServer(_webhook_server.WebhookServer):
    __doc__ = _webhook_server.WebhookServer.__doc__
    room_client_class = RoomClient


class ServiceHost(_service_host.ServiceHost):
    __doc__ = _service_host.ServiceHost.__doc__
    room_client_class = RoomClient


__all__ = ["ServiceHost", "WebhookServer"]
