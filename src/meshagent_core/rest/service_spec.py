"""`ServiceSpec` and `ServiceTemplateSpec`: a service's manifest and its template, with the rules of
the official 0.56 models (`meshagent.api.specs.service`; protocol/rest.md §8).

Unknown keys are refused wherever the official models forbid them (`extra="forbid"`), the
cross-field rules hold (a secret environment value needs `container.run_as`; port 8078 is the
room's own; a heartbeat has a prompt), and names are normalized as there (`run_as.email`
lower-cased, its scopes deduplicated). Values are read leniently as pydantic does ("5" for a
port number). Every field is written, nulls included, as the official `model_dump` writes it.

`read_service_spec` / `read_service_template` read one from JSON; their `msgspec.ValidationError`
names the field (`- at $.ports[0].num`). `ServiceTemplateSpec.to_service_spec()` is the official
mapping of a rendered template to a service, except that it keeps `container.storage.volumes`
(the official mapping drops them). Rendering a template's YAML is `service_template`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from .models import JsonObject

#: The room's own API port inside a room: no service may use it (the official
#: `RESERVED_ROOM_SERVICE_PORTS`).
RESERVED_SERVICE_PORTS = frozenset({8078})

PositiveInt = Annotated[int, Meta(gt=0)]
Annotations = dict[str, str]


class Strict(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A spec part that refuses unknown keys (the official `extra="forbid"`)."""


def _check_api_scope(api: JsonObject | None, where: str) -> None:
    if api is None:
        return
    from ..tokens import ApiScope

    try:
        ApiScope.from_json(api)
    except (msgspec.ValidationError, TypeError, ValueError) as error:
        raise ValueError(f"{where}.api is not a valid ApiScope: {error}") from None


# --- container ---------------------------------------------------------------------------------


class SecretValue(Strict, kw_only=True):
    id: str


class TokenValue(msgspec.Struct, kw_only=True):
    """A participant token injected into the container (unknown keys ignored, as officially)."""

    identity: str
    #: an `ApiScope` as JSON; None: the defaults of `role`
    api: JsonObject | None = None
    role: Literal["user", "agent", "tool"] | None = None

    def __post_init__(self) -> None:
        _check_api_scope(self.api, "token")


class ServiceRunAs(Strict, kw_only=True):
    #: the service account e-mail the service runs as (lower-cased)
    email: str
    scopes: list[str] = msgspec.field(default_factory=lambda: ["secrets:proxy"])

    def __post_init__(self) -> None:
        self.email = self.email.strip().lower()
        if not self.email:
            raise ValueError("run_as.email must not be empty")
        self.scopes = list(dict.fromkeys(scope.strip() for scope in self.scopes if scope.strip()))


class EnvironmentVariable(Strict, kw_only=True):
    name: str
    value: str | None = None
    token: TokenValue | None = None
    secret: SecretValue | None = None


class RoomStorageMountSpec(Strict, kw_only=True):
    path: str
    subpath: str | None = None
    read_only: bool = False


class VolumeStorageMountSpec(Strict, kw_only=True):
    name: str
    path: str
    subpath: str | None = None
    read_only: bool = False


class ImageStorageMountSpec(Strict, kw_only=True):
    image: str
    path: str
    subpath: str | None = None
    read_only: bool = True


class FileStorageMountSpec(Strict, kw_only=True):
    path: str
    text: str
    read_only: bool = True


class EmptyDirMountSpec(Strict, kw_only=True):
    path: str
    read_only: bool = False


class ConfigMountSpec(Strict, kw_only=True):
    path: str = "/var/run/meshagent"


class ContainerMountSpec(Strict, kw_only=True):
    room: list[RoomStorageMountSpec] | None = None
    volumes: list[VolumeStorageMountSpec] | None = None
    images: list[ImageStorageMountSpec] | None = None
    files: list[FileStorageMountSpec] | None = None
    empty_dirs: list[EmptyDirMountSpec] | None = None
    configs: list[ConfigMountSpec] | None = None


class ContainerSpec(Strict, kw_only=True):
    image: str
    run_as: ServiceRunAs | None = None
    #: `agent`: room storage at /data and the MeshAgent/LLM proxy variables; `none`: no defaults
    template: Literal["agent", "none"] | None = "agent"
    command: str | None = None
    working_dir: str | None = None
    pull_secret: SecretValue | None = None
    environment: list[EnvironmentVariable] | None = None
    storage: ContainerMountSpec | None = None
    on_demand: bool | None = None
    writable_root_fs: bool | None = None
    private: bool = True

    def __post_init__(self) -> None:
        if self.run_as is None and any(variable.secret is not None for variable in self.environment or ()):
            raise ValueError("container.run_as is required when using SecretValue")


class ServiceFileSpec(Strict, kw_only=True):
    path: str
    text: str


# --- agents ------------------------------------------------------------------------------------


class PromptTemplate(Strict, kw_only=True):
    name: str
    description: str | None = None
    prompt: str
    annotations: Annotations | None = None


class EmailChannel(Strict, kw_only=True):
    annotations: Annotations | None = None
    address: str
    private: bool = True


class QueueChannel(Strict, kw_only=True):
    annotations: Annotations | None = None
    queue: str
    threading_mode: Literal["default-new"] | None = None
    message_schema: JsonObject | None = None


class MessagingChannel(Strict, kw_only=True):
    annotations: Annotations | None = None
    protocol: str = "meshagent.agent-message.v1"
    prompts: list[PromptTemplate] | None = None


class ToolkitChannel(Strict, kw_only=True):
    annotations: Annotations | None = None
    name: str


class ChannelsSpec(Strict, kw_only=True):
    email: list[EmailChannel] | None = None
    messaging: list[MessagingChannel] | None = None
    queue: list[QueueChannel] | None = None
    toolkit: list[ToolkitChannel] | None = None


class EmailSpec(Strict, kw_only=True):
    address: str
    public: bool = False

    def __post_init__(self) -> None:
        if not self.address.strip():
            raise ValueError("email.address must not be empty")


class AgentTextContent(msgspec.Struct, kw_only=True, tag_field="type", tag="text"):
    text: str


class AgentFileContent(msgspec.Struct, kw_only=True, tag_field="type", tag="file"):
    url: str
    name: str | None = None


class AgentAudioContent(msgspec.Struct, kw_only=True, tag_field="type", tag="audio"):
    url: str


AgentInputContent = AgentTextContent | AgentFileContent | AgentAudioContent


class HeartbeatSpec(Strict, kw_only=True):
    queue: str
    thread_id: str | None = None
    prompt: list[AgentInputContent] | None = None
    minutes: PositiveInt

    def __post_init__(self) -> None:
        if not self.queue.strip():
            raise ValueError("heartbeat.queue must not be empty")
        if not self.prompt:
            raise ValueError("heartbeat requires prompt")


class AgentSpec(Strict, kw_only=True):
    """An agent the service exposes (also the official `AgentTemplateSpec`: the same fields)."""

    name: str
    description: str | None = None
    annotations: Annotations | None = None
    channels: ChannelsSpec | None = None
    email: EmailSpec | None = None
    heartbeat: HeartbeatSpec | None = None


# --- ports and endpoints -----------------------------------------------------------------------


class MeshagentEndpointSpec(Strict, kw_only=True):
    #: the participant name of the token minted for this endpoint
    identity: str
    #: an `ApiScope` as JSON; None: the default agent permissions
    api: JsonObject | None = None

    def __post_init__(self) -> None:
        _check_api_scope(self.api, "meshagent")


class AllowedMcpToolFilter(Strict, kw_only=True):
    tool_names: list[str] | None = None
    read_only: bool | None = None


class OAuthClientConfig(Strict, kw_only=True):
    client_id: str | None = None
    client_secret: str | None = None
    authorization_endpoint: str | None = None
    token_endpoint: str | None = None
    no_pkce: bool | None = None
    scopes: list[str] | None = None


class MCPEndpointSpec(Strict, kw_only=True):
    label: str
    description: str | None = None
    allowed_tools: list[AllowedMcpToolFilter] | None = None
    headers: Annotations | None = None
    require_approval: Literal["always", "never"] | None = None
    oauth: OAuthClientConfig | None = None
    openai_connector_id: str | None = None
    use_proxy_secret: str | None = None


class EndpointSpec(Strict, kw_only=True):
    #: receives the service hand-off call when the service starts
    path: str
    meshagent: MeshagentEndpointSpec | None = None
    mcp: MCPEndpointSpec | None = None
    annotations: Annotations | None = None


class PortSpec(Strict, kw_only=True):
    num: Literal["*"] | PositiveInt = "*"
    host_port: PositiveInt | None = None
    type: Literal["http", "tcp"] | None = "http"
    endpoints: list[EndpointSpec] = msgspec.field(default_factory=list)
    liveness: str | None = None
    published: bool | None = None
    public: bool | None = None
    annotations: Annotations | None = None

    def __post_init__(self) -> None:
        if isinstance(self.num, int) and self.num in RESERVED_SERVICE_PORTS:
            reserved = ", ".join(str(port) for port in sorted(RESERVED_SERVICE_PORTS))
            raise ValueError(f"service port {self.num} is reserved for MeshAgent room infrastructure; reserved ports: {reserved}")


# --- the service -------------------------------------------------------------------------------


class ServiceMetadata(Strict, kw_only=True):
    """A service's metadata (also the official `ServiceTemplateMetadata`: the same fields)."""

    name: str
    description: str | None = None
    repo: str | None = None
    icon: str | None = None
    annotations: Annotations | None = None


class ExternalServiceSpec(Strict, kw_only=True):
    url: str | None = None


class ServiceSpec(Strict, kw_only=True):
    """A service: what runs in a room (a container) or is reached outside it (`external`)."""

    version: Literal["v1"]
    kind: Literal["Service"]
    #: assigned by the server
    id: str | None = None
    enabled: bool = True
    metadata: ServiceMetadata
    agents: list[AgentSpec] | None = None
    ports: list[PortSpec] | None = msgspec.field(default_factory=list)
    #: created in room storage when missing
    files: list[ServiceFileSpec] | None = None
    container: ContainerSpec | None = None
    external: ExternalServiceSpec | None = None


# --- the template ------------------------------------------------------------------------------


class ServiceTemplateVariable(Strict, kw_only=True):
    name: str
    title: str | None = None
    description: str | None = None
    obscure: bool = False
    enum: list[str] | None = None
    optional: bool = False
    type: Literal["email", "route"] | None = None
    annotations: Annotations | None = None


class ContainerTemplateSpec(Strict, kw_only=True):
    """A template's container: `image` may be missing (the rendered service then is refused),
    there is no `pull_secret`."""

    environment: list[EnvironmentVariable] | None = None
    image: str | None = None
    run_as: ServiceRunAs | None = None
    template: Literal["agent", "none"] | None = "agent"
    command: str | None = None
    working_dir: str | None = None
    storage: ContainerMountSpec | None = None
    on_demand: bool | None = None
    writable_root_fs: bool | None = None
    private: bool = True


class ExternalServiceTemplateSpec(Strict, kw_only=True):
    url: str


class ServiceTemplateSpec(Strict, kw_only=True):
    """A service template, as rendered from its YAML (`service_template.render_service_template`)."""

    version: Literal["v1"]
    kind: Literal["ServiceTemplate"]
    metadata: ServiceMetadata
    agents: list[AgentSpec] | None = None
    variables: list[ServiceTemplateVariable] | None = None
    ports: list[PortSpec] | None = None
    files: list[ServiceFileSpec] | None = None
    container: ContainerTemplateSpec | None = None
    external: ExternalServiceTemplateSpec | None = None

    def to_service_spec(self) -> ServiceSpec:
        """The service of this template, as the official `to_service_spec` maps it (volumes
        kept); `msgspec.ValidationError` naming the field when it is not a valid service (a
        container without `image`, a secret without `run_as`)."""
        container = self.container
        service: dict[str, Any] = {
            "version": self.version,
            "kind": "Service",
            "agents": _plain(self.agents),
            "metadata": {**_plain(self.metadata), "annotations": dict(self.metadata.annotations or {})},
            "files": _plain(self.files),
            "external": None if self.external is None else {"url": self.external.url},
            "ports": _plain(self.ports),
        }
        if container is not None:
            service["container"] = {**_plain(container), "environment": _plain(container.environment or [])}
        return read_service_spec(service)


def _plain(value: Any) -> Any:
    return msgspec.to_builtins(value)


def read_service_spec(value: Any) -> ServiceSpec:
    """A `ServiceSpec` from its JSON (`msgspec.ValidationError` naming the field)."""
    if isinstance(value, ServiceSpec):
        return value
    return msgspec.convert(value, ServiceSpec, strict=False)


def read_service_template(value: Any) -> ServiceTemplateSpec:
    """A `ServiceTemplateSpec` from its JSON (`msgspec.ValidationError` naming the field)."""
    if isinstance(value, ServiceTemplateSpec):
        return value
    return msgspec.convert(value, ServiceTemplateSpec, strict=False)


def service_json(spec: ServiceSpec | ServiceTemplateSpec, *, for_create: bool = False) -> dict[str, Any]:
    """The JSON the official client sends: every key, nulls kept (`update_service`); for a
    create, nulls dropped at every level and no `id` (`create_service`)."""
    plain = _plain(spec)
    if not for_create:
        return plain
    plain.pop("id", None)
    return _without_nulls(plain)


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _without_nulls(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [_without_nulls(item) for item in value]
    return value


__all__ = [
    "AgentSpec",
    "ContainerMountSpec",
    "ContainerSpec",
    "ContainerTemplateSpec",
    "EndpointSpec",
    "EnvironmentVariable",
    "ExternalServiceSpec",
    "MCPEndpointSpec",
    "MeshagentEndpointSpec",
    "PortSpec",
    "RESERVED_SERVICE_PORTS",
    "ServiceFileSpec",
    "ServiceMetadata",
    "ServiceRunAs",
    "ServiceSpec",
    "ServiceTemplateSpec",
    "ServiceTemplateVariable",
    "read_service_spec",
    "read_service_template",
    "service_json",
]
