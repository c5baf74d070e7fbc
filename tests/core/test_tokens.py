"""Participant JWTs: byte-identical signing, verification and errors (protocol/tokens.md §2, §3, §6)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
from datetime import UTC, datetime
from typing import Any

import jwt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from meshagent_core.testing import vectors
from meshagent_core.testing.strategies import participant_tokens
from meshagent_core.tokens import (
    LIBRARY_VERSION,
    ApiScope,
    ParticipantGrant,
    ParticipantToken,
    StorageGrant,
    StoragePathGrant,
    UnknownKeyIdError,
    decode_jwt,
    encode_jwt,
    parse_api_key,
    verify_participant_jwt,
)

TOKEN_VECTORS: dict[str, Any] = vectors.load("token_vectors")
PARTICIPANT_VECTORS: list[dict[str, Any]] = TOKEN_VECTORS["participant_tokens"]
NEGATIVE = TOKEN_VECTORS["negative_cases"]
BY_ID = {vector["id"]: vector for vector in PARTICIPANT_VECTORS}

SECRET = "vector-secret-0123456789abcdef0123456789"
NOW = 1_800_000_000  # 2027-01-15: after the vectors' iat, before their 2100 expiry
NO_ENV: dict[str, str] = {}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def sign_raw(header: bytes, payload: bytes, key: str = SECRET) -> str:
    """An HS256 token over arbitrary header/payload bytes (no JWT library involved)."""
    signing_input = b64url(header) + "." + b64url(payload)
    digest = hmac.new(key.encode(), signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + b64url(digest)


def sign_claims(claims: Any, key: str = SECRET, header: dict[str, Any] | None = None) -> str:
    header_bytes = json.dumps(header or {"alg": "HS256", "typ": "JWT"}, separators=(",", ":"))
    return sign_raw(header_bytes.encode(), json.dumps(claims, separators=(",", ":")).encode(), key)


def build_vector_token(vector: dict[str, Any]) -> ParticipantToken:
    inputs = vector["inputs"]
    token = ParticipantToken(
        name=inputs["name"],
        project_id=inputs.get("project_id"),
        api_key_id=inputs.get("api_key_id"),
        extra_payload=dict(inputs["extra_payload"]) if "extra_payload" in inputs else None,
        version=inputs.get("version"),
    )
    api_scopes = [g["scope"] for g in vector["claims"]["grants"] if g["name"] == "api"]
    for spec in inputs.get("grants", []):
        kind, _, value = spec.partition("=")
        if kind == "role":
            token.add_role_grant(value)
        elif kind == "room":
            token.add_room_grant(value)
        elif kind == "tunnel_ports":
            token.add_tunnel_grant(value.split(","))
        elif kind == "api" and value.startswith("ApiScope."):
            presets = {
                "ApiScope.agent_default()": ApiScope.agent_default(),
                "ApiScope.user_default()": ApiScope.user_default(),
            }
            token.add_api_grant(presets[value])
        elif kind == "api":
            token.add_api_grant(ApiScope.from_json(api_scopes[0]))
        else:  # pragma: no cover - a vector we do not know how to build
            raise AssertionError(spec)
    if "grants" not in inputs and api_scopes:
        token.add_api_grant(ApiScope.from_json(api_scopes[0]))
    return token


def mint_vector(vector: dict[str, Any]) -> str:
    to_jwt = vector["inputs"]["to_jwt"]
    expiration = datetime.fromisoformat(to_jwt["expiration"]) if "expiration" in to_jwt else None
    token = build_vector_token(vector)
    if "api_key" in to_jwt:
        return token.to_jwt(api_key=to_jwt["api_key"], expiration=expiration, environ=NO_ENV)
    return token.to_jwt(token=vector["signing_key"], expiration=expiration, environ=NO_ENV)


# -- vectors: signing ----------------------------------------------------------------------


@pytest.mark.parametrize("vector", PARTICIPANT_VECTORS, ids=lambda v: v["id"])
def test_vector_jwt_is_byte_identical(vector: dict[str, Any]) -> None:
    minted = mint_vector(vector)
    header, payload, _signature = minted.split(".")
    assert json.loads(b64url_decode(header)) == vector["header"]
    assert b64url_decode(payload).decode() == vector["payload_json_exact"]
    assert minted == vector["jwt"]


@pytest.mark.parametrize("vector", PARTICIPANT_VECTORS, ids=lambda v: v["id"])
def test_vector_signature_is_plain_hmac(vector: dict[str, Any]) -> None:
    header_json = json.dumps(vector["header"], separators=(",", ":")).encode()
    expected = sign_raw(header_json, vector["payload_json_exact"].encode(), vector["signing_key"])
    assert vector["jwt"] == expected
    assert encode_jwt(json.loads(vector["payload_json_exact"]), vector["signing_key"]) == expected


# -- vectors: verification -----------------------------------------------------------------


@pytest.mark.parametrize(
    "vector",
    [v for v in PARTICIPANT_VECTORS if v["verify_result_official"]["ok"]],
    ids=lambda v: v["id"],
)
def test_vector_decodes_like_official(vector: dict[str, Any]) -> None:
    expected = vector["verify_result_official"]
    decoded = ParticipantToken.from_jwt(vector["jwt"], token=vector["signing_key"], now=NOW)
    assert decoded.name == expected["name"]
    assert decoded.project_id == expected["project_id"]
    assert decoded.api_key_id == expected["api_key_id"]
    assert decoded.version == expected["version"]
    assert decoded.role == expected["role"]
    assert decoded.is_user == (expected["role"] == "user")
    assert decoded.extra_payload == expected["extra_payload"]
    assert [g.name for g in decoded.grants] == expected["grants"]
    # Re-serialising the decoded token gives back the exact claims.
    assert decoded.to_json() == vector["claims"]
    api = decoded.get_api_grant()
    api_claims = [g["scope"] for g in vector["claims"]["grants"] if g["name"] == "api"]
    assert (api is None) == (not api_claims)
    if api is not None:
        assert api.to_json() == api_claims[0]


def test_expired_vector_raises_with_explicit_now() -> None:
    vector = BY_ID["expired"]
    assert vector["verify_result_official"]["error_type"] == "jwt.exceptions.ExpiredSignatureError"
    with pytest.raises(jwt.ExpiredSignatureError) as info:
        ParticipantToken.from_jwt(vector["jwt"], token=vector["signing_key"], now=NOW)
    assert str(info.value) == vector["verify_result_official"]["error"]


def test_expiry_boundary_uses_given_now() -> None:
    vector = BY_ID["expired"]
    exp = vector["claims"]["exp"]
    ok = ParticipantToken.from_jwt(vector["jwt"], token=vector["signing_key"], now=exp - 1)
    assert ok.name == "late"
    with pytest.raises(jwt.ExpiredSignatureError):  # expired when exp <= now
        ParticipantToken.from_jwt(vector["jwt"], token=vector["signing_key"], now=exp)
    tolerant = ParticipantToken.from_jwt(
        vector["jwt"], token=vector["signing_key"], now=exp + 5, leeway=10
    )
    assert tolerant.extra_payload == {"iat": 1500000000, "exp": exp}


def test_now_none_skips_only_the_time_comparison() -> None:
    vector = BY_ID["expired"]
    decoded = ParticipantToken.from_jwt(vector["jwt"], token=vector["signing_key"], now=None)
    assert decoded.extra_payload == {"iat": 1500000000, "exp": 1577836800}
    # …but the signature is still checked.
    with pytest.raises(jwt.InvalidSignatureError):
        ParticipantToken.from_jwt(vector["jwt"], token="another-secret", now=None)


def test_wrong_secret_vector() -> None:
    case = NEGATIVE["wrong_secret_on_vector_1"]
    with pytest.raises(jwt.InvalidSignatureError) as info:
        ParticipantToken.from_jwt(case["jwt"], token=case["key"], now=NOW)
    assert case["result"]["error_type"] == "jwt.exceptions.InvalidSignatureError"
    assert str(info.value) == case["result"]["error"]


def test_missing_name_vector() -> None:
    case = NEGATIVE["missing_name_claim"]
    assert decode_jwt(case["jwt"], case["key"], now=NOW) == case["claims"]
    with pytest.raises(jwt.InvalidTokenError) as info:
        ParticipantToken.from_jwt(case["jwt"], token=case["key"], now=NOW)
    assert type(info.value) is jwt.InvalidTokenError
    assert str(info.value) == case["result"]["error"]
    assert isinstance(info.value.__cause__, ValueError)
    assert "missing required field: name" in str(info.value.__cause__)


def test_validate_false_checks_nothing() -> None:
    wrong = NEGATIVE["wrong_secret_on_vector_1"]
    assert ParticipantToken.from_jwt(wrong["jwt"], validate=False, environ=NO_ENV).name == "agent-1"
    expired = BY_ID["expired"]
    assert ParticipantToken.from_jwt(expired["jwt"], validate=False, now=NOW).name == "late"


# -- key choice (protocol/tokens.md §2.4) ---------------------------------------------------------------------

API_KEY = TOKEN_VECTORS["api_keys"][0]["encoded"]
PARSED_KEY = parse_api_key(API_KEY)


def keyed_token() -> ParticipantToken:
    token = ParticipantToken(name="n", project_id="own-project", api_key_id="own-kid")
    token.add_api_grant(ApiScope.agent_default())
    return token


def test_api_key_signs_and_replaces_kid_and_sub() -> None:
    minted = keyed_token().to_jwt(api_key=API_KEY, token="ignored-secret", environ=NO_ENV)
    claims = decode_jwt(minted, PARSED_KEY.secret, now=NOW)
    assert claims["kid"] == PARSED_KEY.id
    assert claims["sub"] == PARSED_KEY.project_id
    with pytest.raises(jwt.InvalidSignatureError):
        decode_jwt(minted, "ignored-secret", now=NOW)


def test_explicit_secret_keeps_kid_and_sub() -> None:
    claims = decode_jwt(keyed_token().to_jwt(token=SECRET, environ=NO_ENV), SECRET, now=NOW)
    assert (claims["kid"], claims["sub"]) == ("own-kid", "own-project")


def test_environment_api_key_is_used_when_nothing_is_passed() -> None:
    minted = keyed_token().to_jwt(environ={"MESHAGENT_API_KEY": API_KEY, "MESHAGENT_SECRET": "x"})
    claims = decode_jwt(minted, PARSED_KEY.secret, now=NOW)
    assert (claims["kid"], claims["sub"]) == (PARSED_KEY.id, PARSED_KEY.project_id)


def test_environment_secret_drops_kid() -> None:
    minted = keyed_token().to_jwt(environ={"MESHAGENT_SECRET": SECRET})
    claims = decode_jwt(minted, SECRET, now=NOW)
    assert "kid" not in claims
    assert claims["sub"] == "own-project"


def test_explicit_secret_wins_over_environment_api_key() -> None:
    minted = keyed_token().to_jwt(token=SECRET, environ={"MESHAGENT_API_KEY": "not-an-api-key"})
    assert decode_jwt(minted, SECRET, now=NOW)["sub"] == "own-project"


def test_process_environment_is_read_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MESHAGENT_API_KEY", raising=False)
    monkeypatch.setenv("MESHAGENT_SECRET", SECRET)
    minted = keyed_token().to_jwt()
    assert "kid" not in decode_jwt(minted, SECRET, now=NOW)
    assert ParticipantToken.from_jwt(minted, now=NOW).name == "n"


def test_no_key_at_all_raises() -> None:
    with pytest.raises(ValueError, match="no signing key"):
        keyed_token().to_jwt(environ=NO_ENV)
    with pytest.raises(ValueError, match="no secret"):
        ParticipantToken.from_jwt(BY_ID["minimal_no_api_no_exp"]["jwt"], environ=NO_ENV)
    with pytest.raises(ValueError, match="must not be empty"):
        keyed_token().to_jwt(token="", environ=NO_ENV)


def test_malformed_environment_api_key_raises_prefix_error() -> None:
    with pytest.raises(ValueError, match=r"^invalid api key: not-a\.\.\.$"):
        keyed_token().to_jwt(environ={"MESHAGENT_API_KEY": "not-an-api-key"})


# -- claim layout (protocol/tokens.md §2.3): expectations produced by meshagent-api 0.56.0 ----------------------

QUIRK_SECRET = "quirk-secret-0123456789abcdef0123456789"
# ParticipantToken(name="José ☃", project_id="p",
#   extra_payload={"name": "ignored", "iat": 1, "exp": 5, "custom": "é"}) + room "r",
# to_jwt(token=QUIRK_SECRET, expiration=2100-01-01Z): the extra `exp` wins over `expiration`,
# `name` keeps the first position, non-ASCII is escaped.
OFFICIAL_EXTRA_FIRST = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJuYW1lIjoiSm9zXHUwMGU5IFx1MjYwMyIsImlhdCI6MSwiZXhwIj"
    "o1LCJjdXN0b20iOiJcdTAwZTkiLCJncmFudHMiOlt7Im5hbWUiOiJyb29tIiwic2NvcGUiOiJyIn1dLCJzdWIiOiJwIi"
    "widmVyc2lvbiI6IjAuNTYuMCJ9.nBtZ-FJp33-Bn_ea4u5_-pW1vtb5668XUbLrM6YeIpg"
)
# ParticipantToken(name="k", api_key_id="own-kid", extra_payload={"kid": "from-extra"}).to_jwt()
# with only MESHAGENT_SECRET set: the object's kid is dropped, the extra one survives.
OFFICIAL_EXTRA_KID = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJraWQiOiJmcm9tLWV4dHJhIiwibmFtZSI6ImsiLCJncmFudHMiOlt"
    "dLCJ2ZXJzaW9uIjoiMC41Ni4wIn0.yfKyt7Gvpwf-jR9_9K9YvGO32xsoxHyBgXJePY37Q7M"
)
# ParticipantToken(name="n", project_id="p", api_key_id="own-kid")
#   .to_jwt(expiration=datetime(2030, 6, 1, 12, 30)) (naive = UTC) with only MESHAGENT_SECRET.
OFFICIAL_NAIVE_EXPIRY = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJleHAiOjE5MDY1NDc0MDAsIm5hbWUiOiJuIiwiZ3JhbnRzIjpbXSw"
    "ic3ViIjoicCIsInZlcnNpb24iOiIwLjU2LjAifQ.RkH65DAKn_8jqCZ7VaosypV6iR4js0Z7DBbsZnRNtOY"
)


def test_extra_payload_first_and_duplicates_keep_first_position() -> None:
    token = ParticipantToken(
        name="José ☃",
        project_id="p",
        extra_payload={"name": "ignored", "iat": 1, "exp": 5, "custom": "é"},
    )
    token.add_room_grant("r")
    expiration = datetime(2100, 1, 1, tzinfo=UTC)
    minted = token.to_jwt(token=QUIRK_SECRET, expiration=expiration, environ=NO_ENV)
    assert minted == OFFICIAL_EXTRA_FIRST
    assert "\\u00e9" in b64url_decode(minted.split(".")[1]).decode("ascii")


def test_extra_kid_survives_secret_only_signing() -> None:
    token = ParticipantToken(name="k", api_key_id="own-kid", extra_payload={"kid": "from-extra"})
    assert token.to_jwt(environ={"MESHAGENT_SECRET": QUIRK_SECRET}) == OFFICIAL_EXTRA_KID


def test_naive_expiration_is_utc() -> None:
    token = ParticipantToken(name="n", project_id="p", api_key_id="own-kid")
    minted = token.to_jwt(
        expiration=datetime(2030, 6, 1, 12, 30), environ={"MESHAGENT_SECRET": QUIRK_SECRET}
    )
    assert minted == OFFICIAL_NAIVE_EXPIRY
    as_int = token.to_jwt(expiration=1906547400, environ={"MESHAGENT_SECRET": QUIRK_SECRET})
    assert as_int == OFFICIAL_NAIVE_EXPIRY


def test_version_claim_can_be_cleared() -> None:
    token = ParticipantToken(name="v")
    assert token.version == LIBRARY_VERSION == "0.56.0"
    token.version = None
    claims = decode_jwt(token.to_jwt(token=SECRET, environ=NO_ENV), SECRET, now=NOW)
    assert claims == {"name": "v", "grants": []}
    # A token without `version` decodes as the library's own version.
    assert ParticipantToken.from_jwt(sign_claims(claims), token=SECRET, now=NOW).version == "0.56.0"


def test_missing_api_grant_only_warns(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="meshagent_core.tokens"):
        minted = ParticipantToken(name="bare").to_jwt(token=SECRET, environ=NO_ENV)
    assert minted == BY_ID["minimal_no_api_no_exp"]["jwt"]
    assert any("no api grant" in record.getMessage() for record in caplog.records)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="meshagent_core.tokens"):
        keyed_token().to_jwt(token=SECRET, environ=NO_ENV)
    assert not caplog.records


# -- bad tokens ----------------------------------------------------------------------------


def test_alg_none_is_rejected() -> None:
    claims = json.loads(BY_ID["minimal_no_api_no_exp"]["payload_json_exact"])
    header = b64url(b'{"alg":"none","typ":"JWT"}')
    unsigned = header + "." + b64url(json.dumps(claims).encode()) + "."
    with pytest.raises(jwt.InvalidAlgorithmError):
        ParticipantToken.from_jwt(unsigned, token=SECRET, now=NOW)
    # Even a "signature" made with the right secret does not help.
    with pytest.raises(jwt.InvalidAlgorithmError):
        ParticipantToken.from_jwt(
            sign_claims(claims, header={"alg": "none"}), token=SECRET, now=NOW
        )


@pytest.mark.parametrize("alg", ["HS384", "HS512", "RS256", "hs256", None])
def test_other_algorithms_are_rejected(alg: str | None) -> None:
    header = {"typ": "JWT"} if alg is None else {"alg": alg, "typ": "JWT"}
    forged = sign_claims({"name": "x", "grants": []}, header=header)
    with pytest.raises(jwt.InvalidAlgorithmError, match="alg value is not allowed"):
        ParticipantToken.from_jwt(forged, token=SECRET, now=NOW)


def test_crit_header_is_rejected() -> None:
    forged = sign_claims({"name": "x", "grants": []}, header={"alg": "HS256", "crit": ["b64"]})
    with pytest.raises(jwt.InvalidTokenError, match="critical"):
        ParticipantToken.from_jwt(forged, token=SECRET, now=NOW)


def test_tampered_payload_is_rejected() -> None:
    original = BY_ID["agent_default_explicit_secret"]
    header, payload, signature = original["jwt"].split(".")
    claims = json.loads(b64url_decode(payload))
    claims["name"] = "root"
    tampered = header + "." + b64url(json.dumps(claims, separators=(",", ":")).encode())
    with pytest.raises(jwt.InvalidSignatureError, match="Signature verification failed"):
        ParticipantToken.from_jwt(tampered + "." + signature, token=SECRET, now=NOW)


@given(position=st.integers(min_value=0), replacement=st.sampled_from("AQgwxyz_-0"))
def test_any_payload_change_is_rejected(position: int, replacement: str) -> None:
    header, payload, signature = BY_ID["agent_default_explicit_secret"]["jwt"].split(".")
    index = position % (len(payload) - 1)  # the last char may carry only padding bits
    if payload[index] == replacement:
        return
    changed = payload[:index] + replacement + payload[index + 1 :]
    with pytest.raises(jwt.InvalidTokenError):
        ParticipantToken.from_jwt(f"{header}.{changed}.{signature}", token=SECRET, now=NOW)


@pytest.mark.parametrize(
    "garbage",
    ["", "abc", "a.b", "a.b.c.d", "!!!.e30.sig", "e30.!!!.sig", "eyJhbGciOiJIUzI1NiJ9.e30.%%%"],
)
def test_malformed_compact_form_is_a_decode_error(garbage: str) -> None:
    with pytest.raises(jwt.DecodeError):
        ParticipantToken.from_jwt(garbage, token=SECRET, now=NOW)


def test_non_object_payload_is_a_decode_error() -> None:
    token = sign_raw(b'{"alg":"HS256","typ":"JWT"}', b'["name","grants"]')
    with pytest.raises(jwt.DecodeError, match="must be a json object"):
        ParticipantToken.from_jwt(token, token=SECRET, now=NOW)
    not_json = sign_raw(b'{"alg":"HS256","typ":"JWT"}', b"{name")
    with pytest.raises(jwt.DecodeError, match="Invalid payload string"):
        ParticipantToken.from_jwt(not_json, token=SECRET, now=NOW)


@pytest.mark.parametrize(
    "claims",
    [
        {"grants": []},
        {"name": "", "grants": []},
        {"name": "   ", "grants": []},
        {"name": 7, "grants": []},
        {"name": "x"},
        {"name": "x", "grants": {"name": "room"}},
        {"name": "x", "grants": ["room"]},
        {"name": "x", "grants": [{"name": "room"}]},
        {"name": "x", "grants": [{"scope": "r"}]},
        {"name": "x", "grants": [{"name": "api", "scope": "everything"}]},
        {"name": "x", "grants": [{"name": "api", "scope": None}]},
        {"name": "x", "grants": [{"name": "api", "scope": {"queues": {"send": "jobs"}}}]},
        {
            "name": "x",
            "grants": [{"name": "api", "scope": {"secrets": {"request_oauth_token": []}}}],
        },
        {"name": "x", "grants": [], "kid": 5},
        {"name": "x", "grants": [], "version": 1},
    ],
)
def test_malformed_participant_claims(claims: dict[str, Any]) -> None:
    with pytest.raises(jwt.InvalidTokenError) as info:
        ParticipantToken.from_jwt(sign_claims(claims), token=SECRET, now=NOW)
    assert type(info.value) is jwt.InvalidTokenError
    assert str(info.value) == "JWT payload is not a valid participant token"


@pytest.mark.parametrize(
    ("claims", "error", "message"),
    [
        ({"exp": "soon"}, jwt.DecodeError, "Expiration Time claim (exp) must be an integer."),
        ({"nbf": None}, jwt.DecodeError, "Not Before claim (nbf) must be an integer."),
        ({"iat": "x"}, jwt.InvalidIssuedAtError, "Issued At claim (iat) must be an integer."),
        ({"iat": NOW + 60}, jwt.ImmatureSignatureError, "The token is not yet valid (iat)"),
        ({"nbf": NOW + 60}, jwt.ImmatureSignatureError, "The token is not yet valid (nbf)"),
        ({"aud": "room-server"}, jwt.InvalidAudienceError, "Invalid audience"),
        ({"sub": 42}, jwt.InvalidTokenError, "Subject must be a string"),
        ({"jti": 42}, jwt.InvalidTokenError, "JWT ID must be a string"),
    ],
)
def test_registered_claim_checks(
    claims: dict[str, Any], error: type[Exception], message: str
) -> None:
    token = sign_claims({"name": "x", "grants": [], **claims})
    with pytest.raises(error) as info:
        ParticipantToken.from_jwt(token, token=SECRET, now=NOW)
    assert str(info.value) == message


def test_future_iat_is_accepted_within_leeway() -> None:
    token = sign_claims({"name": "x", "grants": [], "iat": NOW + 5, "nbf": NOW + 5})
    assert ParticipantToken.from_jwt(token, token=SECRET, now=NOW, leeway=5).name == "x"


def test_secret_from_environment_mapping() -> None:
    vector = BY_ID["minimal_no_api_no_exp"]
    decoded = ParticipantToken.from_jwt(vector["jwt"], environ={"MESHAGENT_SECRET": SECRET})
    assert decoded.name == "bare"
    with pytest.raises(jwt.InvalidSignatureError):
        ParticipantToken.from_jwt(vector["jwt"], environ={"MESHAGENT_SECRET": "other"})


# -- kid lookup (server side) --------------------------------------------------------------

KEYS = {
    "key-a": "secret-a-0123456789abcdef0123456789",
    "key-b": "secret-b-0123456789abcdef01234567",
}


class Lookup:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def __call__(self, kid: str) -> str | None:
        self.calls.append(kid)
        return KEYS.get(kid)


def kid_token(kid: str | None, key: str, **extra: Any) -> str:
    token = ParticipantToken(name="svc", project_id="proj", api_key_id=kid, extra_payload=extra)
    token.add_api_grant(ApiScope.user_default())
    return token.to_jwt(token=key, environ=NO_ENV)


def test_kid_selects_the_secret() -> None:
    lookup = Lookup()
    verified = verify_participant_jwt(
        kid_token("key-b", KEYS["key-b"]), lookup_secret=lookup, now=NOW
    )
    assert verified.api_key_id == "key-b"
    assert verified.project_id == "proj"
    assert verified.get_api_grant() == ApiScope.user_default()
    assert lookup.calls == ["key-b"]


def test_kid_of_an_api_key_string() -> None:
    token = ParticipantToken(name="svc")
    token.add_api_grant(ApiScope.agent_default())
    minted = token.to_jwt(api_key=API_KEY, environ=NO_ENV)
    secrets = {PARSED_KEY.id: PARSED_KEY.secret}
    verified = verify_participant_jwt(minted, lookup_secret=secrets.get, now=NOW)
    assert (verified.api_key_id, verified.project_id) == (PARSED_KEY.id, PARSED_KEY.project_id)


def test_unknown_kid_is_rejected() -> None:
    with pytest.raises(UnknownKeyIdError) as info:
        verify_participant_jwt(kid_token("key-z", KEYS["key-a"]), lookup_secret=Lookup(), now=NOW)
    assert isinstance(info.value, jwt.InvalidTokenError)


def test_kid_with_another_keys_signature_is_rejected() -> None:
    with pytest.raises(jwt.InvalidSignatureError):
        verify_participant_jwt(kid_token("key-a", KEYS["key-b"]), lookup_secret=Lookup(), now=NOW)


def test_swapping_the_kid_breaks_the_signature() -> None:
    header, payload, signature = kid_token("key-a", KEYS["key-a"]).split(".")
    claims = json.loads(b64url_decode(payload))
    claims["kid"] = "key-b"
    swapped = f"{header}.{b64url(json.dumps(claims, separators=(',', ':')).encode())}.{signature}"
    with pytest.raises(jwt.InvalidSignatureError):
        verify_participant_jwt(swapped, lookup_secret=Lookup(), now=NOW)


def test_token_without_kid_needs_a_default_secret() -> None:
    minted = kid_token(None, SECRET)
    lookup = Lookup()
    with pytest.raises(jwt.MissingRequiredClaimError, match="kid"):
        verify_participant_jwt(minted, lookup_secret=lookup, now=NOW)
    assert (
        verify_participant_jwt(
            minted, lookup_secret=lookup, now=NOW, default_secret=SECRET
        ).api_key_id
        is None
    )
    with pytest.raises(jwt.InvalidSignatureError):
        verify_participant_jwt(minted, lookup_secret=lookup, now=NOW, default_secret="wrong")
    assert lookup.calls == []


@pytest.mark.parametrize("alg", ["none", "HS512", "RS256"])
def test_kid_verifier_rejects_other_algorithms_before_lookup(alg: str) -> None:
    lookup = Lookup()
    forged = sign_claims(
        {"name": "x", "grants": [], "kid": "key-a"}, key=KEYS["key-a"], header={"alg": alg}
    )
    with pytest.raises(jwt.InvalidAlgorithmError):
        verify_participant_jwt(forged, lookup_secret=lookup, now=NOW, default_secret=SECRET)
    assert lookup.calls == []


def test_kid_verifier_checks_expiry_and_claims() -> None:
    expired = kid_token("key-a", KEYS["key-a"], exp=NOW - 1)
    with pytest.raises(jwt.ExpiredSignatureError):
        verify_participant_jwt(expired, lookup_secret=Lookup(), now=NOW)
    bad_kid = sign_claims({"name": "x", "grants": [], "kid": 1})
    with pytest.raises(jwt.InvalidTokenError, match="kid claim must be a string"):
        verify_participant_jwt(bad_kid, lookup_secret=Lookup(), now=NOW)
    nameless = sign_claims({"grants": [], "kid": "key-a"}, key=KEYS["key-a"])
    with pytest.raises(jwt.InvalidTokenError, match="not a valid participant token"):
        verify_participant_jwt(nameless, lookup_secret=Lookup(), now=NOW)


# -- the ParticipantToken object -----------------------------------------------------------


def test_role_and_is_user() -> None:
    token = ParticipantToken(name="alice")
    assert (token.role, token.is_user) == ("user", True)
    token.add_role_grant("user")
    assert (token.role, token.is_user) == ("user", True)
    token.add_role_grant("agent")
    token.add_role_grant("tool")
    assert (token.role, token.is_user) == ("agent", False)


def test_grant_helpers_and_lookup() -> None:
    token = ParticipantToken(name="g")
    token.add_room_grant("main")
    token.add_site_grant("main-site")
    token.add_agent_grant("helper")
    token.add_tunnel_grant(["8080", 9000])
    token.add_room_grant("second")
    assert token.grant_scope("room") == "main"
    assert token.grant_scope("site") == "main-site"
    assert token.grant_scope("agent") == "helper"
    assert token.grant_scope("tunnel_ports") == "8080,9000"
    assert token.grant_scope("nothing") is None
    assert token.get_api_grant() is None
    assert [g.to_json() for g in token.grants][3] == {"name": "tunnel_ports", "scope": "8080,9000"}


def test_second_api_grant_raises() -> None:
    token = ParticipantToken(name="a")
    token.add_api_grant(ApiScope.full())
    with pytest.raises(ValueError, match="can only have a single api grant"):
        token.add_api_grant(ApiScope.agent_default())
    assert token.get_api_grant() == ApiScope.full()


def test_json_round_trip_keeps_extra_claims_and_order() -> None:
    token = ParticipantToken(name="charlie", extra_payload={"meshagent_bootstrap": True, "z": 1})
    token.add_role_grant("moderator")
    token.add_api_grant(ApiScope(storage=StorageGrant(paths=[StoragePathGrant(path="a/")])))
    data = token.to_json()
    assert list(data) == ["meshagent_bootstrap", "z", "name", "grants", "version"]
    assert data["grants"][1] == {"name": "api", "scope": {"storage": {"paths": [{"path": "a/"}]}}}
    clone = ParticipantToken.from_json(data)
    assert clone == token
    assert clone.extra_payload == {"meshagent_bootstrap": True, "z": 1}
    assert clone.role == "moderator"


def test_from_json_defaults_and_errors() -> None:
    decoded = ParticipantToken.from_json({"name": "u", "grants": [{"name": "room", "scope": "r"}]})
    assert (decoded.version, decoded.project_id, decoded.api_key_id) == ("0.56.0", None, None)
    assert decoded.extra_payload == {}
    with pytest.raises(ValueError, match="missing required field: name"):
        ParticipantToken.from_json({"grants": []})
    with pytest.raises(ValueError, match="missing required field: grants"):
        ParticipantToken.from_json({"name": "dave"})
    with pytest.raises(ValueError, match="must be a JSON object"):
        ParticipantToken.from_json(["name"])


def test_participant_grant_api_scope_handling() -> None:
    grant = ParticipantGrant(name="api", scope={"database": {"list_tables": False}})
    assert isinstance(grant.scope, ApiScope)
    assert grant.to_json() == {"name": "api", "scope": {"dataset": {"list_tables": False}}}
    raw = ParticipantGrant.from_json({"name": "custom", "scope": {"any": [1]}})
    assert raw.scope == {"any": [1]}
    with pytest.raises(ValueError, match="missing required field: scope"):
        ParticipantGrant.from_json({"name": "room"})
    with pytest.raises(ValueError):
        ParticipantGrant.from_json({"name": "api", "scope": {"secrets": {"x": 1}}})


# -- properties ----------------------------------------------------------------------------


@given(
    token=participant_tokens(),
    lifetime=st.none() | st.integers(1, 10**8),
    secret=st.text(min_size=1),
)
def test_jwt_round_trip(token: ParticipantToken, lifetime: int | None, secret: str) -> None:
    expiration = None if lifetime is None else NOW + lifetime
    minted = token.to_jwt(token=secret, expiration=expiration, environ=NO_ENV)
    decoded = ParticipantToken.from_jwt(minted, token=secret, now=NOW)
    expected = ParticipantToken.from_json(token.to_json())
    if expiration is not None:
        assert expected.extra_payload is not None
        expected.extra_payload["exp"] = expiration
    assert decoded == expected
    assert decoded.grants == token.grants
    assert decoded.role == token.role
    if expiration is not None:
        with pytest.raises(jwt.ExpiredSignatureError):
            ParticipantToken.from_jwt(minted, token=secret, now=expiration)


@given(token=participant_tokens())
def test_json_round_trip(token: ParticipantToken) -> None:
    data = token.to_json()
    assert json.loads(json.dumps(data)) == data
    assert ParticipantToken.from_json(data).to_json() == data
