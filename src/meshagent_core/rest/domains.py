"""Routes of routes and custom domains (protocol/rest.md §10), their models, and the rules of a
`RouteSpec` (`check_route_spec`) and of a domain name (`normalize_domain`).

A route sends the requests whose `Host` is its domain to a room's service port (or serves room
or agent storage); a custom domain is a domain a project claims. The models are the official
ones (0.56 `RouteSpec`, `CustomDomain`), unknown keys refused as there. The structs only fix the
types; the cross-field rules (exactly one backend, exactly one target per path, …) and the
official normalizations are `check_route_spec`'s, so a client may build any spec and the server
says what is wrong with it.
"""

from __future__ import annotations

import re
from typing import Any, Literal

import msgspec
from msgspec import UNSET, UnsetType

from .accounts import PROJECT
from .models import Model
from .routes import Route

ROUTES_PATH = PROJECT + "/routes"
CUSTOM_DOMAINS = PROJECT + "/custom-domains"


class Spec(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A spec part: unknown keys refused (the official `extra="forbid"`), every field written
    except those left UNSET (the official serializer drops them)."""


class RouteMetadata(Spec, kw_only=True):
    name: str
    annotations: dict[str, str] = msgspec.field(default_factory=dict)


class RouteRoomBackendSpec(Spec, kw_only=True):
    name: str


class RouteAgentBackendSpec(Spec, kw_only=True):
    name: str


class RouteBackendSpec(Spec, kw_only=True):
    """Exactly one of `room` or `agent` (`check_route_spec`)."""

    room: RouteRoomBackendSpec | None = None
    agent: RouteAgentBackendSpec | None = None


class RouteCorsRule(Spec, kw_only=True):
    allowedOrigins: list[str]
    allowedMethods: list[str] = msgspec.field(default_factory=lambda: ["GET", "HEAD"])
    allowedHeaders: list[str] = msgspec.field(default_factory=list)
    exposeHeaders: list[str] = msgspec.field(default_factory=list)
    maxAgeSeconds: int = 3600
    allowCredentials: bool = False


class RouteContentSpec(Spec, kw_only=True):
    """Serves a subpath of room (or agent) storage."""

    subpath: str = ""
    notFound: str | UnsetType = UNSET
    cors: list[RouteCorsRule] = msgspec.field(default_factory=list)
    index: bool = False
    iap: bool = False
    compression: Literal["brotli", "gzip", "none"] = "brotli"


class RoutePathSpec(Spec, kw_only=True):
    """Exactly one of `targetPort` (a room service's port) or `targetContent`."""

    path: str = "/"
    pathType: Literal["prefix", "exact"] = "prefix"
    stripPrefix: bool | UnsetType = UNSET
    targetPort: str | int | UnsetType = UNSET
    targetContent: RouteContentSpec | UnsetType = UNSET
    unavailable: str | UnsetType = UNSET


class RouteSpec(Spec, kw_only=True):
    version: Literal["v1"] = "v1"
    kind: Literal["Route"] = "Route"
    metadata: RouteMetadata
    domain: str
    backend: RouteBackendSpec
    paths: list[RoutePathSpec] = msgspec.field(default_factory=list)


class RouteInfo(Model, kw_only=True):
    """A route (the official `Route`): its domain and spec."""

    domain: str
    spec: RouteSpec


class RouteAnswer(Model, kw_only=True):
    route: RouteInfo


class RoutesPage(Model, kw_only=True):
    routes: list[RouteInfo]
    total: int = 0
    continuation_token: str | None = None


class RouteBody(msgspec.Struct, kw_only=True):
    spec: RouteSpec


class RoutesQuery(msgspec.Struct, kw_only=True):
    page_size: int = 100
    continuation_token: str | UnsetType = UNSET
    filter: str | UnsetType = UNSET


class RoomRoutesQuery(msgspec.Struct, kw_only=True):
    count: int = 100
    offset: int = 0
    filter: str | UnsetType = UNSET


CustomDomainPhase = Literal["pending_dns", "provisioning_certificate", "provisioning_map_entry", "available", "degraded", "failed", "deleting"]


class CustomDomainDnsRecord(Model, kw_only=True):
    name: str
    type: str
    data: str


class CustomDomainCondition(Model, kw_only=True):
    type: str
    status: Literal["true", "false", "unknown"]
    reason: str
    message: str = ""
    observed_at: str


class CustomDomain(Model, kw_only=True):
    domain: str
    project_id: str
    phase: CustomDomainPhase
    available: bool
    created_at: str
    dns_authorization_record: CustomDomainDnsRecord | None = None
    routing_records: list[CustomDomainDnsRecord] = msgspec.field(default_factory=list)
    certificate_state: str | None = None
    map_entry_state: str | None = None
    conditions: list[CustomDomainCondition] = msgspec.field(default_factory=list)


class CustomDomainAnswer(Model, kw_only=True):
    custom_domain: CustomDomain


class CustomDomainsPage(Model, kw_only=True):
    custom_domains: list[CustomDomain]
    continuation_token: str | None = None


class CustomDomainBody(msgspec.Struct, kw_only=True):
    domain: str


class CustomDomainsQuery(msgspec.Struct, kw_only=True):
    """The official method's `count` travels as `page_size`."""

    page_size: int = 100
    view: str = "my"
    continuation_token: str | UnsetType = UNSET
    filter: str | UnsetType = UNSET


# --- the rules -----------------------------------------------------------------------------------

_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")


def normalize_domain(value: str, *, field: str = "domain", wildcard: bool = False) -> str:
    """A host name, lower-cased: dot-separated labels of letters, digits and inner `-` (each up
    to 63 characters, up to 253 in all), at least two labels; `*.` first when `wildcard`.
    ValueError naming `field` otherwise."""
    domain = value.strip().lower().rstrip(".")
    labels = domain.split(".")
    if wildcard and labels[0] == "*":
        labels = labels[1:]
    if len(domain) > 253 or len(labels) < 2 or not all(_LABEL.match(label) for label in labels):
        allowed = "a host name (a.example.com)" + (" or a wildcard (*.example.com)" if wildcard else "")
        raise ValueError(f"{field}: {value!r} is not {allowed}")
    return domain


def is_under(domain: str, suffixes: list[str]) -> str | None:
    """The entry of `suffixes` that `domain` is, or is a subdomain of (`*.x` counts as under `x`)."""
    bare = domain[2:] if domain.startswith("*.") else domain
    for suffix in suffixes:
        if bare == suffix or bare.endswith("." + suffix):
            return suffix
    return None


def _relative(value: str, field: str, *, empty_ok: bool = True) -> str:
    normalized = value.strip().strip("/")
    if not normalized and not empty_ok:
        raise ValueError(f"{field} must not be empty")
    if any(part in (".", "..") for part in normalized.split("/")):
        raise ValueError(f"{field} cannot contain dot segments")
    return normalized


def _check_cors(rule: RouteCorsRule, field: str) -> None:
    for name in ("allowedOrigins", "allowedMethods"):
        if not getattr(rule, name):
            raise ValueError(f"{field}.{name} must not be empty")
    for name in ("allowedOrigins", "allowedMethods", "allowedHeaders", "exposeHeaders"):
        items = [item.strip() for item in getattr(rule, name)]
        if any(not item for item in items):
            raise ValueError(f"{field}.{name} must not hold an empty entry")
        setattr(rule, name, [item.upper() for item in items] if name == "allowedMethods" else items)
    if rule.maxAgeSeconds < 0:
        raise ValueError(f"{field}.maxAgeSeconds must be 0 or more")
    if rule.allowCredentials and "*" in (origin.strip() for origin in rule.allowedOrigins):
        raise ValueError(f"{field}.allowCredentials cannot be used with the wildcard origin")


def _check_path(path: RoutePathSpec, field: str, *, agent: bool) -> None:
    if not path.path.startswith("/"):
        raise ValueError(f"{field}.path must start with /")
    has_port, content = path.targetPort is not UNSET, path.targetContent
    if has_port == (content is not UNSET):
        raise ValueError(f"{field} needs exactly one of targetPort or targetContent")
    if isinstance(path.targetPort, str) and not path.targetPort.strip():
        raise ValueError(f"{field}.targetPort must not be empty")
    if isinstance(path.targetPort, int) and not 1 <= path.targetPort <= 65535:
        raise ValueError(f"{field}.targetPort must be a port number (1-65535)")
    if path.unavailable is not UNSET:
        path.unavailable = _relative(path.unavailable, f"{field}.unavailable", empty_ok=False)
    if isinstance(content, RouteContentSpec):
        if path.stripPrefix is True:
            raise ValueError(f"{field}.stripPrefix is not supported by content paths (the route path is always removed)")
        if path.unavailable is not UNSET:
            raise ValueError(f"{field}.unavailable is supported only for service paths")
        content.subpath = _relative(content.subpath, f"{field}.targetContent.subpath")
        if content.notFound is not UNSET:
            content.notFound = _relative(content.notFound, f"{field}.targetContent.notFound", empty_ok=False)
        for index, rule in enumerate(content.cors):
            _check_cors(rule, f"{field}.targetContent.cors[{index}]")
        if agent and content.iap:
            raise ValueError(f"{field}.targetContent.iap is not supported by agent routes")
    elif agent:
        raise ValueError(f"{field}: an agent route's paths need targetContent")


def check_route_spec(spec: RouteSpec) -> None:
    """The official `RouteSpec` rules, and a valid domain: ValueError naming the field. Normalizes
    in place as the official model does (subpaths without outer `/`, CORS entries trimmed,
    methods upper-cased)."""
    normalize_domain(spec.domain, field="spec.domain")
    if not spec.metadata.name.strip():
        raise ValueError("spec.metadata.name must not be empty")
    backend = spec.backend
    if (backend.room is None) == (backend.agent is None):
        raise ValueError("spec.backend needs exactly one of room or agent")
    target = backend.room or backend.agent
    if target is not None and not target.name.strip():
        raise ValueError(f"spec.backend.{'room' if backend.room else 'agent'}.name must not be empty")
    if backend.room is not None and not spec.paths:
        raise ValueError("spec.paths: a room backend needs at least one path")
    for index, path in enumerate(spec.paths):
        _check_path(path, f"spec.paths[{index}]", agent=backend.agent is not None)


def read_route_spec(value: RouteSpec | dict[str, Any]) -> RouteSpec:
    """A spec from itself or its JSON, checked (`msgspec.ValidationError` or ValueError naming
    the field)."""
    spec = value if isinstance(value, RouteSpec) else msgspec.convert(value, RouteSpec)
    check_route_spec(spec)
    return spec


def simple_route_spec(*, domain: str, room_name: str, port: str | int, annotations: dict[str, str] | None = None) -> RouteSpec:
    """The spec the official client builds from a domain, room and port: every path of the
    domain to that port of the room."""
    return RouteSpec(
        metadata=RouteMetadata(name=domain, annotations=annotations or {}),
        domain=domain,
        backend=RouteBackendSpec(room=RouteRoomBackendSpec(name=room_name)),
        paths=[RoutePathSpec(path="/", targetPort=port)],
    )


ROUTES = [
    Route("create_route", "POST", ROUTES_PATH, Any, body=RouteBody),
    Route("update_route", "PUT", ROUTES_PATH + "/{domain}", Any, body=RouteBody),
    Route("get_route", "GET", ROUTES_PATH + "/{domain}", RouteAnswer, payload_noun="route"),
    Route("list_routes_page", "GET", ROUTES_PATH, RoutesPage, query=RoutesQuery, aliases=("list_routes",), payload_noun="routes"),
    Route(
        "list_room_routes_page", "GET", PROJECT + "/rooms/{room_name}/routes", RoutesPage, query=RoomRoutesQuery,
        aliases=("list_room_routes",), payload_noun="routes",
    ),
    Route("delete_route", "DELETE", ROUTES_PATH + "/{domain}", Any),
    Route("create_custom_domain", "POST", CUSTOM_DOMAINS, CustomDomainAnswer, body=CustomDomainBody, payload_noun="custom domain"),
    Route("get_custom_domain", "GET", CUSTOM_DOMAINS + "/{domain}", CustomDomainAnswer, payload_noun="custom domain"),
    Route("list_custom_domains", "GET", CUSTOM_DOMAINS, CustomDomainsPage, query=CustomDomainsQuery, payload_noun="custom domains"),
    Route("delete_custom_domain", "DELETE", CUSTOM_DOMAINS + "/{domain}", Any),
]  # fmt: skip

__all__ = [
    "CustomDomain",
    "CustomDomainAnswer",
    "CustomDomainCondition",
    "CustomDomainDnsRecord",
    "CustomDomainsPage",
    "ROUTES",
    "RouteAgentBackendSpec",
    "RouteAnswer",
    "RouteBackendSpec",
    "RouteContentSpec",
    "RouteCorsRule",
    "RouteInfo",
    "RouteMetadata",
    "RoutePathSpec",
    "RouteRoomBackendSpec",
    "RouteSpec",
    "RoutesPage",
    "check_route_spec",
    "is_under",
    "normalize_domain",
    "read_route_spec",
    "simple_route_spec",
]
