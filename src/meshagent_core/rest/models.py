"""What the REST routes answer: the models the official 0.56 client reads, as msgspec Structs.

Optional keys are `None` by default and left out when unset (`omit_defaults`), so an answer
carries what the server knows and nothing it made up. Unknown keys are accepted on decode (a
newer server may add some), as the official models do.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

JsonObject = dict[str, Any]


class Model(msgspec.Struct, kw_only=True, omit_defaults=True):
    """Base of the REST models."""


class DeploymentDomains(Model):
    studio: str | None = None
    accounts: str | None = None
    powerboards: str | None = None
    api: str | None = None
    mail: str | None = None
    pages: str | None = None
    registry: str | None = None
    files: str | None = None


class DeploymentConfig(Model):
    """`get_config()`: the official `MeshagentDeploymentConfig`."""

    domains: DeploymentDomains = msgspec.field(default_factory=DeploymentDomains)
    reserved_route_domains: list[str] = msgspec.field(default_factory=list)
    version: str | None = None


class ProjectInfo(Model):
    id: str
    name: str
    owner_user_id: str | None = None
    project_key: str | None = None
    created_at: str | None = None


class ProjectsPage(Model):
    projects: list[ProjectInfo]


class User(Model):
    id: str
    email: str
    first_name: str | None = None
    last_name: str | None = None
    metadata: JsonObject = msgspec.field(default_factory=dict)
    annotations: dict[str, str] = msgspec.field(default_factory=dict)


class ProjectUser(Model):
    user: User
    direct_roles: list[str] = msgspec.field(default_factory=list)


class ProjectUsersPage(Model):
    users: list[ProjectUser]
    continuation_token: str | None = None


class UsersPage(Model):
    users: list[User]
    continuation_token: str | None = None


class ServiceAccount(Model):
    id: str
    project_id: str
    key: str
    name: str
    metadata: JsonObject = msgspec.field(default_factory=dict)
    annotations: dict[str, str] = msgspec.field(default_factory=dict)
    email: str | None = None
    display_name: str | None = None
    description: str = ""
    created_at: str | None = None
    updated_at: str | None = None


class WhoAmI(Model):
    id: str
    email: str
    type: Literal["user", "service_account"]
    service_account: ServiceAccount | None = None
    user: User | None = None


class Room(Model):
    id: str
    name: str
    metadata: JsonObject  # required by the official client, even when empty
    annotations: dict[str, str] = msgspec.field(default_factory=dict)
    enabled: bool = True


class RoomsPage(Model):
    rooms: list[Room]
    total: int = 0
    continuation_token: str | None = None


class RoomStatus(Model):
    """`get_room_status`: `Allocated` while the room runs a session."""

    status: Literal["Allocated", "Unallocated"]
    allocated_at: str | None = None
    running_for_seconds: int | None = None


class RoomEvent(Model):
    id: str
    room_name: str
    type: str
    message: str
    created_at: str
    session_id: str | None = None
    severity: str | None = None


class RoomEvents(Model):
    events: list[RoomEvent]


class RoomConnectionInfo(Model):
    """`connect_room`: a participant JWT for the caller and where to use it."""

    jwt: str
    room_name: str
    project_id: str
    room_url: str


StorageClass = Literal["standard", "juice", "zerofs"]


class StorageVolume(Model):
    id: str
    room_id: str
    name: str
    subpath: str
    storage_class: StorageClass
    phase: Literal["pending", "bound", "deleting", "failed"]
    created_at: str
    updated_at: str
    description: str = ""
    metadata: JsonObject = msgspec.field(default_factory=dict)
    annotations: dict[str, str] = msgspec.field(default_factory=dict)
    max_size_mb: int | None = None
    provisioned: bool = False
    reconcile_error: str | None = None


class StorageVolumes(Model):
    volumes: list[StorageVolume] = msgspec.field(default_factory=list)


class ServiceAccountsPage(Model):
    service_accounts: list[ServiceAccount]
    continuation_token: str | None = None


class ApiKeyInfo(Model):
    """An API key as the REST routes describe it (`value`, the `ma-…` string, only when created)."""

    id: str
    name: str
    description: str = ""
    project_id: str | None = None
    service_account_id: str | None = None
    created_at: str | None = None
    last_used_at: str | None = None
    value: str | None = None


class ApiKeyList(Model):
    keys: list[ApiKeyInfo]


class RevokedKeys(Model):
    revoked: list[str]


class MintedToken(Model):
    token: str


__all__ = [
    "ApiKeyInfo",
    "ApiKeyList",
    "DeploymentConfig",
    "DeploymentDomains",
    "JsonObject",
    "MintedToken",
    "Model",
    "ProjectInfo",
    "ProjectsPage",
    "ProjectUser",
    "ProjectUsersPage",
    "RevokedKeys",
    "Room",
    "RoomConnectionInfo",
    "RoomEvent",
    "RoomEvents",
    "RoomStatus",
    "RoomsPage",
    "ServiceAccount",
    "ServiceAccountsPage",
    "StorageClass",
    "StorageVolume",
    "StorageVolumes",
    "User",
    "UsersPage",
    "WhoAmI",
]
