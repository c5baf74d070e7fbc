"""`ManagedAgentSpec`: a managed agent's configuration with the official model's rules (0.56
`meshagent.api.managed_agents`). Unknown keys are refused wherever the official models forbid
them, names and e-mails are normalized as there, and the cross-field rules hold (a header or an
environment entry has exactly one of value or secret, tool names are unique, …).

`read_agent_spec` reads one from JSON, after the two legacy rewrites the official model does
first (a top-level `name`; an MCP server's `authorization`); its `ValidationError` names the
field (`- at $.metadata`). Values are read leniently as pydantic does ("0.5" for a number),
except that a boolean is not read as a number (pydantic reads `true` as 1). A tool's
`input_schema` is checked by the official strict-schema rules and by what the JSON Schema
meta-schema says of those keywords' values (the official model runs `jsonschema` for that).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import msgspec
from msgspec import Meta

from .models import JsonObject

_IDENTIFIER = r"^[A-Za-z_][A-Za-z0-9_]*$"
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_RESERVED_HEADERS = frozenset(
    {
        "host", "content-length", "transfer-encoding", "connection", "proxy-authorization", "proxy-authenticate",
        "proxy-connection", "keep-alive", "upgrade", "te", "trailer", "cookie", "set-cookie", "sec-websocket-accept",
        "sec-websocket-extensions", "sec-websocket-key", "sec-websocket-protocol", "sec-websocket-version",
    }
)  # fmt: skip


class Strict(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A spec part that refuses unknown keys (the official `extra="forbid"`). Every field is
    written, nulls included, as the official client's `model_dump` does."""


def _has_control_characters(text: str) -> bool:
    return any(ord(character) < 32 or ord(character) == 127 for character in text)


# --- models and toolkits ---------------------------------------------------------------------


class AllowedOpenAIModel(msgspec.Struct, kw_only=True, tag_field="provider", tag="openai"):
    """Unknown keys are ignored here, as in the official model."""

    model: str
    output_modalities: list[str] | None = None


class AllowedAnthropicModel(msgspec.Struct, kw_only=True, tag_field="provider", tag="anthropic"):
    model: str


class AllowedGrokModel(msgspec.Struct, kw_only=True, tag_field="provider", tag="grok"):
    model: str


AllowedModel = AllowedOpenAIModel | AllowedAnthropicModel | AllowedGrokModel


class ManagedAgentRunAs(Strict, kw_only=True):
    #: the service account e-mail the agent runs as (lower-cased)
    email: str
    scopes: list[str] = msgspec.field(default_factory=lambda: ["secrets:proxy", "llm_proxy"])

    def __post_init__(self) -> None:
        self.email = self.email.strip().lower()
        if not self.email:
            raise ValueError("run_as.email must not be empty")
        self.scopes = list(dict.fromkeys(scope.strip() for scope in self.scopes if scope.strip()))


class ManagedAgentWebSearch(Strict, kw_only=True, tag_field="type", tag="web_search"):
    allowed_domains: list[str] | None = None
    blocked_domains: list[str] | None = None


class ManagedAgentWebFetch(Strict, kw_only=True, tag_field="type", tag="web_fetch"):
    pass


class ManagedAgentImageGeneration(Strict, kw_only=True, tag_field="type", tag="image_generation"):
    background: Literal["transparent", "opaque", "auto"] | None = None
    input_image_mask_url: str | None = None
    model: str | None = None
    moderation: str | None = None
    output_compression: int | None = None
    output_format: Literal["png", "webp", "jpeg"] | None = None
    partial_images: int | None = 1
    quality: Literal["auto", "low", "medium", "high"] | None = None
    size: Literal["1024x1024", "1024x1536", "1536x1024", "auto"] | None = None


class McpHeader(Strict, kw_only=True):
    name: str
    value: str


class McpServer(Strict, kw_only=True):
    server_label: str
    server_url: str
    allowed_tools: list[str] | None = None
    headers: list[McpHeader] | None = None
    require_approval: Literal["always", "never"] | None = None
    always_require_approval: list[str] | None = None
    never_require_approval: list[str] | None = None
    openai_connector_id: str | None = None
    use_proxy_secret: str | None = None


class McpToolkit(Strict, kw_only=True, tag_field="type", tag="mcp"):
    servers: list[McpServer]


ManagedAgentToolkit = ManagedAgentWebSearch | ManagedAgentWebFetch | ManagedAgentImageGeneration | McpToolkit


# --- python tools, connections, environment ---------------------------------------------------

_STRICT_SCHEMA_KEYWORDS = frozenset(
    {
        "type", "title", "description", "properties", "required", "additionalProperties", "items", "$defs", "$ref",
        "anyOf", "enum", "const", "format", "pattern", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
        "multipleOf", "minItems", "maxItems",
    }
)  # fmt: skip


_JSON_TYPES = frozenset({"array", "boolean", "integer", "null", "number", "object", "string"})


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_keyword_values(schema: dict[str, Any], path: str) -> None:
    """What the JSON Schema meta-schema says of the strict keywords' values (the official model
    checks the schema against it first)."""
    if "type" in schema:
        kind = schema["type"]
        kinds = kind if isinstance(kind, list) else [kind]
        if not kinds or not all(isinstance(k, str) and k in _JSON_TYPES for k in kinds) or len(set(kinds)) != len(kinds):
            raise ValueError(f"{path}.type: {kind!r} is not a JSON type or a list of distinct ones")
    for key in ("title", "description", "format", "pattern", "$ref"):
        if key in schema and not isinstance(schema[key], str):
            raise ValueError(f"{path}.{key} must be a string")
    if "pattern" in schema:
        try:
            re.compile(schema["pattern"])
        except re.error as error:
            raise ValueError(f"{path}.pattern is not a regular expression: {error}") from None
    for key in ("properties", "$defs"):
        if key in schema and not isinstance(schema[key], dict):
            raise ValueError(f"{path}.{key} must be an object")
    required = schema.get("required", [])
    if not isinstance(required, list) or not all(isinstance(n, str) for n in required) or len(set(required)) != len(required):
        raise ValueError(f"{path}.required must be a list of distinct names")
    if "enum" in schema and not isinstance(schema["enum"], list):
        raise ValueError(f"{path}.enum must be a list")
    if "anyOf" in schema and (not isinstance(schema["anyOf"], list) or not schema["anyOf"]):
        raise ValueError(f"{path}.anyOf must be a non-empty list")
    for key in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"):
        if key in schema and not _is_number(schema[key]):
            raise ValueError(f"{path}.{key} must be a number")
    if "multipleOf" in schema and schema["multipleOf"] <= 0:
        raise ValueError(f"{path}.multipleOf must be greater than 0")
    for key in ("minItems", "maxItems"):
        value = schema.get(key, 0)
        if not _is_number(value) or value < 0 or value != int(value):
            raise ValueError(f"{path}.{key} must be a non-negative integer")
    for key in ("additionalProperties", "items"):
        if key in schema and not isinstance(schema[key], (bool, dict)):
            raise ValueError(f"{path}.{key} must be a schema")


def check_strict_schema(schema: Any, path: str = "input_schema") -> None:
    """The official rules of a python tool's input schema: strict objects (every property
    required, no additional properties), local `$ref`s only, a known set of keywords."""
    if not isinstance(schema, dict):
        raise ValueError(f"{path}: expected a schema object")
    _check_keyword_values(schema, path)
    if not any(key in schema for key in ("type", "$ref", "anyOf")):
        raise ValueError(f"{path}: schema requires type, $ref, or anyOf")
    for key in schema:
        if key not in _STRICT_SCHEMA_KEYWORDS:
            raise ValueError(f"{path}.{key}: unsupported strict-schema keyword")
    if "$ref" in schema and (not isinstance(schema["$ref"], str) or not schema["$ref"].startswith("#/$defs/")):
        raise ValueError(f"{path}: only local $defs references are supported")
    kind = schema.get("type")
    if kind == "object" or (isinstance(kind, list) and "object" in kind):
        properties, required = schema.get("properties"), schema.get("required")
        if schema.get("additionalProperties") is not False:
            raise ValueError(f"{path}.additionalProperties must be false")
        if not isinstance(properties, dict) or not isinstance(required, list):
            raise ValueError(f"{path}: properties and required are required")
        if not all(isinstance(name, str) for name in required) or len(set(required)) != len(required) or set(required) != set(properties):
            raise ValueError(f"{path}.required must list every property exactly once")
    for key in ("properties", "$defs"):
        children = schema.get(key, {})
        if isinstance(children, dict):
            for name, child in children.items():
                check_strict_schema(child, f"{path}.{key}.{name}")
    if "items" in schema:
        check_strict_schema(schema["items"], f"{path}.items")
    for index, child in enumerate(schema.get("anyOf", [])):
        check_strict_schema(child, f"{path}.anyOf[{index}]")


class PythonTool(Strict, kw_only=True):
    type: Literal["python"] = "python"
    name: Annotated[str, Meta(pattern=_IDENTIFIER, max_length=64)]
    description: str = ""
    input_schema: JsonObject
    source: Annotated[str, Meta(min_length=1, max_length=65536)]
    entrypoint: Annotated[str, Meta(pattern=_IDENTIFIER, max_length=64)] | None = None

    def __post_init__(self) -> None:
        if len(self.source.encode("utf-8")) > 65536:
            raise ValueError("tools[].source must contain at most 65536 bytes")
        if "anyOf" in self.input_schema:
            raise ValueError("tools[].input_schema: root anyOf is not supported")
        if self.input_schema.get("type") != "object":
            raise ValueError("tools[].input_schema must be an object schema")
        check_strict_schema(self.input_schema)


class SecretReference(Strict, kw_only=True):
    id: str

    def __post_init__(self) -> None:
        if not self.id.strip():
            raise ValueError("secret.id must not be empty")


class ConnectionHeader(Strict, kw_only=True):
    name: str
    value: str | None = None
    secret: SecretReference | None = None
    prefix: str = ""

    def __post_init__(self) -> None:
        if _has_control_characters(self.prefix):
            raise ValueError("headers[].prefix must not contain control characters")
        if (self.value is None) == (self.secret is None):
            raise ValueError(f"header {self.name}: requires exactly one of value or secret")
        if self.value is not None and self.prefix:
            raise ValueError(f"header {self.name}: prefix requires secret")


class HttpConnection(Strict, kw_only=True):
    base_url: str
    use_proxy_secret: str | None = None
    headers: list[ConnectionHeader] = msgspec.field(default_factory=list)

    def __post_init__(self) -> None:
        url = urlsplit(self.base_url)
        if url.scheme not in ("http", "https") or not url.hostname or url.username is not None or url.password is not None or url.fragment:
            raise ValueError("base_url must be HTTP(S), without credentials or fragment")
        if self.use_proxy_secret is not None and not self.use_proxy_secret.strip():
            raise ValueError("use_proxy_secret must not be empty")
        names: set[str] = set()
        secrets = int(self.use_proxy_secret is not None)
        for header in self.headers:
            lowered = header.name.lower()
            if _HEADER_NAME.fullmatch(header.name) is None or lowered in _RESERVED_HEADERS or lowered in names:
                raise ValueError(f"header {header.name} is not allowed")
            names.add(lowered)
            if header.value is None:
                secrets += 1
            elif _has_control_characters(header.value):
                raise ValueError(f"header {header.name} has an invalid value")
        if self.use_proxy_secret is not None and "authorization" in names:
            raise ValueError("Authorization conflicts with use_proxy_secret")
        if secrets > 16:
            raise ValueError("a connection supports at most 16 secret headers")
        if secrets and any(h.name.lower() == "authorization" and h.value is not None for h in self.headers):
            raise ValueError("literal Authorization cannot be combined with secret headers")


class EnvironmentVariable(Strict, kw_only=True):
    name: Annotated[str, Meta(pattern=_IDENTIFIER, max_length=128)]
    value: str | None = None
    secret: SecretReference | None = None

    def __post_init__(self) -> None:
        if (self.value is None) == (self.secret is None):
            raise ValueError(f"environment {self.name}: requires exactly one of value or secret")


# --- guardrails -------------------------------------------------------------------------------


class DecisionCheck(Strict, kw_only=True):
    type: Literal["decision"] = "decision"
    model: Annotated[str, Meta(pattern=r"^openai/[^/\s]+$")]
    instructions: Annotated[str, Meta(min_length=1, max_length=16384)]
    minimum_allow_probability: Annotated[float, Meta(ge=0, le=1)]

    def __post_init__(self) -> None:
        if not self.instructions.strip() or len(self.instructions.encode("utf-8")) > 16384:
            raise ValueError("guardrail instructions must contain 1 to 16384 UTF-8 bytes")


GuardrailAction = Literal["block", "deny", "replace", "pass", "fail"]


class GuardrailFailure(Strict, kw_only=True):
    action: GuardrailAction = "block"
    message: str | None = None

    def __post_init__(self) -> None:
        if self.action == "replace" and not (self.message or "").strip():
            raise ValueError("replacement guardrails require a message")


class Guardrail(Strict, kw_only=True):
    name: Annotated[str, Meta(min_length=1)]
    check: DecisionCheck
    on_reject: GuardrailFailure = msgspec.field(default_factory=GuardrailFailure)
    on_error: GuardrailFailure = msgspec.field(default_factory=lambda: GuardrailFailure(action="fail"))
    #: an integer 0–3, read strictly (as the official field): the other kinds are taken in
    #: only to be refused here, as the rest of the spec is read leniently
    max_retries: int | float | str | bool | None = 2

    def __post_init__(self) -> None:
        if type(self.max_retries) is not int:
            raise ValueError(f"guardrail {self.name}: max_retries must be an integer, not {self.max_retries!r}")
        if not 0 <= self.max_retries <= 3:
            raise ValueError(f"guardrail {self.name}: max_retries must be between 0 and 3")


class ToolMatch(Strict, kw_only=True):
    names: Annotated[list[str], Meta(min_length=1)]


class ToolGuardrails(Strict, kw_only=True):
    name: Annotated[str, Meta(min_length=1)]
    match: ToolMatch
    input: list[Guardrail] = msgspec.field(default_factory=list)
    output: list[Guardrail] = msgspec.field(default_factory=list)


class OutputGuardrails(Strict, kw_only=True):
    checks: list[Guardrail] = msgspec.field(default_factory=list)


class Guardrails(Strict, kw_only=True):
    input: list[Guardrail] = msgspec.field(default_factory=list)
    tools: list[ToolGuardrails] = msgspec.field(default_factory=list)
    output: OutputGuardrails = msgspec.field(default_factory=OutputGuardrails)

    def __post_init__(self) -> None:
        rules = [*self.input, *self.output.checks]
        boundaries: list[tuple[list[Guardrail], set[str]]] = [(self.input, {"block"}), (self.output.checks, {"block", "replace"})]
        for tool in self.tools:
            if not tool.name.strip() or any(not name.strip() for name in tool.match.names):
                raise ValueError("tool guardrails require nonempty names")
            rules.extend(tool.input)
            rules.extend(tool.output)
            boundaries += [(tool.input, {"block", "deny"}), (tool.output, {"block", "deny", "replace"})]
        if len(rules) > 32:
            raise ValueError("at most 32 guardrail checks are allowed")
        for checks, allowed in boundaries:
            for rule in checks:
                if rule.on_reject.action not in allowed or rule.on_error.action not in allowed | {"pass", "fail"}:
                    raise ValueError(f"guardrail {rule.name}: action is not supported at this boundary")
        names: set[str] = set()
        for rule in rules:
            if len(rule.name) > 64 or not all(c.isascii() and (c.isalnum() or c in "_.-") for c in rule.name) or rule.name in names:
                raise ValueError("guardrail names must be nonempty and unique")
            names.add(rule.name)


# --- the spec ---------------------------------------------------------------------------------


class ManagedAgentMetadata(Strict, kw_only=True):
    #: the agent's name, unique in its project (trimmed and lower-cased)
    name: str
    annotations: dict[str, str] = msgspec.field(default_factory=dict)

    def __post_init__(self) -> None:
        self.name = self.name.strip().lower()


class ManagedAgentSpec(Strict, kw_only=True):
    """A managed agent's configuration (`ManagedAgentSpec` of the official client)."""

    version: Literal["v1"] = "v1"
    kind: Literal["ManagedAgent"] = "ManagedAgent"
    id: str | None = None
    metadata: ManagedAgentMetadata
    allowed_models: list[AllowedModel]
    guardrails: Guardrails | None = None
    run_as: ManagedAgentRunAs | None = None
    llm_delegation: Literal["required", "optional"] = "optional"
    thread_isolation: Literal["global", "participant"] = "global"
    instructions: str | None = None
    toolkits: list[ManagedAgentToolkit] | None = None
    tools: list[PythonTool] = msgspec.field(default_factory=list)
    connections: dict[str, HttpConnection] = msgspec.field(default_factory=dict)
    environment: list[EnvironmentVariable] = msgspec.field(default_factory=list)
    output_modalities: list[str] | None = None
    store: bool = True

    def __post_init__(self) -> None:
        names = [tool.name for tool in self.tools]
        if len(set(names)) != len(names):
            raise ValueError("tools: duplicate Python tool name")
        variables = [entry.name for entry in self.environment]
        if len(variables) != len(set(variables)):
            raise ValueError("environment: duplicate environment variable name")
        if len(variables) > 64:
            raise ValueError("environment: at most 64 environment variables are supported")
        if any(entry.secret is not None for entry in self.environment):
            if self.run_as is None or "secrets:read" not in self.run_as.scopes:
                raise ValueError("environment: secret environment variables require run_as with secrets:read")

    @property
    def name(self) -> str:
        return self.metadata.name


def read_agent_spec(value: Any) -> ManagedAgentSpec:
    """A spec from JSON (a spec passes through), after the official legacy rewrites: a top-level
    `name` without `metadata` becomes `metadata.name`; an MCP server's `authorization` is dropped.
    Raises `msgspec.ValidationError` naming the field."""
    if isinstance(value, ManagedAgentSpec):
        return value
    if isinstance(value, dict):
        value = dict(value)
        if "name" in value and "metadata" not in value:
            value["metadata"] = {"name": value.pop("name")}
        toolkits = value.get("toolkits")
        if isinstance(toolkits, list):
            value["toolkits"] = [_without_legacy_authorization(toolkit) for toolkit in toolkits]
    # lax, as the official (pydantic) model: "0.5" is read as a number, 1 as a float
    return msgspec.convert(value, ManagedAgentSpec, strict=False)


def _without_legacy_authorization(toolkit: Any) -> Any:
    servers = toolkit.get("servers") if isinstance(toolkit, dict) else None
    if not isinstance(servers, list):
        return toolkit
    cleaned = [{k: v for k, v in s.items() if k != "authorization"} if isinstance(s, dict) else s for s in servers]
    return {**toolkit, "servers": cleaned}


__all__ = [
    "ManagedAgentMetadata",
    "AllowedModel",
    "ManagedAgentSpec",
    "ManagedAgentToolkit",
    "check_strict_schema",
    "read_agent_spec",
]
