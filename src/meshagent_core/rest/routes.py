"""The REST route table's machinery: one `Route` per wire route, used by both sides.

A route names its verb and path template; the path parameters are the `{names}` in the template.
Its `query` and `body` are msgspec Structs whose fields are the method's other arguments, so
the client builds a request from keyword arguments and the server reads the same Structs back:

    request = route.build(project_id="p", name="my-room")       # client side
    route, path_args = table.match("POST", request.path)         # server side
    args = route.parse(path_args, request.query, request.body)   # the same keyword arguments

Body fields decide how a value that was not given is sent: a field whose default is
`msgspec.UNSET` is left out, a field defaulting to None is sent as null (the official client
sends some keys always, others only when given). Query values travel as strings; None and
UNSET are left out. A route with `raw_body="bytes"` sends its `raw_body_argument` as the body's
bytes (`application/octet-stream`), and one with `raw_answer` answers bytes, not JSON (project
storage `upload` and `download`). Pure: no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Literal, Mapping
from urllib.parse import quote, unquote

import msgspec

from ..jsondepth import decode_bounded

VERBS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"})
JSON = "application/json"
OCTET_STREAM = "application/octet-stream"
#: a path parameter, optionally followed by a literal suffix (`{version_id}:access`)
_PARAMETER = re.compile(r"^\{([a-z_][a-z0-9_]*)\}(:[a-z][a-z-]*)?$")


class RouteError(ValueError):
    """A request that does not fit its route: which argument or field, and why."""


@dataclass(frozen=True)
class RestRequest:
    """What a client sends: verb, percent-encoded path, query strings, JSON body bytes."""

    verb: str
    path: str
    query: dict[str, str]
    body: bytes | None
    auth: bool = True
    content_type: str = JSON
    #: headers that carry arguments (`Meshagent-Project-Id` of `connect_llm`)
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Route:
    """One REST route. `name` is the official client's method name; `aliases` are other
    official methods that send exactly this request (e.g. a `_page` method and its
    convenience form)."""

    name: str
    verb: str
    path: str
    response: Any = None
    query: type[msgspec.Struct] | None = None
    body: type[msgspec.Struct] | None = None
    #: the body is any JSON value, passed as the argument `raw_body_argument`
    raw_body_argument: str | None = None
    #: how `raw_body_argument` travels: "json" (any JSON value) or "bytes" (as they are)
    raw_body: Literal["json", "bytes"] = "json"
    #: the answer is the body's bytes as they are, not JSON
    raw_answer: bool = False
    #: the official message of an error status no other rule covers: `<failure>. Status code:
    #: N, body: B`, a plain `RoomException` (project storage, billing)
    failure: str | None = None
    #: whether the official client sends `Authorization` (two routes do not)
    auth: bool = True
    aliases: tuple[str, ...] = ()
    #: an official override of the 404 message (`RoomException("room not found")`)
    not_found: str | None = None
    #: a 404 answers None instead of raising (`get_project_settings_document`)
    none_when_missing: bool = False
    #: arguments sent as headers: (header name, argument name)
    header_arguments: tuple[tuple[str, str], ...] = ()
    #: what an invalid answer is called in the official error ("Invalid room payload: …");
    #: default: the response model's name
    payload_noun: str | None = None
    segments: tuple[str, ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.verb not in VERBS:
            raise ValueError(f"{self.name}: unknown verb {self.verb!r}")
        if not self.path.startswith("/"):
            raise ValueError(f"{self.name}: a path starts with '/'")
        object.__setattr__(self, "segments", tuple(self.path.strip("/").split("/")) if self.path != "/" else ())
        names = self.path_parameters
        if len(set(names)) != len(names):
            raise ValueError(f"{self.name}: a path parameter appears twice")
        if self.query is not None and set(names) & set(self.query.__struct_fields__):
            raise ValueError(f"{self.name}: a path parameter is also a query parameter")

    @property
    def path_parameters(self) -> tuple[str, ...]:
        return tuple(m.group(1) for s in self.segments if (m := _PARAMETER.match(s)))

    @property
    def arguments(self) -> tuple[str, ...]:
        """Every keyword argument the route takes (path, query, body)."""
        names = list(self.path_parameters) + [argument for _, argument in self.header_arguments]
        for struct in (self.query, self.body):
            if struct is not None:
                names.extend(struct.__struct_fields__)
        if self.raw_body_argument:
            names.append(self.raw_body_argument)
        return tuple(dict.fromkeys(names))  # a body may repeat a path parameter (`project_id`)

    # --- client side ----------------------------------------------------------------------

    def build(self, **arguments: Any) -> RestRequest:
        unknown = set(arguments) - set(self.arguments)
        if unknown:
            raise RouteError(f"{self.name}() got unexpected arguments {sorted(unknown)}")
        parts = []
        for segment in self.segments:
            match = _PARAMETER.match(segment)
            if match is None:
                parts.append(segment)
                continue
            value = arguments.get(match.group(1))
            if not isinstance(value, str) or not value:
                raise RouteError(f"{self.name}(): {match.group(1)} must be a non-empty string")
            parts.append(quote(value, safe="") + (match.group(2) or ""))
        query: dict[str, str] = {}
        if self.query is not None:
            query = encode_query(_construct(self.name, self.query, arguments))
        body: bytes | None = None
        content_type = JSON
        if self.body is not None:
            body = msgspec.json.encode(_construct(self.name, self.body, arguments))
        elif self.raw_body_argument is not None and self.raw_body == "bytes":
            data = arguments.get(self.raw_body_argument)
            if not isinstance(data, (bytes, bytearray, memoryview)):
                raise RouteError(f"{self.name}(): {self.raw_body_argument} must be bytes")
            body, content_type = bytes(data), OCTET_STREAM
        elif self.raw_body_argument is not None:
            body = msgspec.json.encode(arguments.get(self.raw_body_argument))
        headers = []
        for header, argument in self.header_arguments:
            value = arguments.get(argument)
            if not isinstance(value, str) or not value:
                raise RouteError(f"{self.name}(): {argument} must be a non-empty string")
            headers.append((header, value))
        return RestRequest(self.verb, "/" + "/".join(parts), query, body, self.auth, content_type, tuple(headers))

    # --- server side ----------------------------------------------------------------------

    def parse(
        self, path_arguments: Mapping[str, str], query: Mapping[str, str], body: bytes | None, headers: Mapping[str, str] | None = None
    ) -> dict[str, Any]:
        """The keyword arguments of a request (`RouteError` naming the field when it does not
        fit); `headers` by lower-case name."""
        arguments: dict[str, Any] = dict(path_arguments)
        for header, argument in self.header_arguments:
            value = (headers or {}).get(header.lower(), "").strip()
            if not value:
                raise RouteError(f"the {header} header is required")
            arguments[argument] = value
        if self.query is not None:
            known = set(self.query.__struct_fields__)
            unknown = set(query) - known
            if unknown:
                raise RouteError(f"unknown query parameter {sorted(unknown)[0]!r}")
            try:
                parsed = msgspec.convert(dict(query), self.query, strict=False)
            except msgspec.ValidationError as error:
                raise RouteError(f"query: {error}") from None
            arguments.update(_fields(parsed))
        elif query:
            raise RouteError(f"unknown query parameter {sorted(query)[0]!r}")
        if self.body is not None:
            try:
                parsed = decode_bounded(body or b"{}", self.body)
            except msgspec.ValidationError as error:
                raise RouteError(f"body: {error}") from None
            except msgspec.DecodeError as error:
                raise RouteError(f"body is not JSON: {error}") from None
            for name, value in _fields(parsed).items():
                if name in path_arguments and value != path_arguments[name]:
                    raise RouteError(f"body: {name} {value!r} differs from the path's {path_arguments[name]!r}")
                arguments[name] = value
        elif self.raw_body_argument is not None and self.raw_body == "bytes":
            arguments[self.raw_body_argument] = body or b""
        elif self.raw_body_argument is not None:
            try:
                arguments[self.raw_body_argument] = decode_bounded(body or b"null")
            except msgspec.DecodeError as error:
                raise RouteError(f"body is not JSON: {error}") from None
        return arguments


def _construct(route: str, struct: type[msgspec.Struct], arguments: Mapping[str, Any]) -> msgspec.Struct:
    """The Struct of the given arguments. None for a field that is sent only when given
    (default UNSET) means not given, as in the official client."""
    defaults = {info.name: info.default for info in msgspec.structs.fields(struct)}
    given = {
        name: arguments[name]
        for name in struct.__struct_fields__
        if name in arguments and not (arguments[name] is None and defaults.get(name) is msgspec.UNSET)
    }
    try:
        return msgspec.convert(given, struct, from_attributes=False)
    except msgspec.ValidationError as error:
        raise RouteError(f"{route}(): {error}") from None


def _fields(value: msgspec.Struct) -> dict[str, Any]:
    return {name: getattr(value, name) for name in value.__struct_fields__ if getattr(value, name) is not msgspec.UNSET}


def encode_query(value: msgspec.Struct) -> dict[str, str]:
    """Query strings as the official client writes them: given values only, `str()` of each
    (booleans as `true`/`false`)."""
    query: dict[str, str] = {}
    for name in value.__struct_fields__:
        item = getattr(value, name)
        if item is None or item is msgspec.UNSET:
            continue
        query[name] = ("true" if item else "false") if isinstance(item, bool) else str(item)
    return query


class RouteTable:
    """All routes; `match(verb, path)` finds the one a request is for. A literal segment wins
    over a parameter at the same place (`sessions/active` over `sessions/{session_id}`), and a
    parameter with a suffix over a bare one (`{version_id}:access` over `{version_id}`)."""

    def __init__(self, routes: Iterable[Route]) -> None:
        self.routes: dict[str, Route] = {}
        for route in routes:
            for name in (route.name, *route.aliases):
                if name in self.routes:
                    raise ValueError(f"two routes named {name!r}")
                self.routes[name] = route
        seen: dict[tuple[str, tuple[str, ...]], str] = {}
        for route in self.unique():
            shape = (route.verb, tuple("{}" + (m.group(2) or "") if (m := _PARAMETER.match(s)) else s for s in route.segments))
            if shape in seen:
                raise ValueError(f"{route.name} and {seen[shape]} have the same verb and path shape")
            seen[shape] = route.name

    def unique(self) -> list[Route]:
        return list({id(route): route for route in self.routes.values()}.values())

    def __getitem__(self, name: str) -> Route:
        return self.routes[name]

    def match(self, verb: str, path: str) -> tuple[Route, dict[str, str]] | None:
        """The route for `verb` and a percent-encoded `path`, with its decoded path arguments;
        None when no route has this path (a route with this path and another verb is found by
        `allowed_verbs`)."""
        segments = _split(path)
        best: tuple[tuple[int, ...], Route, dict[str, str]] | None = None
        for route in self.unique():
            if route.verb != verb or len(route.segments) != len(segments):
                continue
            found = _bind(route, segments)
            if found is None:
                continue
            rank = tuple(_specificity(s) for s in route.segments)
            if best is None or rank > best[0]:
                best = (rank, route, found)
        return None if best is None else (best[1], best[2])

    def allowed_verbs(self, path: str) -> list[str]:
        segments = _split(path)
        return sorted({r.verb for r in self.unique() if len(r.segments) == len(segments) and _bind(r, segments) is not None})


def _specificity(segment: str) -> int:
    """A literal segment beats a parameter with a suffix (`{id}:access`), which beats a bare one."""
    match = _PARAMETER.match(segment)
    return 2 if match is None else 1 if match.group(2) else 0


def _split(path: str) -> list[str]:
    stripped = path.split("?", 1)[0].strip("/")
    return stripped.split("/") if stripped else []


def _bind(route: Route, segments: list[str]) -> dict[str, str] | None:
    bound: dict[str, str] = {}
    for template, raw in zip(route.segments, segments):
        match = _PARAMETER.match(template)
        if match is None:
            if raw != template:
                return None
            continue
        suffix = match.group(2) or ""
        if not raw.endswith(suffix):
            return None
        value = unquote(raw[: len(raw) - len(suffix)])
        if not value:
            return None
        bound[match.group(1)] = value
    return bound


__all__ = ["JSON", "OCTET_STREAM", "RestRequest", "Route", "RouteError", "RouteTable", "VERBS", "encode_query"]
