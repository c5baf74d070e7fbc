"""Publishing a document schema to a room: `deploy_schema` writes it where the room looks for
the schema of a new document by its file extension (`.schemas/<name>.json`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec

from ..errors import RoomException
from ..sync import MeshSchema

if TYPE_CHECKING:
    from .room import RoomClient

SCHEMAS_FOLDER = ".schemas"


def validate_schema_name(name: str) -> None:
    """A schema is named by the file extension it serves, so the name cannot hold a `.`."""
    if "." in name:
        raise RoomException("schema name cannot contain '.'")


async def deploy_schema(*, room: RoomClient, schema: MeshSchema, name: str, overwrite: bool = True) -> None:
    """Upload `schema` as `.schemas/<name>.json`: documents `*.<name>` opened without a schema
    then take this one (as `meshagent.api.deploy_schema` does)."""
    validate_schema_name(name)
    data = msgspec.json.encode(schema.to_json())
    await room.storage.upload(path=f"{SCHEMAS_FOLDER}/{name}.json", data=data, overwrite=overwrite)
