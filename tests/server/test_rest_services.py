"""Services, room services and service templates on the local server (protocol/rest.md §8), over
real sockets with our `Meshagent` client: CRUD of both kinds, from specs and from templates, the
refusals (a spec with an unknown key or a wrong type names the field; a template names its line
or the required variables without a value; 404 for unknown services, 409 for taken names, 403
for another project's key), what is kept in `control.db`, and MCP discovery's 501."""

from __future__ import annotations

import sqlite3
from typing import Any

import httpx
import msgspec
import pytest
from hypothesis import HealthCheck, assume, given, settings

from meshagent_core.client.rest import Meshagent
from meshagent_core.errors import RoomException
from meshagent_core.rest import ConflictError, NotFoundError, PermissionDeniedError, ServerError, ValidationErrorResponse
from meshagent_core.rest.service_spec import ServiceSpec, ServiceTemplateSpec, read_service_spec, service_json
from meshagent_core.rest.service_template import TEMPLATE_VALUES_ANNOTATION, TEMPLATE_YAML_ANNOTATION, TemplateError, render_service_template
from meshagent_core.testing.strategies import tool_arguments
from meshagent_trio.server import Credentials, Server


def client(server: Server, token: str) -> Meshagent:
    return Meshagent(base_url=f"http://127.0.0.1:{server.port}", token=token)


def spec(name: str, **fields: Any) -> dict[str, Any]:
    return {"version": "v1", "kind": "Service", "metadata": {"name": name}, **fields}


CONTAINER = {
    "image": "registry.example/worker:1",
    "run_as": {"email": " Bot@Example.COM "},
    "environment": [{"name": "KEY", "secret": {"id": "s1"}}, {"name": "TOKEN", "token": {"identity": "bot", "api": {"messaging": {}}}}],
    "storage": {"room": [{"path": "/data"}], "volumes": [{"name": "cache", "path": "/cache"}]},
}
PORTS = [{"num": "8080", "endpoints": [{"path": "/agent", "meshagent": {"identity": "bot"}}, {"path": "/mcp", "mcp": {"label": "tools"}}]}]

TEMPLATE = """version: v1
kind: ServiceTemplate
metadata:
  name: {{ name }}
  description: !template "runs {{ model | default('gpt') }}"
variables:
  - name: name
  - name: model
    optional: true
    enum: [gpt, claude]
container:
  image: registry.example/agent:{{ tag | default('latest') }}
  environment:
    - name: MODEL
      value: "{{ model }}"
ports:
  - num: 8080
    endpoints:
      - path: /agent
        meshagent:
          identity: {{ name }}
"""


async def test_services_are_created_read_updated_listed_and_deleted(server: Server, credentials: Credentials) -> None:
    own = credentials.project_id
    async with client(server, credentials.api_key) as api:
        worker = await api.create_service(project_id=own, service=spec("worker", container=CONTAINER, ports=PORTS))
        assert isinstance(worker, ServiceSpec) and worker.id and worker.enabled
        assert worker.container.run_as.email == "bot@example.com" and worker.container.run_as.scopes == ["secrets:proxy"]
        assert worker.ports[0].num == 8080 and worker.container.storage.volumes[0].name == "cache"
        assert await api.get_service(project_id=own, service_id=worker.id) == worker
        assert await api.get_service_by_name(project_id=own, service_name="worker") == worker
        with pytest.raises(ConflictError, match="service 'worker' already exists"):
            await api.create_service(project_id=own, service=spec("worker"))

        renamed = msgspec.structs.replace(worker, metadata=msgspec.structs.replace(worker.metadata, name="builder / 2"), enabled=False)
        updated = await api.update_service(project_id=own, service_id=worker.id, service=renamed)
        assert updated == renamed
        assert await api.get_service_by_name(project_id=own, service_name="builder / 2") == renamed
        with pytest.raises(NotFoundError, match="service 'worker' does not exist"):
            await api.get_service_by_name(project_id=own, service_name="worker")

        other = await api.create_service(project_id=own, service=spec("alpha", external={"url": "https://mcp.example/x"}))
        assert [s.metadata.name for s in await api.list_services(project_id=own)] == ["alpha", "builder / 2"]
        with pytest.raises(ConflictError, match="'alpha' already exists"):
            await api.update_service(project_id=own, service_id=worker.id, service=msgspec.structs.replace(other, id=worker.id))
        with pytest.raises(ValidationErrorResponse, match="differs from the path"):
            await api.update_service(project_id=own, service_id=worker.id, service=other)

        await api.delete_service(project_id=own, service_id=worker.id)
        assert [s.id for s in await api.list_services(project_id=own)] == [other.id]
        for call in (api.get_service, api.delete_service):
            with pytest.raises(NotFoundError, match=f"service id '{worker.id}' does not exist"):
                await call(project_id=own, service_id=worker.id)
        with pytest.raises(NotFoundError, match="does not exist"):
            await api.update_service(project_id=own, service_id="ghost", service=msgspec.structs.replace(other, id="ghost"))
        with pytest.raises(NotFoundError, match="project 'elsewhere' does not exist"):
            await api.list_services(project_id="elsewhere")
        with pytest.raises(RoomException, match="Service id must be set"):
            await api.update_service(project_id=own, service_id=other.id, service=spec("x"))


async def test_room_services_are_kept_per_room(server: Server, credentials: Credentials) -> None:
    own = credentials.project_id
    async with client(server, credentials.api_key) as api:
        room = await api.create_room(project_id=own, name="lab")
        service_id = await api.create_room_service(project_id=own, room_name="lab", service=spec("helper", ports=PORTS))
        assert isinstance(service_id, str)
        helper = await api.get_room_service(project_id=own, room_name="lab", service_id=service_id)
        assert (helper.id, helper.metadata.name) == (service_id, "helper")
        assert await api.get_room_service_by_name(project_id=own, room_name="lab", service_name="helper") == helper
        # the same name in another room, and among the project's services, is another service
        elsewhere = await api.create_room_service(project_id=own, room_name="studio", service=spec("helper"))
        await api.create_service(project_id=own, service=spec("helper"))
        with pytest.raises(ConflictError, match="service 'helper' of room 'lab' already exists"):
            await api.create_room_service(project_id=own, room_name="lab", service=spec("helper"))
        with pytest.raises(NotFoundError, match="does not exist in room 'lab'"):
            await api.get_room_service(project_id=own, room_name="lab", service_id=elsewhere)
        with pytest.raises(NotFoundError):
            await api.get_service(project_id=own, service_id=service_id)

        assert await api.update_room_service(project_id=own, room_name="lab", service_id=service_id, service=msgspec.structs.replace(helper, enabled=False)) is None
        assert not (await api.get_room_service(project_id=own, room_name="lab", service_id=service_id)).enabled
        assert [s.id for s in await api.list_room_services(project_id=own, room_name="lab")] == [service_id]
        with pytest.raises(ValidationErrorResponse, match="invalid room name"):
            await api.create_room_service(project_id=own, room_name="../up", service=spec("x"))

        await api.delete_room_service(project_id=own, room_name="studio", service_id=elsewhere)
        with pytest.raises(NotFoundError, match=elsewhere):
            await api.delete_room_service(project_id=own, room_name="studio", service_id=elsewhere)
        await api.delete_room(project_id=own, room_id=room.id)  # its services go with it
        assert await api.list_room_services(project_id=own, room_name="lab") == []
        assert [s.metadata.name for s in await api.list_services(project_id=own)] == ["helper"]


async def test_a_spec_that_is_not_valid_is_refused_naming_the_field(server: Server, credentials: Credentials) -> None:
    own = credentials.project_id
    bad = {
        "Object contains unknown field `colour` - at `$.metadata`": spec("x", metadata={"name": "x", "colour": "red"}),
        "Object contains unknown field `bogus`": {**spec("x"), "bogus": 1},
        "Expected `int | str`, got `bool` - at `$.ports[0].num`": spec("x", ports=[{"num": True}]),
        "Expected `str`, got `int` - at `$.container.image`": spec("x", container={"image": 5}),
        "Object missing required field `metadata`": {"version": "v1", "kind": "Service"},
        "Invalid enum value 'Job' - at `$.kind`": {**spec("x"), "kind": "Job"},
        "service port 8078 is reserved": spec("x", ports=[{"num": 8078}]),
        "container.run_as is required when using SecretValue": spec("x", container={"image": "i", "environment": [{"name": "A", "secret": {"id": "s"}}]}),
        "heartbeat requires prompt": spec("x", agents=[{"name": "a", "heartbeat": {"queue": "q", "minutes": 5}}]),
        "meshagent.api is not a valid ApiScope": spec("x", ports=[{"endpoints": [{"path": "/", "meshagent": {"identity": "i", "api": {"queues": 3}}}]}]),
        "metadata.name must not be empty": spec(" "),
        "must be a ServiceSpec or {template, values}": ["not", "an", "object"],
    }
    async with client(server, credentials.api_key) as api:
        for message, body in bad.items():
            for route, where in (("create_service", {}), ("create_room_service", {"room_name": "lab"})):
                with pytest.raises(ValidationErrorResponse) as refused:
                    await api.call(route, project_id=own, service=body, **where)
                assert message in refused.value.body, (message, refused.value.body)
        with pytest.raises(msgspec.ValidationError, match="colour"):  # our client checks first, as the official one does
            await api.create_service(project_id=own, service=bad["Object contains unknown field `colour` - at `$.metadata`"])
        assert await api.list_services(project_id=own) == []


async def test_templates_are_rendered_and_make_services(server: Server, credentials: Credentials) -> None:
    own = credentials.project_id
    values = {"name": "bot", "model": "claude"}
    async with client(server, credentials.api_key) as api:
        rendered = await api.render_template(template=TEMPLATE, values=values)
        assert isinstance(rendered, ServiceTemplateSpec)
        assert rendered == render_service_template(TEMPLATE, values)  # what the client renders itself
        assert (rendered.metadata.name, rendered.metadata.description, rendered.container.image) == ("bot", "runs claude", "registry.example/agent:latest")
        assert rendered.metadata.annotations == {TEMPLATE_YAML_ANNOTATION: TEMPLATE, TEMPLATE_VALUES_ANNOTATION: '{"name": "bot", "model": "claude"}'}

        made = await api.create_service_from_template(project_id=own, template=TEMPLATE, values=values)
        assert made.id and made == msgspec.structs.replace(rendered.to_service_spec(), id=made.id)
        assert made.container.environment[0].value == "claude" and made.ports[0].endpoints[0].meshagent.identity == "bot"
        changed = await api.update_service_from_template(project_id=own, service_id=made.id, template=TEMPLATE, values={"name": "bot2"})
        assert (changed.id, changed.metadata.name, changed.container.environment[0].value) == (made.id, "bot2", "")
        assert await api.get_service(project_id=own, service_id=made.id) == changed
        with pytest.raises(ConflictError, match="'bot2' already exists"):
            await api.create_service_from_template(project_id=own, template=TEMPLATE, values={"name": "bot2"})

        in_room = await api.create_room_service_from_template(project_id=own, room_name="lab", template=TEMPLATE, values=values)
        assert await api.get_room_service(project_id=own, room_name="lab", service_id=in_room.id) == in_room
        again = await api.update_room_service_from_template(project_id=own, room_name="lab", service_id=in_room.id, template=TEMPLATE, values={"name": "x"})
        assert (again.id, again.metadata.name) == (in_room.id, "x")
        with pytest.raises(NotFoundError):
            await api.update_room_service_from_template(project_id=own, room_name="lab", service_id="ghost", template=TEMPLATE, values=values)


async def test_a_template_that_does_not_render_says_where_and_why(server: Server, credentials: Credentials) -> None:
    own = credentials.project_id
    refusals = {
        "missing for the required template variables name": (TEMPLATE, {}),
        "model 'llama' is not one of gpt, claude": (TEMPLATE, {"name": "a", "model": "llama"}),
        "template, line 3: unexpected '}'": ("version: v1\nkind: ServiceTemplate\nmetadata: {name: {{ } }}\n", {}),
        "template, line 2: SecurityError: access to attribute '__class__'": ("a: 1\nb: {{ ''.__class__.__mro__ }}", {}),
        "not valid YAML, line 2, column 2": ("a: [1\nb: 2", {}),
        "Object contains unknown field `colour` - at `$.metadata`": ("version: v1\nkind: ServiceTemplate\nmetadata: {name: x, colour: red}", {}),
        "range() calls make more than 100000 items": ("{% for i in range(99999) %}{% for j in range(9) %}{% endfor %}{% endfor %}", {}),
        "'*' would make more than": ("{{ 'x' * 100000000 }}", {}),
        "holds more than 100000 values": ("a: &a [1,1,1,1,1,1,1,1,1,1]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
                                          "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: [*e,*e]", {}),
    }
    async with client(server, credentials.api_key) as api:
        for message, (template, values) in refusals.items():
            with pytest.raises(ValidationErrorResponse) as refused:
                await api.render_template(template=template, values=values)
            assert message in refused.value.body and "render_template" in refused.value.body, (message, refused.value.body)
        with pytest.raises(ValidationErrorResponse, match=r"create_service_from_template: values: missing .* name"):
            await api.create_service_from_template(project_id=own, template=TEMPLATE, values={})
        no_image = "version: v1\nkind: ServiceTemplate\nmetadata: {name: x}\ncontainer: {command: run}"
        with pytest.raises(ValidationErrorResponse, match=r"the rendered service: Expected `str`, got `null` - at `\$.container.image`"):
            await api.create_room_service_from_template(project_id=own, room_name="lab", template=no_image, values={})
        with pytest.raises(ValidationErrorResponse, match="unknown field `extra`"):
            await api.call("create_service", project_id=own, service={"template": TEMPLATE, "values": {}, "extra": 1})
        async with httpx.AsyncClient() as http:  # our client refuses to send it
            answer = await http.post(
                f"http://127.0.0.1:{server.port}/templates/render",
                json={"template": TEMPLATE, "values": {"name": 1}},
                headers={"Authorization": f"Bearer {credentials.api_key}"},
            )
        assert answer.status_code == 400 and "Expected `str`, got `int` - at `$.values[...]`" in answer.text, answer.text
        assert await api.list_services(project_id=own) == []


async def test_services_are_kept_in_the_control_database(server: Server, credentials: Credentials) -> None:
    own = credentials.project_id
    async with client(server, credentials.api_key) as api:
        made = await api.create_service(project_id=own, service=spec("kept", ports=PORTS))
    db = sqlite3.connect(server.config.data_dir / "control.db")
    try:
        rows = db.execute("SELECT id, project_id, room_name, name, spec FROM service_specs").fetchall()
    finally:
        db.close()
    assert [(r[0], r[1], r[2], r[3]) for r in rows] == [(made.id, own, "", "kept")]
    assert read_service_spec(msgspec.json.decode(rows[0][4])) == made


async def test_another_projects_key_and_mcp_discovery_are_refused(server: Server, credentials: Credentials) -> None:
    own = credentials.project_id
    async with client(server, credentials.api_key) as owner:
        other = await owner.create_project(name="other")
        account = await owner.create_service_account(project_id=other.id, name="bot")
        key = await owner.create_api_key(project_id=other.id, service_account_id=account.id, name="k", description="")
        for method in ("discover_mcp_service", "discover_mcp_service_template"):
            with pytest.raises(ServerError, match="Status=501.*does not discover MCP servers"):
                await getattr(owner, method)(url="http://127.0.0.1:1/mcp")
    async with client(server, key.value) as intruder:
        with pytest.raises(PermissionDeniedError, match="another project"):
            await intruder.list_services(project_id=own)
        with pytest.raises(PermissionDeniedError, match="another project"):
            await intruder.create_room_service(project_id=own, room_name="lab", service=spec("x"))
        assert (await intruder.create_service(project_id=other.id, service=spec("theirs"))).metadata.name == "theirs"


# --- the codec --------------------------------------------------------------------------------


def without_discriminators(schema: Any) -> Any:
    """The schema without OpenAPI's `discriminator` (the tagged unions' `type` const stays)."""
    if isinstance(schema, dict):
        return {key: without_discriminators(value) for key, value in schema.items() if key != "discriminator"}
    if isinstance(schema, list):
        return [without_discriminators(value) for value in schema]
    return schema


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(value=tool_arguments(without_discriminators(msgspec.json.schema(ServiceSpec)), max_depth=4))
def test_a_spec_reads_back_from_what_the_client_sends(value: dict[str, Any]) -> None:
    try:
        service = read_service_spec(value)
    except msgspec.ValidationError:
        assume(False)  # a cross-field rule the schema cannot say (a secret without run_as, …)
        raise
    assert read_service_spec(service_json(service)) == service
    # create: nulls dropped everywhere and no id; a null with a default reads back as the
    # default (as with the official models), and then nothing more changes
    created = service_json(service, for_create=True)
    assert "id" not in created and not has_null(created)
    read_back = read_service_spec(created)
    assert is_within(created, service_json(read_back, for_create=True))  # nothing sent is lost or changed
    assert read_service_spec(service_json(read_back, for_create=True)) == read_back


def has_null(value: Any) -> bool:
    if isinstance(value, dict):
        return any(has_null(item) for item in value.values())
    if isinstance(value, list):
        return any(has_null(item) for item in value)
    return value is None


def is_within(part: Any, whole: Any) -> bool:
    """Every key of `part` is in `whole` with a value within it (lists item by item)."""
    if isinstance(part, dict):
        return isinstance(whole, dict) and all(key in whole and is_within(item, whole[key]) for key, item in part.items())
    if isinstance(part, list):
        return isinstance(whole, list) and len(part) == len(whole) and all(is_within(a, b) for a, b in zip(part, whole))
    return part == whole


def test_rendering_is_the_template_and_its_values_only() -> None:
    with pytest.raises(TemplateError, match="line 1: SecurityError"):
        render_service_template("{{ range.__self__.values }}", {})
    with pytest.raises(TemplateError, match="'\\*\\*' would make a number"):
        render_service_template("{{ 10 ** 100000 }}", {})
    assert render_service_template("version: v1\nkind: ServiceTemplate\nmetadata: {name: '{{ n }}'}", {"n": "{{ 7 * 6 }}"}).metadata.name == "{{ 7 * 6 }}"
    # the service of a template keeps its volume mounts (the official mapping drops them)
    volumes = "version: v1\nkind: ServiceTemplate\nmetadata: {name: v}\ncontainer: {image: i, storage: {volumes: [{name: cache, path: /c}]}}"
    assert render_service_template(volumes, {}).to_service_spec().container.storage.volumes[0].name == "cache"
    # a `!template` scalar is rendered once more, after the whole text (as officially)
    tagged = "version: v1\nkind: ServiceTemplate\nmetadata: {name: !template '{{ n }}'}"
    assert render_service_template(tagged, {"n": "{{ 7 * 6 }}"}).metadata.name == "42"
