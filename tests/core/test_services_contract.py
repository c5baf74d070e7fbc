"""The `services` toolkit contract and `room.services.list()`'s reading of answers: states and
specs survive encoding, and what the official client refuses (an invalid spec, a state of the
wrong shape, an answer that is not a JSON object) is code 1100."""

from __future__ import annotations

import copy

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meshagent_core import EmptyContent, JsonContent, RoomException, TextContent
from meshagent_core.client.services import ListServicesResult, services_from_list_answer
from meshagent_core.rest.service_spec import read_service_spec
from meshagent_core.toolkits import services as contract

SPEC = {
    "version": "v1",
    "kind": "Service",
    "id": "svc-1",
    "metadata": {"name": "worker", "description": "works"},
    "ports": [{"num": 8080}],
    "container": {"image": "registry.example/worker:1"},
}

STATE = {
    "service_id": "svc-1",
    "state": "running",
    "container_id": "c-1",
    "started_at": 1700000000.5,
    "restart_count": 2,
    "last_exit_code": 137,
    "last_exit_at": 1699999999.0,
    "status": {"ports": [{"num": 8080, "liveness": "/health", "liveness_status": "ready", "last_checked_at": 1700000001.0}]},
    "events": [{"type": "Normal", "reason": "Started", "message": "started", "count": 3, "first_timestamp": 1.0, "last_timestamp": 2.0}],
}


def answer(services: list[str] | None = None, states: list[dict] | None = None, **extra: object) -> JsonContent:
    body: dict = dict(extra)
    if services is not None:
        body["services_json"] = services
    if states is not None:
        body["service_states"] = states
    return JsonContent(json=body)


def refused(response: object) -> int | None:
    with pytest.raises(RoomException) as error:
        services_from_list_answer(response)
    assert str(error.value) == "unexpected return type from services.list"
    return error.value.code


def test_a_full_answer_is_read_into_specs_and_states_by_id() -> None:
    result = services_from_list_answer(answer([msgspec.json.encode(SPEC).decode()], [STATE], unknown_top_level="ignored"))
    assert isinstance(result, ListServicesResult)
    assert result.services == [read_service_spec(SPEC)]
    state = result.service_states["svc-1"]
    assert (state.state, state.container_id, state.restart_count, state.last_exit_code) == ("running", "c-1", 2, 137)
    assert state.status.ports[0] == contract.ServicePortRuntimeState(num=8080, liveness="/health", liveness_status="ready", last_checked_at=1700000001.0)
    assert state.events[0].count == 3


def test_defaults_of_an_answer_and_of_a_state() -> None:
    assert services_from_list_answer(JsonContent(json={})) == ListServicesResult(services=[], service_states={})
    minimal = services_from_list_answer(answer([], [{"service_id": "a", "state": "stopped", "extra": 1}])).service_states["a"]
    assert minimal == contract.ServiceRuntimeState(service_id="a", state="stopped")
    assert (minimal.restart_count, minimal.status.ports, minimal.events) == (0, [], [])
    port = msgspec.convert({"num": "*"}, contract.ServicePortRuntimeState)
    assert (port.num, port.liveness_status) == ("*", "not_configured")
    event = msgspec.convert({"type": "t", "reason": "r", "message": "m", "first_timestamp": 1, "last_timestamp": 2}, contract.ServiceRuntimeEvent)
    assert event.count == 1


@pytest.mark.parametrize(
    "response",
    [
        EmptyContent(),
        TextContent(text="{}"),
        JsonContent(json=[]),
        answer(["not json"]),
        answer(["[1, 2]"]),
        answer([msgspec.json.encode({**SPEC, "surprise": 1}).decode()]),  # ServiceSpec forbids unknown keys
        answer([msgspec.json.encode({**SPEC, "kind": "Other"}).decode()]),
        answer([msgspec.json.encode({**SPEC, "ports": [{"num": 8078}]}).decode()]),  # a reserved port
        answer([{"version": "v1"}]),  # an object, not a JSON string
        answer(states=[{"state": "running"}]),  # no service_id
        answer(states=[{**STATE, "status": {"ports": [{"num": 0}]}}]),
        answer(states=[{**STATE, "status": {"ports": [{"num": "all"}]}}]),
        answer(states=[{**STATE, "status": {"ports": [{"num": 1, "liveness_status": "alive"}]}}]),
        answer(states=[{**STATE, "events": [{"type": "t"}]}]),
        answer(states=[{**STATE, "restart_count": None}]),
        answer(states={"svc-1": STATE}),
        JsonContent(json={"services_json": None}),
        answer(["[" * 10_000 + "]" * 10_000]),  # nested past the depth limit: refused, no RecursionError
    ],
)
def test_what_the_official_client_refuses_is_code_1100(response: object) -> None:
    assert refused(response) == 1100


def test_lenient_values_are_read_as_pydantic_reads_them() -> None:
    state = {**STATE, "restart_count": "4", "started_at": 3, "status": {"ports": [{"num": "8080"}]}}
    read = services_from_list_answer(answer([], [state])).service_states["svc-1"]
    assert (read.restart_count, read.started_at, read.status.ports[0].num) == (4, 3.0, 8080)


def test_the_restart_input_and_the_list_output_have_the_official_keys() -> None:
    assert msgspec.to_builtins(contract.RestartInput(service_id="s")) == {"service_id": "s"}
    assert msgspec.to_builtins(contract.ListInput()) == {}
    output = msgspec.to_builtins(contract.list_output([read_service_spec(SPEC)], [msgspec.convert(STATE, contract.ServiceRuntimeState)]))
    assert set(output) == {"services_json", "service_states"}
    spec = msgspec.json.decode(output["services_json"][0])
    assert spec["metadata"]["name"] == "worker" and "agents" in spec and spec["agents"] is None  # every key, nulls kept
    assert set(output["service_states"][0]) == {
        "service_id", "state", "container_id", "restart_scheduled_at", "started_at", "restart_count", "last_exit_code",
        "last_exit_at", "last_start_error", "last_start_error_at", "status", "events",
    }  # fmt: skip


epoch = st.floats(min_value=0, max_value=4e9, allow_nan=False)
optional_epoch = st.none() | epoch
names = st.text(min_size=1, max_size=12)
ports = st.builds(
    contract.ServicePortRuntimeState,
    num=st.just("*") | st.integers(min_value=1, max_value=65535),
    liveness=st.none() | names,
    liveness_status=st.sampled_from(["not_configured", "not_ready", "ready"]),
    last_checked_at=optional_epoch,
    last_error=st.none() | names,
)
events = st.builds(
    contract.ServiceRuntimeEvent,
    type=names, reason=names, message=st.text(max_size=30), count=st.integers(min_value=1, max_value=10**6),
    first_timestamp=epoch, last_timestamp=epoch,
)  # fmt: skip
states = st.builds(
    contract.ServiceRuntimeState,
    service_id=names,
    state=st.sampled_from(["running", "starting", "restarting", "stopped", "failed"]),
    container_id=st.none() | names,
    restart_scheduled_at=optional_epoch,
    started_at=optional_epoch,
    restart_count=st.integers(min_value=0, max_value=1000),
    last_exit_code=st.none() | st.integers(min_value=-255, max_value=255),
    last_exit_at=optional_epoch,
    last_start_error=st.none() | st.text(max_size=30),
    last_start_error_at=optional_epoch,
    status=st.builds(contract.ServiceRuntimeStatus, ports=st.lists(ports, max_size=3)),
    events=st.lists(events, max_size=3),
)
specs = st.builds(
    lambda name, image, port: read_service_spec(
        {"version": "v1", "kind": "Service", "metadata": {"name": name}, "container": {"image": image}, "ports": [{"num": port}]}
    ),
    names, names, st.integers(min_value=1, max_value=65535).filter(lambda port: port != 8078),
)  # fmt: skip


@settings(deadline=None, max_examples=60)
@given(st.lists(specs, max_size=3), st.lists(states, max_size=4, unique_by=lambda state: state.service_id))
def test_a_list_answer_survives_the_wire(services: list, service_states: list) -> None:
    """Encoded by the server's contract, sent as JSON, read by the client: the same specs and states."""
    wire = msgspec.json.decode(msgspec.json.encode(contract.list_output(services, service_states)))
    result = services_from_list_answer(JsonContent(json=copy.deepcopy(wire)))
    assert result.services == services
    assert result.service_states == {state.service_id: state for state in service_states}
