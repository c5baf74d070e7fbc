"""`room.mounts` against the real local server, on Trio and on AnyIO (asyncio and Trio): the room's
volumes as REST made them, the grant, and the strict reading of answers (code 1100)."""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meshagent_core import EmptyContent, JsonContent, RoomException, TextContent
from meshagent_core.client.mounts import MountedVolume, MountedVolumeConsumer, volumes_from_list_answer
from meshagent_core.client.rest import Meshagent
from meshagent_core.tokens import ApiScope
from meshagent_core.tokens.grants import ContainersGrant, MessagingGrant
from roomtest import mint

pytestmark = pytest.mark.anyio


def _room(name: str, client_variant: tuple[str, str]) -> str:
    return f"mounts-{name}-{'-'.join(client_variant)}"


async def test_list_reports_the_volumes_made_through_rest(client_module, client_variant, local_server) -> None:
    room_name = _room("volumes", client_variant)
    project = local_server.credentials.project_id
    url, token = local_server.room_url(room_name), mint(local_server.credentials, room_name)
    async with Meshagent(base_url=local_server.api_url, token=local_server.api_key) as api:
        async with client_module.connect(url, token) as room:
            assert await room.mounts.list() == []  # a room REST does not know has no volumes
            await api.create_room(project_id=project, name=room_name)
            assert await room.mounts.list() == []

            data = await api.create_room_volume(
                project_id=project, room=room_name, name="data", description="the data", metadata={"k": [1, {"x": None}]},
                annotations={"team": "a"}, max_size_mb=10,
            )  # fmt: skip
            cache = await api.create_room_volume(project_id=project, room=room_name, name="cache")
            room_only = [MountedVolumeConsumer(kind="room")]
            assert await room.mounts.list() == [
                MountedVolume(id=cache.id, name="cache", required=True, consumers=room_only),
                MountedVolume(
                    id=data.id, name="data", required=True, description="the data", metadata={"k": [1, {"x": None}]},
                    annotations={"team": "a"}, storage_class="standard", max_size_mb=10, consumers=room_only,
                ),
            ]  # fmt: skip

            await api.expand_room_volume(project_id=project, room=room_name, volume_id=data.id, max_size_mb=20)
            await api.delete_room_volume(project_id=project, room=room_name, volume_id=cache.id)
            assert [(v.name, v.max_size_mb) for v in await room.mounts.list()] == [("data", 20)]


async def test_list_needs_the_containers_grant(client_module, client_variant, local_server) -> None:
    room_name = _room("grant", client_variant)
    url = local_server.room_url(room_name)
    refusals = {
        "no-containers": ApiScope(messaging=MessagingGrant()),
        "containers-unused": ApiScope(containers=ContainersGrant(use_containers=False)),
    }
    for name, scope in refusals.items():
        async with client_module.connect(url, mint(local_server.credentials, room_name, name=name, scope=scope)) as room:
            with pytest.raises(RoomException) as refused:
                await room.mounts.list()
            assert refused.value.code == 1001, name
    allowed = ApiScope(containers=ContainersGrant())
    async with client_module.connect(url, mint(local_server.credentials, room_name, name="allowed", scope=allowed)) as room:
        assert await room.mounts.list() == []


# --- reading answers (no server) ----------------------------------------------------------------

VOLUME = {
    "id": "v1", "name": "data", "required": False, "description": "", "metadata": {}, "annotations": {},
    "storage_class": "zerofs", "max_size_mb": None, "consumers": [{"kind": "container", "container_id": "c1"}, {"kind": "room"}],
}  # fmt: skip


def refused(response: object) -> int | None:
    with pytest.raises(RoomException) as error:
        volumes_from_list_answer(response)
    assert str(error.value) == "unexpected return type from mounts.list"
    return error.value.code


def test_an_answer_is_read_with_defaults_and_lenient_values() -> None:
    assert volumes_from_list_answer(JsonContent(json={})) == []
    assert volumes_from_list_answer(JsonContent(json={"volumes": [], "next": "ignored"})) == []
    minimal = volumes_from_list_answer(JsonContent(json={"volumes": [{"id": "a", "name": "b", "required": "true", "max_size_mb": "5"}]}))
    assert minimal == [MountedVolume(id="a", name="b", required=True, max_size_mb=5)]
    assert minimal[0].storage_class == "standard" and minimal[0].consumers == []
    full = volumes_from_list_answer(JsonContent(json={"volumes": [VOLUME]}))[0]
    assert full.consumers == [MountedVolumeConsumer(kind="container", container_id="c1"), MountedVolumeConsumer(kind="room")]


@pytest.mark.parametrize(
    "response",
    [
        EmptyContent(),
        TextContent(text="{}"),
        JsonContent(json=[VOLUME]),
        JsonContent(json={"volumes": None}),
        JsonContent(json={"volumes": [{**VOLUME, "mount_path": "/data"}]}),  # volumes are strict
        JsonContent(json={"volumes": [{**VOLUME, "consumers": [{"kind": "room", "container_id": "c1"}]}]}),
        JsonContent(json={"volumes": [{**VOLUME, "consumers": [{"kind": "container"}]}]}),
        JsonContent(json={"volumes": [{**VOLUME, "consumers": [{"kind": "room", "extra": 1}]}]}),
        JsonContent(json={"volumes": [{**VOLUME, "consumers": [{"kind": "host"}]}]}),
        JsonContent(json={"volumes": [{**VOLUME, "storage_class": "fast"}]}),
        JsonContent(json={"volumes": [{**VOLUME, "annotations": {"a": 1}}]}),
        JsonContent(json={"volumes": [{**VOLUME, "description": None}]}),
        JsonContent(json={"volumes": [{key: value for key, value in VOLUME.items() if key != "required"}]}),
    ],
)
def test_what_the_official_client_refuses_is_code_1100(response: object) -> None:
    assert refused(response) == 1100


consumers = st.one_of(
    st.just(MountedVolumeConsumer(kind="room")),
    st.builds(lambda container: MountedVolumeConsumer(kind="container", container_id=container), st.text(max_size=8)),
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)
volumes = st.builds(
    MountedVolume,
    id=st.text(max_size=8), name=st.text(max_size=8), required=st.booleans(), description=st.text(max_size=10),
    metadata=st.dictionaries(st.text(max_size=6), json_values, max_size=3),
    annotations=st.dictionaries(st.text(max_size=6), st.text(max_size=6), max_size=3),
    storage_class=st.sampled_from(["standard", "juice", "zerofs"]),
    max_size_mb=st.none() | st.integers(min_value=1, max_value=10**6),
    consumers=st.lists(consumers, max_size=3),
)  # fmt: skip


@settings(deadline=None, max_examples=80)
@given(st.lists(volumes, max_size=4))
def test_a_list_answer_survives_the_wire(listed: list[MountedVolume]) -> None:
    """What the server's contract writes (room consumers without `container_id`), the client reads back."""
    wire = msgspec.json.decode(msgspec.json.encode({"volumes": listed}))
    for volume in wire["volumes"]:
        for consumer in volume["consumers"]:
            assert (consumer["kind"] == "room") == ("container_id" not in consumer)
    assert volumes_from_list_answer(JsonContent(json=wire)) == listed
