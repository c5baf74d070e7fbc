"""The control plane's store of OAuth clients, authorization codes and issued tokens
(protocol/rest.md §15).

A client's secret is shown once, by `create_oauth_client`; `control.db` keeps only its scrypt
hash with a random salt (`hash_secret`). Codes and tokens are random strings kept as SHA-256
digests (they carry 256 bits of randomness, so a slow hash adds nothing).

`live` holds the unexpired access tokens, by digest, in memory (loaded from `control.db` when
the store is made, updated after each committed mutation), so that a REST bearer is checked
without a database round trip (`access_token`); deleting a client revokes its codes and tokens.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import sqlite3
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

import msgspec

from meshagent_core.rest.oauth import GRANT_TYPES, SCOPES, OAuthClient

from .common import ControlError, Forbidden, NotFound, now_iso, require_project

if TYPE_CHECKING:
    from pathlib import Path

    from .plane import ControlPlane

#: Append-only: MIGRATIONS[n] takes this component from schema version n to n + 1.
MIGRATIONS: list[tuple[str, ...]] = [
    (
        """CREATE TABLE oauth_clients (
            client_id TEXT PRIMARY KEY,
            project_id TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
            secret_hash TEXT NOT NULL,
            grant_types TEXT NOT NULL,
            response_types TEXT NOT NULL,
            redirect_uris TEXT NOT NULL,
            scope TEXT NOT NULL,
            metadata TEXT NOT NULL,
            official INTEGER NOT NULL,
            created_at TEXT NOT NULL
        )""",
        """CREATE TABLE oauth_codes (
            digest TEXT PRIMARY KEY,
            client_id TEXT NOT NULL REFERENCES oauth_clients(client_id) ON DELETE CASCADE,
            redirect_uri TEXT NOT NULL,
            scope TEXT NOT NULL,
            code_challenge TEXT,
            code_challenge_method TEXT,
            expires_at REAL NOT NULL
        )""",
        """CREATE TABLE oauth_tokens (
            digest TEXT PRIMARY KEY,
            kind TEXT NOT NULL,
            client_id TEXT NOT NULL REFERENCES oauth_clients(client_id) ON DELETE CASCADE,
            project_id TEXT NOT NULL,
            scope TEXT NOT NULL,
            public INTEGER NOT NULL,
            expires_at REAL NOT NULL
        )""",
    ),
]

ACCESS_PREFIX = "mat-"
REFRESH_PREFIX = "mrt-"
ACCESS_LIFETIME = 3600
REFRESH_LIFETIME = 30 * 24 * 3600
CODE_LIFETIME = 600
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}
_COLUMNS = "client_id, project_id, grant_types, response_types, redirect_uris, scope, metadata, official"


class OAuthError(ControlError):
    """A refusal of the token endpoint, as RFC 6749 §5.2 words it (`error` is its code)."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.status = status
        self.code = error


def hash_secret(secret: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(secret.encode(), salt=salt, dklen=32, **_SCRYPT)
    return "scrypt$" + base64.b64encode(salt).decode() + "$" + base64.b64encode(digest).decode()


def secret_matches(secret: str, stored: str) -> bool:
    _, salt, digest = stored.split("$")
    found = hashlib.scrypt(secret.encode(), salt=base64.b64decode(salt), dklen=32, **_SCRYPT)
    return hmac.compare_digest(found, base64.b64decode(digest))


def digest_of(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class LiveToken:
    client_id: str
    project_id: str
    scope: str
    expires_at: float


@dataclass(frozen=True)
class IssuedTokens:
    access_token: str
    expires_in: int
    scope: str
    refresh_token: str | None


def _client(row: tuple[Any, ...], secret: str | None = None) -> OAuthClient:
    client_id, project_id, grant_types, response_types, redirect_uris, scope, metadata, official = row
    return OAuthClient(
        client_id=client_id,
        client_secret=secret,
        grant_types=msgspec.json.decode(grant_types),
        response_types=msgspec.json.decode(response_types),
        redirect_uris=msgspec.json.decode(redirect_uris),
        scope=scope,
        project_id=project_id,
        metadata=msgspec.json.decode(metadata),
        official=bool(official),
    )


def _json(value: Any) -> str:
    return msgspec.json.encode(value).decode()


def check_client_fields(fields: dict[str, Any]) -> dict[str, Any]:
    """The given fields as columns (400 naming the field that is wrong)."""
    columns: dict[str, Any] = {}
    for name in ("grant_types", "response_types", "redirect_uris"):
        if name in fields:
            columns[name] = _json(fields[name])
    unknown = set(fields.get("grant_types", ())) - set(GRANT_TYPES)
    if unknown:
        raise ControlError(f"grant_types: {sorted(unknown)[0]!r} is not served by this server (it serves {', '.join(GRANT_TYPES)})")
    if "metadata" in fields:
        metadata = fields["metadata"] or {}
        if not all(isinstance(value, str) for value in metadata.values()):
            raise ControlError("metadata: the values must be strings")
        columns["metadata"] = _json(metadata)
    if "scope" in fields:
        unknown = sorted(set(fields["scope"].split()) - SCOPES)
        if unknown:
            raise ControlError(f"scope: {unknown[0]!r} is not an OAuth scope of MeshAgent")
        columns["scope"] = " ".join(fields["scope"].split())
    if "official" in fields:
        columns["official"] = int(fields["official"])
    return columns


def _require_client(db: sqlite3.Connection, project_id: str, client_id: str) -> tuple[Any, ...]:
    require_project(db, project_id)
    row = db.execute(f"SELECT {_COLUMNS} FROM oauth_clients WHERE project_id = ? AND client_id = ?", (project_id, client_id)).fetchone()
    if row is None:
        raise NotFound(f"oauth client {client_id!r} does not exist")
    return row  # type: ignore[no-any-return]


def narrowed_scope(requested: str | None, allowed: str) -> str:
    """The scope granted: the requested scopes if the client may have each, else all it may."""
    if not requested:
        return allowed
    extra = set(requested.split()) - set(allowed.split())
    if extra:
        raise OAuthError("invalid_scope", f"the client may not ask for {sorted(extra)[0]!r}")
    return " ".join(requested.split())


class OauthStore:
    """OAuth clients, codes and tokens in `control.db`, and `live`, the access tokens valid now."""

    def __init__(self, plane: "ControlPlane") -> None:
        self.plane = plane
        self.live: dict[str, LiveToken] = {}
        _load_live(self.live, plane.store.path, plane.config.clock())

    # --- clients ----------------------------------------------------------------------------

    async def create_client(self, project_id: str, fields: dict[str, Any]) -> OAuthClient:
        """A new client; its answer carries the secret, which is never shown again."""
        columns = check_client_fields(fields)
        client_id, secret = secrets.token_urlsafe(24), secrets.token_urlsafe(32)
        columns.update(client_id=client_id, project_id=project_id, secret_hash=hash_secret(secret), created_at=now_iso())

        def work(db: sqlite3.Connection) -> tuple[Any, ...]:
            require_project(db, project_id)
            db.execute(f"INSERT INTO oauth_clients ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})", tuple(columns.values()))
            return db.execute(f"SELECT {_COLUMNS} FROM oauth_clients WHERE client_id = ?", (client_id,)).fetchone()  # type: ignore[no-any-return]

        return _client(await self.plane.run(work), secret)

    async def get_client(self, project_id: str, client_id: str) -> OAuthClient:
        return _client(await self.plane.run(lambda db: _require_client(db, project_id, client_id)))

    async def list_clients(self, project_id: str, *, count: int, offset: int) -> tuple[list[OAuthClient], int]:
        """One page by creation (clients, how many the project has)."""

        def work(db: sqlite3.Connection) -> tuple[list[OAuthClient], int]:
            require_project(db, project_id)
            total = db.execute("SELECT COUNT(*) FROM oauth_clients WHERE project_id = ?", (project_id,)).fetchone()[0]
            rows = db.execute(
                f"SELECT {_COLUMNS} FROM oauth_clients WHERE project_id = ? ORDER BY created_at, client_id LIMIT ? OFFSET ?", (project_id, count, offset)
            ).fetchall()
            return [_client(row) for row in rows], total

        return await self.plane.run(work)

    async def update_client(self, project_id: str, client_id: str, fields: dict[str, Any]) -> None:
        columns = check_client_fields(fields)

        def work(db: sqlite3.Connection) -> None:
            _require_client(db, project_id, client_id)
            if columns:
                assignments = ", ".join(f"{column} = ?" for column in columns)
                db.execute(f"UPDATE oauth_clients SET {assignments} WHERE client_id = ?", (*columns.values(), client_id))

        await self.plane.run(work)

    async def delete_client(self, project_id: str, client_id: str) -> None:
        """Deletes the client with its codes and tokens (refused from then on)."""

        def work(db: sqlite3.Connection) -> None:
            _require_client(db, project_id, client_id)
            db.execute("DELETE FROM oauth_clients WHERE client_id = ?", (client_id,))

        await self.plane.run(work)
        self._forget(lambda token: token.client_id == client_id)

    # --- the authorization endpoint ----------------------------------------------------------

    async def authorize(
        self, client_id: str, *, approver_project: str | None, redirect_uri: str | None, scope: str | None, challenge: str | None, method: str | None, now: float
    ) -> tuple[str, str]:
        """A code for the client, approved by a key of `approver_project` (None: the owner's
        key, of every project): (the redirect URI it goes to, the code)."""
        if challenge is not None and (method or "plain") not in ("S256", "plain"):
            raise ControlError(f"code_challenge_method {method!r} is not S256 or plain")
        code = secrets.token_urlsafe(32)

        def work(db: sqlite3.Connection) -> str:
            row = db.execute("SELECT project_id, redirect_uris, scope, response_types FROM oauth_clients WHERE client_id = ?", (client_id,)).fetchone()
            if row is None:
                raise NotFound(f"oauth client {client_id!r} does not exist")
            project_id, redirect_uris, allowed, response_types = row
            if approver_project is not None and approver_project != project_id:
                raise Forbidden(f"the API key belongs to another project than the client {client_id!r}'s")
            uris = msgspec.json.decode(redirect_uris)
            if "code" not in msgspec.json.decode(response_types):
                raise ControlError(f"response_type: the client {client_id!r} may not ask for a code")
            target = redirect_uri if redirect_uri is not None else (uris[0] if len(uris) == 1 else None)
            if target is None or target not in uris:
                raise ControlError(f"redirect_uri {redirect_uri!r} is not one of the client's")
            granted = narrowed_scope(scope, allowed)
            db.execute(
                "INSERT INTO oauth_codes (digest, client_id, redirect_uri, scope, code_challenge, code_challenge_method, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (digest_of(code), client_id, target, granted, challenge, (method or "plain") if challenge else None, now + CODE_LIFETIME),
            )
            return target  # type: ignore[no-any-return]

        return await self.plane.run(work), code

    # --- the token endpoint ------------------------------------------------------------------

    async def exchange(self, form: dict[str, str], *, now: float) -> IssuedTokens:
        """The tokens of a token request (`OAuthError` as RFC 6749 §5.2 says)."""
        grant_type = form["grant_type"]
        if grant_type not in GRANT_TYPES:
            raise OAuthError("unsupported_grant_type", f"grant_type {grant_type!r} is not one of {', '.join(GRANT_TYPES)}")
        client_id = form.get("client_id") or ""
        if not client_id:
            raise OAuthError("invalid_client", "client_id is missing", 401)

        def work(db: sqlite3.Connection) -> tuple[IssuedTokens, LiveToken]:
            row = db.execute("SELECT project_id, secret_hash, grant_types, scope FROM oauth_clients WHERE client_id = ?", (client_id,)).fetchone()
            if row is None:
                raise OAuthError("invalid_client", f"unknown client {client_id!r}", 401)
            project_id, secret_hash, grant_types, allowed = row
            secret = form.get("client_secret")
            if secret is not None and not secret_matches(secret, secret_hash):
                raise OAuthError("invalid_client", "the client secret is wrong", 401)
            if grant_type not in msgspec.json.decode(grant_types):
                raise OAuthError("unauthorized_client", f"the client may not use grant_type {grant_type!r}")
            authenticated = secret is not None
            if grant_type == "client_credentials":
                if not authenticated:
                    raise OAuthError("invalid_client", "client_credentials needs the client secret", 401)
                scope, public = narrowed_scope(form.get("scope"), allowed), False
            elif grant_type == "authorization_code":
                scope, public = _redeem_code(db, client_id, form, authenticated, now)
            else:
                scope, public = _redeem_refresh(db, client_id, form, authenticated, now)
            return _issue(db, client_id, project_id, scope, public, now, refresh=grant_type != "client_credentials")

        issued, live = await self.plane.run(work)
        self._forget(lambda token: token.expires_at <= now)  # those never used again since they expired
        self.live[digest_of(issued.access_token)] = live
        return issued

    async def revoke(self, token: str, client_id: str, secret: str | None) -> None:
        """RFC 7009: the client's token (access or refresh) is refused from now on; an unknown
        token is not an error."""
        digest = digest_of(token)

        def work(db: sqlite3.Connection) -> None:
            row = db.execute("SELECT secret_hash FROM oauth_clients WHERE client_id = ?", (client_id,)).fetchone()
            if row is None or (secret is not None and not secret_matches(secret, row[0])):
                raise OAuthError("invalid_client", "unknown client or wrong secret", 401)
            db.execute("DELETE FROM oauth_tokens WHERE digest = ? AND client_id = ?", (digest, client_id))

        await self.plane.run(work)
        if self.live.get(digest, None) is not None and self.live[digest].client_id == client_id:
            del self.live[digest]

    def access_token(self, token: str, now: float) -> LiveToken | None:
        """The live access token `token`, or None (unknown, revoked or expired)."""
        found = self.live.get(digest_of(token))
        if found is not None and found.expires_at <= now:
            self.live.pop(digest_of(token), None)
            return None
        return found

    def _forget(self, which: Callable[[LiveToken], bool]) -> None:
        for digest in [digest for digest, token in self.live.items() if which(token)]:
            del self.live[digest]


def _redeem_code(db: sqlite3.Connection, client_id: str, form: dict[str, str], authenticated: bool, now: float) -> tuple[str, bool]:
    code = form.get("code") or ""
    row = db.execute(
        "SELECT redirect_uri, scope, code_challenge, code_challenge_method, expires_at FROM oauth_codes WHERE digest = ? AND client_id = ?",
        (digest_of(code), client_id),
    ).fetchone()
    db.execute("DELETE FROM oauth_codes WHERE digest = ?", (digest_of(code),))  # a code is used once
    if row is None or row[4] <= now:
        raise OAuthError("invalid_grant", "the code is unknown, used or expired")
    redirect_uri, scope, challenge, method, _ = row
    if form.get("redirect_uri", redirect_uri) != redirect_uri:
        raise OAuthError("invalid_grant", "redirect_uri differs from the authorization request's")
    if challenge is not None:
        verifier = form.get("code_verifier") or ""
        expected = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode() if method == "S256" else verifier
        if not verifier or not hmac.compare_digest(expected, challenge):
            raise OAuthError("invalid_grant", "code_verifier does not match the code challenge")
    elif not authenticated:
        raise OAuthError("invalid_client", "a code without PKCE needs the client secret", 401)
    return scope, not authenticated


def _redeem_refresh(db: sqlite3.Connection, client_id: str, form: dict[str, str], authenticated: bool, now: float) -> tuple[str, bool]:
    digest = digest_of(form.get("refresh_token") or "")
    row = db.execute("SELECT scope, public, expires_at FROM oauth_tokens WHERE digest = ? AND kind = 'refresh' AND client_id = ?", (digest, client_id)).fetchone()
    if row is None or row[2] <= now:
        raise OAuthError("invalid_grant", "the refresh token is unknown, revoked or expired")
    scope, public, _ = row
    if not public and not authenticated:
        raise OAuthError("invalid_client", "this refresh token needs the client secret", 401)
    db.execute("DELETE FROM oauth_tokens WHERE digest = ?", (digest,))  # rotated: used once
    return narrowed_scope(form.get("scope"), scope), bool(public)


def _issue(db: sqlite3.Connection, client_id: str, project_id: str, scope: str, public: bool, now: float, *, refresh: bool) -> tuple[IssuedTokens, LiveToken]:
    access = ACCESS_PREFIX + secrets.token_urlsafe(32)
    refresh_token = REFRESH_PREFIX + secrets.token_urlsafe(32) if refresh else None
    rows = [(digest_of(access), "access", client_id, project_id, scope, int(public), now + ACCESS_LIFETIME)]
    if refresh_token is not None:
        rows.append((digest_of(refresh_token), "refresh", client_id, project_id, scope, int(public), now + REFRESH_LIFETIME))
    db.execute("DELETE FROM oauth_tokens WHERE expires_at <= ?", (now,))
    db.executemany("INSERT INTO oauth_tokens (digest, kind, client_id, project_id, scope, public, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
    return IssuedTokens(access, ACCESS_LIFETIME, scope, refresh_token), LiveToken(client_id, project_id, scope, now + ACCESS_LIFETIME)


def _load_live(live: dict[str, LiveToken], path: "Path", now: float) -> None:
    """The unexpired access tokens stored in `control.db`, if it has them yet."""
    if not path.exists():
        return
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = db.execute("SELECT digest, client_id, project_id, scope, expires_at FROM oauth_tokens WHERE kind = 'access' AND expires_at > ?", (now,)).fetchall()
        live.update({digest: LiveToken(client_id, project_id, scope, expires_at) for digest, client_id, project_id, scope, expires_at in rows})
    except sqlite3.OperationalError:  # no oauth_tokens table yet: migrations have not run
        pass
    finally:
        db.close()


__all__ = ["ACCESS_PREFIX", "MIGRATIONS", "IssuedTokens", "LiveToken", "OAuthError", "OauthStore", "hash_secret", "secret_matches"]
