"""Secret values at rest: AES-256-GCM (the `cryptography` package) under the data directory's
secrets key.

The key is 32 random bytes in `<data_dir>/secrets.key`, made on first use (created exclusively,
mode 0600, synced to disk) and read from then on. `control.db` holds only sealed values:

    sealed = FORMAT (1 byte) | key id (8 bytes) | nonce (12 bytes) | ciphertext and GCM tag

The key id (the first 8 bytes of the key's SHA-256) tells a value sealed under another key (a
lost or replaced key file) from a damaged one. Each value is sealed with a context naming its
row (`secret-version:<id>`, …) as associated data, so a sealed value copied into another row
does not open there. A value that does not open is refused with `SecretUnreadable` (500),
naming the row and the likely cause, never the value.

Values are neither logged nor put in messages: only ids are. `decode_value` and `check_text`
check what the secrets stores seal and name.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import os
import secrets
import threading
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .common import ControlError

log = logging.getLogger("meshagent_trio.server.secrets")

KEY_FILE_NAME = "secrets.key"
KEY_SIZE = 32
FORMAT = b"\x01"
_KEY_ID_SIZE = 8
_NONCE_SIZE = 12
_HEADER = len(FORMAT) + _KEY_ID_SIZE + _NONCE_SIZE
#: The largest secret value (bytes), as common secret managers allow.
MAX_VALUE_SIZE = 64 * 1024


class SecretUnreadable(ControlError):
    """A stored secret value that cannot be decrypted: damaged, or sealed under another key."""

    status = 500
    code = "secret_unreadable"


class SecretBox:
    """Seals and opens secret values with the key of `path` (made on first use). Thread-safe:
    the control plane's worker threads call it inside their transactions."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._cipher: AESGCM | None = None
        self._key_id = b""

    def seal(self, value: bytes, context: str) -> bytes:
        cipher, key_id = self._load()
        nonce = secrets.token_bytes(_NONCE_SIZE)
        return FORMAT + key_id + nonce + cipher.encrypt(nonce, value, context.encode())

    def open(self, sealed: bytes, context: str, what: str) -> bytes:
        """The value sealed for `context`; `what` names it in the refusal (`secret 'x' version 2`)."""
        cipher, key_id = self._load()
        if len(sealed) < _HEADER + 16 or sealed[:1] != FORMAT:
            raise SecretUnreadable(f"{what} cannot be decrypted: its stored form in control.db is damaged")
        stored_key_id = sealed[1 : 1 + _KEY_ID_SIZE]
        if stored_key_id != key_id:
            raise SecretUnreadable(
                f"{what} cannot be decrypted: it was encrypted under another secrets key (key id {stored_key_id.hex()}) "
                f"than this server's {self.path} (key id {key_id.hex()}); was the key file replaced?"
            )
        nonce = sealed[1 + _KEY_ID_SIZE : _HEADER]
        try:
            return cipher.decrypt(nonce, sealed[_HEADER:], context.encode())
        except InvalidTag:
            raise SecretUnreadable(f"{what} cannot be decrypted: its ciphertext in control.db was altered or damaged") from None

    def _load(self) -> tuple[AESGCM, bytes]:
        with self._lock:
            if self._cipher is None:
                key = _read_or_create_key(self.path)
                self._cipher, self._key_id = AESGCM(key), hashlib.sha256(key).digest()[:_KEY_ID_SIZE]
            return self._cipher, self._key_id


def _read_or_create_key(path: Path) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read_key(path)
    key = AESGCM.generate_key(bit_length=KEY_SIZE * 8)
    try:
        os.write(descriptor, key)
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
    log.info("made the secrets key %s (mode 0600)", path)
    return key


def _read_key(path: Path) -> bytes:
    key = path.read_bytes()
    if len(key) != KEY_SIZE:
        raise SecretUnreadable(f"{path} is not a secrets key: it holds {len(key)} bytes, not {KEY_SIZE}")
    if path.stat().st_mode & 0o077:
        log.warning("the secrets key %s can be read by other users than its owner (chmod 600 it)", path)
    return key


def decode_value(text: str, field: str) -> bytes:
    """The bytes of a base64 secret value (400 naming `field`, never the value)."""
    try:
        value = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ControlError(f"{field}: not valid base64") from None
    if len(value) > MAX_VALUE_SIZE:
        raise ControlError(f"{field}: a secret value is at most {MAX_VALUE_SIZE} bytes, this one has {len(value)}")
    return value


def check_text(value: str, field: str, limit: int = 256) -> str:
    if not value.strip() or len(value) > limit or any(ord(c) < 32 for c in value):
        raise ControlError(f"{field}: {value[:limit]!r} must be 1 to {limit} characters, none of them control characters")
    return value


__all__ = ["KEY_FILE_NAME", "MAX_VALUE_SIZE", "SecretBox", "SecretUnreadable", "check_text", "decode_value"]
