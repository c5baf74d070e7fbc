"""The `mounts` toolkit: the volumes mounted in the room (protocol/room-apis.md §9).

`list` answers the room's volumes as the control plane records them: the room volumes made
through REST (`create_room_volume`, protocol/rest.md §4.3), each a directory under the room's
data directory. Decisions where the official client leaves the server open:

* **Grant: `containers`** (with `use_containers`, its default). The official client shows no
  grant for `mounts`; volumes are what a room's containers mount, so the grant that lets a
  participant use the room's containers is the one that lets it see their volumes. No
  `containers` grant ⇒ 1001.
* **Consumers**: the local server runs no containers (the `containers` toolkit is not served),
  so the only consumer of a volume is the room itself: `[{"kind": "room"}]`.
* **`required`: true.** A room volume exists as soon as it is created (its directory is made
  then) and stays mounted until it is deleted; the room never runs without it.
* A room not made through REST, or one in a server without a control plane (a `Room` made
  directly, in tests), has no volumes: `{"volumes": []}`.

Only the fields of the official `MountedVolume` are sent (it forbids others): the REST-only
ones (`room_id`, `subpath`, `phase`, timestamps) are left out.
"""

from __future__ import annotations

import msgspec

from meshagent_core import EmptyContent, JsonContent
from meshagent_core.rest.models import StorageVolume
from meshagent_core.toolkits.mounts import ListInput, ListOutput, MountedVolume, MountedVolumeConsumer

from ..control.common import NotFound
from ..toolkit import Toolkit, ToolCall, permission_denied

toolkit = Toolkit("mounts")


def _check_grant(call: ToolCall) -> None:
    grant = call.scope.containers if call.scope is not None else None
    if grant is None or not grant.use_containers:
        raise permission_denied("the token does not grant the containers API, which mounts.list needs")


def mounted_volume(volume: StorageVolume) -> MountedVolume:
    """A room volume as `mounts.list` shows it."""
    return MountedVolume(
        id=volume.id,
        name=volume.name,
        required=True,
        description=volume.description,
        metadata=dict(volume.metadata),
        annotations=dict(volume.annotations),
        storage_class=volume.storage_class,
        max_size_mb=volume.max_size_mb,
        consumers=[MountedVolumeConsumer(kind="room")],
    )


@toolkit.tool("list")
async def list_mounts(call: ToolCall) -> JsonContent:
    _check_grant(call)
    if not isinstance(call.arguments, EmptyContent):  # the official client sends `{}`
        call.json_arguments(ListInput)
    control = call.room.control
    volumes: list[StorageVolume] = []
    if control is not None:
        try:
            volumes = await control.sessions.volumes.list(call.room.project_id, call.room.name)
        except NotFound:  # a room (or project) the control plane has no record of
            volumes = []
    output = ListOutput(volumes=[mounted_volume(volume) for volume in volumes if volume.phase == "bound"])
    return JsonContent(json=msgspec.to_builtins(output))
