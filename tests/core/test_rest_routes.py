"""The REST route table (`meshagent_core.rest`): every route sends what the official 0.56 client
sends (its captured requests in the `rest_requests` vectors), and every request round-trips
through the client's encoding and the server's matching and decoding."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meshagent_core.rest.access import SEED_METHODS
from meshagent_core.rest.secrets import SEED_METHODS as SECRET_SEED_METHODS
from meshagent_core.rest.webhooks import SEED_METHODS as WEBHOOK_AND_SHARE_SEED_METHODS
from meshagent_core.rest.external_oauth import SEED_METHODS as EXTERNAL_OAUTH_SEED_METHODS
from meshagent_core.rest import ROUTES, RestError, Route, RouteError, RouteTable, encode_query, read_answer
from meshagent_core.testing import vectors
from meshagent_core.testing.strategies import tool_arguments

OFFICIAL = {request["method"]: request for request in vectors.load("rest_requests")["requests"]}
#: Routes that are one official method with an optional argument (`project_id=`), not in the capture.
NOT_CAPTURED = {"get_project_user_profile", "update_project_user_profile"} | SEED_METHODS | EXTERNAL_OAUTH_SEED_METHODS | WEBHOOK_AND_SHARE_SEED_METHODS | SECRET_SEED_METHODS
#: The capture called the settings methods with the document `room_roles`.
CAPTURED_PATH_VALUES = {"document": "room-roles", "resource_type": "room", "subject_type": "user"}
NAMES = sorted(ROUTES.routes)


def template_as_captured(route: Route) -> str:
    path = route.path
    for name, value in CAPTURED_PATH_VALUES.items():
        path = path.replace("{" + name + "}", value)
    return path


def test_only_the_project_forms_of_the_profile_methods_are_not_in_the_capture() -> None:
    assert {name for name in NAMES if name not in OFFICIAL} == NOT_CAPTURED


@pytest.mark.parametrize("name", [name for name in NAMES if name not in NOT_CAPTURED])
def test_the_route_sends_what_the_official_client_sends(name: str) -> None:
    route = ROUTES[name]
    official = OFFICIAL[name]
    assert (route.verb, template_as_captured(route), route.auth) == (official["verb"], official["url"], official["auth"])
    # the query the official method sends with its defaults is ours with our defaults (a
    # required query argument was given in the capture as its placeholder, `path="{path}"`)
    ours = {}
    if route.query is not None:
        required = {f.name: "{" + f.name + "}" for f in msgspec.structs.fields(route.query) if f.required}
        ours = encode_query(route.query(**required))
    assert ours == {k: str(v) for k, v in (official["params"] or {}).items()}
    body = official["body"]
    if route.body is None and route.raw_body_argument is None:
        assert body is None
    elif route.raw_body == "bytes":
        assert body == "<bytes>"  # how the capture writes a raw bytes body
    elif route.body is not None:
        # the official body reads into our body Struct and is written back key for key (a key
        # the official client sends as null stays null; one it leaves out stays out)
        assert set(body) <= set(route.body.__struct_fields__), set(body) - set(route.body.__struct_fields__)
        required = {f.name for f in msgspec.structs.fields(route.body) if f.required}
        assert required <= set(body)
        assert msgspec.json.decode(msgspec.json.encode(msgspec.convert(body, route.body))) == body


def test_every_official_method_of_the_covered_groups_has_a_route() -> None:
    missing = [name for name in OFFICIAL if name in _covered_official_methods() and name not in ROUTES.routes]
    assert not missing, missing


def _covered_official_methods() -> set[str]:
    """The official methods of the groups this table covers: config, projects and profiles, rooms,
    service accounts, API keys and participant tokens."""
    return {
        "get_config", "create_project", "list_projects", "get_project", "get_project_info", "get_project_by_key",
        "add_user_to_project", "remove_user_from_project", "update_project_user", "get_users_in_project_page",
        "get_users_in_project", "get_project_settings_document", "set_project_settings_document",
        "delete_project_settings_document", "get_user_profile", "update_user_profile", "whoami",
        "search_sysadmin_users", "get_sysadmin_user_profile", "update_sysadmin_user_profile",
        "create_room", "get_room", "get_room_status", "list_room_events", "update_room", "delete_room",
        "list_rooms_page", "list_rooms", "connect_room", "list_room_volumes", "create_room_volume",
        "delete_room_volume", "expand_room_volume",
        "list_service_accounts", "create_service_account", "get_service_account", "get_service_account_by_name",
        "update_service_account", "delete_service_account", "create_api_key", "list_api_keys", "delete_api_key",
        "revoke_api_keys_by_msid", "mint_participant_token", "validate_participant_token",
        "create_agent", "get_agent", "update_agent", "delete_agent", "list_agents_page", "list_agents", "connect_agent",
        "test_access", "get_effective_access", "list_access_bindings_page", "list_access_bindings",
        "get_resource_policy_page", "get_resource_policy", "grant_resource_policy", "revoke_resource_policy",
        "create_group", "get_group", "get_group_by_name", "update_group", "delete_group", "list_groups_page",
        "list_groups", "set_group_member", "delete_group_member", "list_group_members_page", "list_group_members",
        "upload", "download",
        "get_session", "get_session_participant_counts", "list_active_sessions", "list_recent_sessions",
        "list_recent_room_sessions", "list_active_agent_sessions", "list_recent_agent_sessions",
        "list_recent_single_agent_sessions", "list_session_events", "list_session_spans", "list_session_metrics",
        "terminate", "kill_session",
        "create_oauth_client", "update_oauth_client", "list_oauth_clients_page", "list_oauth_clients", "get_oauth_client",
        "delete_oauth_client", "create_mailbox", "update_mailbox", "get_mailbox", "list_mailboxes_page", "list_mailboxes",
        "list_room_mailboxes_page", "list_room_mailboxes", "delete_mailbox", "list_mailbox_deliveries",
        "get_mailbox_delivery", "list_mailbox_delivery_events",
        "get_pricing", "get_project_status", "get_balance", "get_recent_transactions", "set_auto_recharge",
        "get_checkout_url", "get_credits_checkout_url", "get_subscription", "get_usage", "get_current_user_llm_proxy_usage",
        "create_service", "update_service", "create_service_from_template", "update_service_from_template", "get_service",
        "get_service_by_name", "list_services", "delete_service", "create_room_service", "update_room_service",
        "create_room_service_from_template", "update_room_service_from_template", "get_room_service",
        "get_room_service_by_name", "list_room_services", "delete_room_service", "render_template", "discover_mcp_spec",
        "discover_mcp_service", "discover_mcp_service_template",
        "create_user_secret", "list_user_secrets", "search_user_secrets", "get_user_secret", "update_user_secret",
        "delete_user_secret", "list_user_secret_versions", "create_user_secret_version", "access_user_secret_version",
        "delete_user_secret_version", "list_user_secret_proxy_access", "grant_user_secret_proxy_access",
        "revoke_user_secret_proxy_access", "create_service_account_secret", "list_service_account_secrets",
        "search_service_account_secrets", "get_service_account_secret", "update_service_account_secret",
        "delete_service_account_secret", "list_service_account_secret_versions", "create_service_account_secret_version",
        "access_service_account_secret_version", "delete_service_account_secret_version",
        "list_service_account_pull_secrets", "add_service_account_pull_secret", "remove_service_account_pull_secret",
        "create_feed", "update_feed", "get_feed", "get_feed_by_name", "list_feeds_page", "list_feeds", "list_room_feeds_page", "list_room_feeds", "delete_feed", "publish_feed_message", "publish_feed_batch", "create_feed_subscription", "update_feed_subscription", "get_feed_subscription", "list_feed_subscriptions", "delete_feed_subscription",
        "create_scheduled_task", "update_scheduled_task", "delete_scheduled_task", "list_scheduled_tasks_page",
        "list_scheduled_tasks", "list_scheduled_task_runs_page", "list_scheduled_task_runs",
        "create_route", "update_route", "get_route", "list_routes_page", "list_routes", "list_room_routes_page",
        "list_room_routes", "delete_route", "create_custom_domain", "get_custom_domain", "list_custom_domains",
        "delete_custom_domain", "create_llm_logger", "update_llm_logger", "get_llm_logger", "list_llm_loggers",
        "delete_llm_logger", "connect_llm", "create_repository", "update_repository", "get_repository",
        "get_repository_by_name", "list_repositories_page", "list_repositories", "delete_repository",
        "create_repository_token",
    }  # fmt: skip


def test_every_covered_official_method_is_called_by_the_official_client_in_an_interop_test() -> None:
    """The interop tests (tests/interop, run with the official client against our server) name
    each official method of the covered groups as a string."""
    interop = Path(__file__).resolve().parents[1] / "interop"
    text = "\n".join(path.read_text(encoding="utf-8") for path in interop.rglob("*.py"))
    uncalled = sorted(name for name in _covered_official_methods() if f'"{name}"' not in text and f"'{name}'" not in text and f".{name}(" not in text)
    assert not uncalled, uncalled


# --- round trips ---------------------------------------------------------------------------------

PATH_VALUES = st.text(min_size=1, max_size=20)
#: what a header value can be: visible ASCII, not blank at its ends
HEADER_VALUES = st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=20)


def struct_values(struct: type[msgspec.Struct] | None) -> st.SearchStrategy[dict[str, Any]]:
    if struct is None:
        return st.just({})
    return tool_arguments(msgspec.json.schema(struct))


@st.composite
def requests_of(draw: st.DrawFn, route: Route) -> dict[str, Any]:
    arguments: dict[str, Any] = {name: draw(PATH_VALUES) for name in route.path_parameters}
    arguments.update({name: draw(HEADER_VALUES) for _, name in route.header_arguments})
    if route.query is not None:
        arguments.update(draw(struct_values(route.query)))
    if route.body is not None:
        body = draw(struct_values(route.body))
        for name in route.path_parameters:
            body.pop(name, None)  # given once, sent in both places
        arguments.update(body)
    if route.raw_body_argument is not None and route.raw_body == "bytes":
        arguments[route.raw_body_argument] = draw(st.binary(max_size=64))
    elif route.raw_body_argument is not None:
        arguments[route.raw_body_argument] = draw(st.dictionaries(st.text(max_size=5), st.integers(), max_size=3))
    return arguments


def expected_arguments(route: Route, arguments: dict[str, Any]) -> dict[str, Any]:
    expected = {name: arguments[name] for name in (*route.path_parameters, *(name for _, name in route.header_arguments))}
    for struct in (route.query, route.body):
        if struct is not None:
            value = msgspec.convert({k: v for k, v in arguments.items() if k in struct.__struct_fields__}, struct)
            expected.update({n: getattr(value, n) for n in struct.__struct_fields__ if getattr(value, n) is not msgspec.UNSET and n not in expected})
    if route.raw_body_argument is not None:
        expected[route.raw_body_argument] = arguments[route.raw_body_argument]
    return expected


@pytest.mark.parametrize("name", sorted({route.name for route in ROUTES.unique()}))
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_a_request_round_trips_from_client_to_server(name: str, data: st.DataObject) -> None:
    route = ROUTES[name]
    arguments = data.draw(requests_of(route))
    request = route.build(**arguments)
    matched = ROUTES.match(request.verb, request.path)
    assert matched is not None and matched[0] is route, (request, matched)
    parsed = route.parse(matched[1], request.query, request.body, {name.lower(): value for name, value in request.headers})
    assert parsed == expected_arguments(route, arguments)


RESPONSE_TYPES = sorted(
    {route.response for route in ROUTES.unique() if isinstance(route.response, type) and issubclass(route.response, msgspec.Struct)},
    key=lambda t: t.__name__,
)


@pytest.mark.parametrize("model", RESPONSE_TYPES, ids=[t.__name__ for t in RESPONSE_TYPES])
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_an_answer_round_trips_from_server_to_client(model: type, data: st.DataObject) -> None:
    value = msgspec.convert(data.draw(tool_arguments(msgspec.json.schema(model))), model)
    assert msgspec.json.decode(msgspec.json.encode(value), type=model) == value


# --- bad input -------------------------------------------------------------------------------------


def test_requests_that_do_not_fit_are_refused_naming_the_field() -> None:
    create = ROUTES["create_room"]
    with pytest.raises(RouteError, match="if_not_exists"):
        create.parse({"project_id": "p"}, {}, b'{"name": "r", "if_not_exists": "yes"}')
    with pytest.raises(RouteError, match="name"):
        create.parse({"project_id": "p"}, {}, b"{}")
    with pytest.raises(RouteError, match="not JSON"):
        create.parse({"project_id": "p"}, {}, b"{")
    deep = b'{"name": "r", "metadata": {"a": ' + b"[" * 10_000 + b"]" * 10_000 + b"}}"
    with pytest.raises(RouteError, match="not JSON"):
        create.parse({"project_id": "p"}, {}, deep)
    rooms = ROUTES["list_rooms_page"]
    with pytest.raises(RouteError, match="page_size"):
        rooms.parse({"project_id": "p"}, {"page_size": "many"}, None)
    with pytest.raises(RouteError, match="unknown query parameter 'colour'"):
        rooms.parse({"project_id": "p"}, {"colour": "blue"}, None)
    add = ROUTES["add_user_to_project"]
    with pytest.raises(RouteError, match="differs from the path"):
        add.parse({"project_id": "p"}, {}, b'{"project_id": "q", "user_id": "u", "roles": []}')
    with pytest.raises(RouteError, match="unexpected arguments"):
        create.build(project_id="p", name="r", colour="blue")
    with pytest.raises(RouteError, match="project_id must be a non-empty string"):
        create.build(project_id="", name="r")


def test_path_values_are_percent_encoded_and_decoded() -> None:
    request = ROUTES["get_room"].build(project_id="p/1", name="a b@c")
    assert request.path == "/accounts/projects/p%2F1/rooms/a%20b%40c"
    route, found = ROUTES.match("GET", request.path)
    assert route.name == "get_room" and found == {"project_id": "p/1", "name": "a b@c"}


def test_a_literal_segment_wins_over_a_parameter() -> None:
    route, found = ROUTES.match("GET", "/accounts/projects/p/service-accounts/by-name/worker")
    assert route.name == "get_service_account_by_name" and found["name"] == "worker"
    route, _ = ROUTES.match("GET", "/accounts/projects/by-key/k")
    assert route.name == "get_project_by_key"


def test_a_parameter_with_a_suffix_wins_over_a_bare_one() -> None:
    bare, suffixed = Route("get", "GET", "/v/{id}"), Route("access", "GET", "/v/{id}:access")
    for table in (RouteTable([bare, suffixed]), RouteTable([suffixed, bare])):
        assert table.match("GET", "/v/7:access") == (suffixed, {"id": "7"})
        assert table.match("GET", "/v/7") == (bare, {"id": "7"})
    assert suffixed.build(id="a:b").path == "/v/a%3Ab:access"  # the value's own ':' is escaped


def test_unknown_paths_and_verbs() -> None:
    assert ROUTES.match("GET", "/accounts/nothing") is None
    assert ROUTES.match("PATCH", "/accounts/projects/p/rooms") is None
    assert ROUTES.allowed_verbs("/accounts/projects/p/rooms") == ["GET", "POST"]


def test_a_table_refuses_two_routes_for_one_request() -> None:
    with pytest.raises(ValueError, match="same verb and path shape"):
        RouteTable([Route("a", "GET", "/x/{a}"), Route("b", "GET", "/x/{b}")])
    with pytest.raises(ValueError, match="two routes named"):
        RouteTable([Route("a", "GET", "/x"), Route("a", "GET", "/y")])


# --- raw bytes (project storage) ----------------------------------------------------------------


def test_raw_bytes_travel_as_they_are_with_the_official_errors() -> None:
    upload, download = ROUTES["upload"], ROUTES["download"]
    request = upload.build(project_id="p", path="a/b.bin", data=b"\x00\xff")
    assert (request.body, request.content_type, request.query) == (b"\x00\xff", "application/octet-stream", {"path": "a/b.bin"})
    assert download.build(project_id="p", path="a").content_type == "application/json"
    with pytest.raises(RouteError, match="data must be bytes"):
        upload.build(project_id="p", path="x", data="text")
    assert upload.parse({"project_id": "p"}, {"path": "x"}, None)["data"] == b""
    assert read_answer(upload, 200, b"{}") is None
    with pytest.raises(RestError, match=r"^Failed to upload file\. Status code: 404, body: gone$") as info:
        read_answer(upload, 404, b"gone")
    assert type(info.value) is RestError and info.value.http_status == 404
    with pytest.raises(RestError, match="^file was not found$"):
        read_answer(download, 404, b"{}")
    with pytest.raises(RestError, match=r"^Failed to download file\. Status code: 403, body: no$"):
        read_answer(download, 403, b"no")


@settings(max_examples=100, deadline=None)
@given(data=st.binary(max_size=4096))
def test_a_raw_answer_is_the_body_as_it_is(data: bytes) -> None:
    assert read_answer(ROUTES["download"], 200, data) == data
