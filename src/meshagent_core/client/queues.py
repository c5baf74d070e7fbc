"""`room.queues`: being built; its methods arrive with the issue that builds the client."""

from __future__ import annotations

from .room import SubClient


class QueuesClient(SubClient):
    pass
