"""Routes of rooms, their volumes and `connect_room`."""

from __future__ import annotations

from typing import Any

import msgspec
from msgspec import UNSET, UnsetType

from .accounts import PROJECT
from .models import JsonObject, Room, RoomConnectionInfo, RoomEvents, RoomsPage, RoomStatus, StorageClass, StorageVolume, StorageVolumes
from .routes import Route

ROOMS = PROJECT + "/rooms"
ROOM_NOT_FOUND = "room not found"


class CreateRoomBody(msgspec.Struct, kw_only=True):
    """Every key is sent, null when not given (as the official client does)."""

    name: str
    if_not_exists: bool = False
    metadata: JsonObject | None = None
    annotations: dict[str, str] | None = None
    #: user id -> the full `ApiScope` JSON that user gets in the room
    permissions: dict[str, JsonObject] | None = None


class UpdateRoomBody(msgspec.Struct, kw_only=True):
    name: str
    metadata: JsonObject | UnsetType = UNSET
    annotations: dict[str, str] | UnsetType = UNSET
    enabled: bool | UnsetType = UNSET


class RoomsQuery(msgspec.Struct, kw_only=True):
    page_size: int = 100
    continuation_token: str | None = None
    filter: str | None = None
    view: str | None = None


class LimitQuery(msgspec.Struct, kw_only=True):
    limit: int = 100


class ConnectRoomBody(msgspec.Struct, kw_only=True):
    #: impersonation: connect as the user with this e-mail address
    email: str | UnsetType = UNSET


class CreateVolumeBody(msgspec.Struct, kw_only=True):
    name: str
    description: str = ""
    metadata: JsonObject | None = None
    storage_class: StorageClass = "standard"
    max_size_mb: int | None = None
    annotations: dict[str, str] | None = None


class ExpandVolumeBody(msgspec.Struct, kw_only=True):
    max_size_mb: int


ROUTES = [
    Route("create_room", "POST", ROOMS, Room, body=CreateRoomBody),
    Route("get_room", "GET", ROOMS + "/{name}", Room, not_found=ROOM_NOT_FOUND, payload_noun="room"),
    Route("get_room_status", "GET", ROOMS + "/{name}/status", RoomStatus, not_found=ROOM_NOT_FOUND),
    Route("list_room_events", "GET", ROOMS + "/{name}/events", RoomEvents, query=LimitQuery, not_found=ROOM_NOT_FOUND),
    Route("update_room", "PUT", ROOMS + "/{room_id}", Any, body=UpdateRoomBody),
    Route("delete_room", "DELETE", ROOMS + "/{room_id}", Any),
    Route("list_rooms_page", "GET", ROOMS, RoomsPage, query=RoomsQuery, aliases=("list_rooms",)),
    Route("connect_room", "POST", ROOMS + "/{room}/connect", RoomConnectionInfo, body=ConnectRoomBody),
    Route("list_room_volumes", "GET", ROOMS + "/{room}/volumes", StorageVolumes),
    Route("create_room_volume", "POST", ROOMS + "/{room}/volumes", StorageVolume, body=CreateVolumeBody),
    Route("delete_room_volume", "DELETE", ROOMS + "/{room}/volumes/{volume_id}", StorageVolume),
    Route("expand_room_volume", "PATCH", ROOMS + "/{room}/volumes/{volume_id}", StorageVolume, body=ExpandVolumeBody),
]
