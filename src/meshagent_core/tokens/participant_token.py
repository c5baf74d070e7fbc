"""Participant tokens: the JWT a participant presents to join a room (protocol/tokens.md §2, §3, §6)."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import jwt
import msgspec

from .api_keys import parse_api_key
from .jws import decode_jwt, encode_jwt
from .scopes import ApiScope

# The `meshagent-api` version whose tokens we produce; written to the `version` claim.
LIBRARY_VERSION = "0.56.0"

ENV_API_KEY = "MESHAGENT_API_KEY"
ENV_SECRET = "MESHAGENT_SECRET"

INVALID_PAYLOAD_MESSAGE = "JWT payload is not a valid participant token"

logger = logging.getLogger("meshagent_core.tokens")


class ParticipantGrant(msgspec.Struct, kw_only=True):
    """One `{"name": …, "scope": …}` grant of a participant token.

    The scope of an `api` grant is an `ApiScope` (a dict given here is validated into one);
    every other scope is kept as its raw JSON value (usually a string).
    """

    name: str
    scope: Any = None

    def __post_init__(self) -> None:
        if self.name == "api" and isinstance(self.scope, Mapping):
            self.scope = ApiScope.from_json(self.scope)

    def to_json(self) -> dict[str, Any]:
        """The wire form; an `ApiScope` leaves out defaults and unset families."""
        scope = self.scope.to_json() if isinstance(self.scope, ApiScope) else self.scope
        return {"name": self.name, "scope": scope}

    @staticmethod
    def from_json(data: Any) -> ParticipantGrant:
        """Parse a wire grant; raises `ValueError` when it is malformed."""
        if not isinstance(data, Mapping):
            raise ValueError("participant grant must be a JSON object")
        if "name" not in data:
            raise ValueError("participant grant is missing required field: name")
        if "scope" not in data:
            raise ValueError("participant grant is missing required field: scope")
        name = data["name"]
        if not isinstance(name, str):
            raise ValueError("participant grant field must be a string: name")
        scope = data["scope"]
        if name == "api":
            scope = ApiScope.from_json(scope)
        return ParticipantGrant(name=name, scope=scope)


class ParticipantToken:
    """The claims of a participant JWT: identity, project, signing key id and grants.

    `version` defaults to `LIBRARY_VERSION`; set it to `None` afterwards to leave the claim
    out. `extra_payload` holds any other claims (`iat`, custom ones, and `exp` after
    decoding) and is written first, in order.
    """

    def __init__(
        self,
        *,
        name: str,
        project_id: str | None = None,
        api_key_id: str | None = None,
        grants: list[ParticipantGrant] | None = None,
        extra_payload: dict[str, Any] | None = None,
        version: str | None = None,
    ) -> None:
        self.name = name
        self.project_id = project_id
        self.api_key_id = api_key_id
        self.grants: list[ParticipantGrant] = [] if grants is None else grants
        self.extra_payload: dict[str, Any] | None = extra_payload
        self.version: str | None = LIBRARY_VERSION if version is None else version

    def __repr__(self) -> str:
        return (
            f"ParticipantToken(name={self.name!r}, project_id={self.project_id!r}, "
            f"api_key_id={self.api_key_id!r}, grants={self.grants!r}, "
            f"extra_payload={self.extra_payload!r}, version={self.version!r})"
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ParticipantToken):
            return NotImplemented
        return self.to_json() == other.to_json()

    __hash__ = None  # type: ignore[assignment]  # mutable

    # -- grants -------------------------------------------------------------------------

    @property
    def role(self) -> str:
        """The scope of the first `role` grant that is not `"user"`, else `"user"`."""
        for grant in self.grants:
            if grant.name == "role" and grant.scope != "user":
                return grant.scope  # type: ignore[no-any-return]
        return "user"

    @property
    def is_user(self) -> bool:
        """True when no `role` grant names a role other than `"user"`."""
        return not any(g.name == "role" and g.scope != "user" for g in self.grants)

    def add_role_grant(self, role: str) -> None:
        """Add a `role` grant (`user`, `agent`, `tool`, …)."""
        self.grants.append(ParticipantGrant(name="role", scope=role))

    def add_room_grant(self, room_name: str) -> None:
        """Add a `room` grant: the room this token may join."""
        self.grants.append(ParticipantGrant(name="room", scope=room_name))

    def add_site_grant(self, room_name: str) -> None:
        """Add a `site` grant for a room's site."""
        self.grants.append(ParticipantGrant(name="site", scope=room_name))

    def add_agent_grant(self, agent_name: str) -> None:
        """Add an `agent` grant for a managed agent."""
        self.grants.append(ParticipantGrant(name="agent", scope=agent_name))

    def add_tunnel_grant(self, ports: Iterable[str | int]) -> None:
        """Add a `tunnel_ports` grant: the ports joined with `,` (e.g. `"8080,9000"`).

        Unlike the official helper, integer ports are accepted too.
        """
        scope = ",".join(str(port) for port in ports)
        self.grants.append(ParticipantGrant(name="tunnel_ports", scope=scope))

    def add_api_grant(self, grant: ApiScope) -> None:
        """Add the `api` grant; raises `ValueError` if the token already has one."""
        if any(g.name == "api" for g in self.grants):
            raise ValueError("can only have a single api grant")
        self.grants.append(ParticipantGrant(name="api", scope=grant))

    def grant_scope(self, name: str) -> Any:
        """The scope of the first grant called `name`, or `None`."""
        for grant in self.grants:
            if grant.name == name:
                return grant.scope
        return None

    def get_api_grant(self) -> ApiScope | None:
        """The `ApiScope` of the `api` grant, or `None` (no implicit permissions)."""
        scope = self.grant_scope("api")
        return scope if isinstance(scope, ApiScope) else None

    # -- JSON -----------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        """The claims: `extra_payload`, then `name`, `grants`, `sub`?, `kid`?, `version`?."""
        claims: dict[str, Any] = dict(self.extra_payload or {})
        claims["name"] = self.name
        claims["grants"] = [grant.to_json() for grant in self.grants]
        if self.project_id is not None:
            claims["sub"] = self.project_id
        if self.api_key_id is not None:
            claims["kid"] = self.api_key_id
        if self.version is not None:
            claims["version"] = self.version
        return claims

    @staticmethod
    def from_json(data: Any) -> ParticipantToken:
        """Build a token from its claims; raises `ValueError` when they are malformed.

        `name` must be a non-empty string and `grants` a list. `sub` becomes `project_id`,
        `kid` `api_key_id`, a missing `version` means `LIBRARY_VERSION`; every other claim
        is kept in `extra_payload`.
        """
        if not isinstance(data, Mapping):
            raise ValueError("participant token must be a JSON object")
        claims = dict(data)
        for required in ("name", "grants"):
            if required not in claims:
                raise ValueError(f"participant token is missing required field: {required}")
        name = claims.pop("name")
        grants = claims.pop("grants")
        if not isinstance(name, str) or name.strip() == "":
            raise ValueError("participant token field must be a non-empty string: name")
        if not isinstance(grants, list):
            raise ValueError("participant token field must be a list: grants")
        project_id = claims.pop("sub", None)
        api_key_id = claims.pop("kid", None)
        version = claims.pop("version", None)
        for field, value in (("sub", project_id), ("kid", api_key_id), ("version", version)):
            if value is not None and not isinstance(value, str):
                raise ValueError(f"participant token field must be a string: {field}")
        return ParticipantToken(
            name=name,
            project_id=project_id,
            api_key_id=api_key_id,
            grants=[ParticipantGrant.from_json(grant) for grant in grants],
            extra_payload=claims,
            version=version,
        )

    # -- JWT ------------------------------------------------------------------------------

    def to_jwt(
        self,
        *,
        token: str | None = None,
        expiration: datetime | int | None = None,
        api_key: str | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> str:
        """Sign the token as an HS256 JWT, byte-identical to the official client.

        Key choice: `api_key` (an `ma-…` string) signs with its secret and replaces `kid` and
        `sub` by the key's ids; else `token` (a bare secret) signs and keeps `api_key_id` as
        `kid`; with neither, `MESHAGENT_API_KEY` from `environ` (default `os.environ`) acts as
        `api_key`, else `MESHAGENT_SECRET` signs and `kid` is dropped. `expiration` (a
        datetime, naive = UTC, or UNIX seconds) becomes `exp`; without it the token never
        expires. Raises `ValueError` when there is no key or the API key is malformed.
        """
        has_api_grant = any(grant.name == "api" for grant in self.grants)
        if not has_api_grant and self.version is not None and self.version > "0.3.5":
            logger.warning(
                "participant token %r has no api grant: it cannot call the room API "
                "(use add_api_grant)",
                self.name,
            )
        env = os.environ if environ is None else environ
        extra: dict[str, Any] = dict(self.extra_payload or {})
        if expiration is not None:
            extra["exp"] = expiration
        claims = self.to_json()
        if api_key is None and token is None:
            api_key = env.get(ENV_API_KEY)
        if api_key is not None:
            parsed = parse_api_key(api_key)
            token = parsed.secret
            claims["kid"] = parsed.id
            claims["sub"] = parsed.project_id
        elif token is None:
            claims.pop("kid", None)
            token = env.get(ENV_SECRET)
        if token is None:
            raise ValueError(
                f"no signing key: pass token= or api_key=, or set {ENV_API_KEY} or {ENV_SECRET}"
            )
        # Same merge as the official client, so extra claims keep their first position.
        return encode_jwt({**extra, **claims}, token)

    @staticmethod
    def from_jwt(
        jwt_str: str,
        *,
        token: str | None = None,
        validate: bool = True,
        now: float | None = None,
        leeway: float = 0,
        environ: Mapping[str, str] | None = None,
    ) -> ParticipantToken:
        """Verify and decode a participant JWT.

        The secret is `token`, else `MESHAGENT_SECRET` from `environ` (default
        `os.environ`); the `kid` claim is not used to pick it (see `verify_participant_jwt`).
        `now` is the current UNIX time for the `exp`/`nbf`/`iat` checks: this module never
        reads the clock, so pass it to reject expired tokens (`now=None` skips the time
        comparisons). `validate=False` checks nothing.

        Raises `jwt.InvalidSignatureError`, `jwt.ExpiredSignatureError`, other
        `jwt.InvalidTokenError`s from the checks, `jwt.InvalidTokenError("JWT payload is not
        a valid participant token")` for malformed claims, and `ValueError` when `validate`
        is set and no secret is available.
        """
        if token is None:
            token = (os.environ if environ is None else environ).get(ENV_SECRET)
        if validate and token is None:
            raise ValueError(f"no secret to verify the token: pass token= or set {ENV_SECRET}")
        claims = decode_jwt(jwt_str, token, verify=validate, now=now, leeway=leeway)
        return participant_from_claims(claims)


def participant_from_claims(claims: Mapping[str, Any]) -> ParticipantToken:
    """`ParticipantToken.from_json` for a decoded JWT payload: malformed claims raise
    `jwt.InvalidTokenError("JWT payload is not a valid participant token")`."""
    try:
        return ParticipantToken.from_json(claims)
    except (KeyError, TypeError, ValueError) as exc:
        raise jwt.InvalidTokenError(INVALID_PAYLOAD_MESSAGE) from exc
