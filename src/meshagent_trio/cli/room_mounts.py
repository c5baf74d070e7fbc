"""`meshagent-trio room mounts`: the storage volumes mounted in a room."""

from __future__ import annotations

from .common import OutputFormat, OutputOption, ProjectIdOption, RoomOption, example, group, in_room
from .output import print_data

app = group("List storage mounts currently ready in a room.")


@app.command("list", epilog=example("meshagent-trio room mounts list --room lobby", "meshagent-trio room mounts list --room lobby -o json"))
def list_mounts(project_id: ProjectIdOption = None, room: RoomOption = None, output: OutputOption = OutputFormat.table) -> None:
    """List the volumes mounted in the room."""

    print_data(in_room(room, lambda client: client.mounts.list()), output, empty="no volumes are mounted in this room")
