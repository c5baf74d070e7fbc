"""Rooms and the participants in them; the per-connection loop is `rooms.connection`."""

from .participant import HostEvent, Participant, RoutedCall
from .room import HostedToolkit, Room

__all__ = ["HostEvent", "HostedToolkit", "Participant", "Room", "RoutedCall"]
