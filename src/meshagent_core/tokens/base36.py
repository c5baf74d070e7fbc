"""Base36 UUID compression (`keys.py` in the official client; not used for API keys)."""

from __future__ import annotations

import uuid

_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"
_VALUES = {char: index for index, char in enumerate(_ALPHABET)}


def base36encode(number: int) -> str:
    """Encode a non-negative integer with the alphabet `0-9a-z` (no leading zeros)."""
    if isinstance(number, bool) or not isinstance(number, int):
        raise TypeError("number must be an integer")
    if number < 0:
        raise ValueError("number must be non-negative")
    if number == 0:
        return "0"
    digits: list[str] = []
    while number:
        number, remainder = divmod(number, 36)
        digits.append(_ALPHABET[remainder])
    return "".join(reversed(digits))


def base36decode(number_str: str) -> int:
    """Decode a lower-case base36 string into an integer."""
    number = 0
    for char in number_str:
        value = _VALUES.get(char)
        if value is None:
            raise ValueError(f"Invalid character '{char}' for base36 encoding")
        number = number * 36 + value
    return number


def compress_uuid(guid_string: str) -> str:
    """Compress a UUID string (any form `uuid.UUID` accepts) to base36."""
    return base36encode(uuid.UUID(guid_string).int)


def decompress_uuid(compressed_uuid: str) -> str:
    """Expand a base36-compressed UUID to the lower-case 8-4-4-4-12 form."""
    value = base36decode(compressed_uuid)
    if value >= 1 << 128:
        raise ValueError("compressed uuid is out of range")
    return str(uuid.UUID(int=value))
