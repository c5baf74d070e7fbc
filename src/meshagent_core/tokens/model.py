"""`GrantModel`: the msgspec base of every grant class, with pydantic-style dump/validate.

The official client's grants are pydantic models serialised with
`model_dump(mode="json", exclude_none=True, exclude_defaults=True)`. `to_json()` reproduces
exactly that (including fields whose default comes from a factory, which msgspec's own
`omit_defaults` would keep), and `from_json()` validates with msgspec in lax mode.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any, Literal, TypeVar

import msgspec

from ..jsondepth import decode_bounded

_M = TypeVar("_M", bound="_ModelMethods")

_Field = tuple[str, str, bool, Any]  # attribute, JSON name, has a default, default factory


class _ModelMethods:
    __slots__ = ()

    @classmethod
    def _prepare_input(cls, data: Any) -> Any:
        """Hook for input aliases; the identity by default."""
        return data

    @classmethod
    def from_json(cls: type[_M], data: Any) -> _M:
        """Validate decoded JSON (a dict) into this grant; raises `msgspec.ValidationError`.

        `msgspec.ValidationError` is a `ValueError`.
        """
        if isinstance(data, cls):
            return data
        return msgspec.convert(cls._prepare_input(data), cls, strict=False)

    @classmethod
    def from_json_bytes(cls: type[_M], data: bytes | str) -> _M:
        """Parse and validate JSON text."""
        return cls.from_json(decode_bounded(data))

    def to_json(self) -> dict[str, Any]:
        """The wire form: fields at their default and `None` fields are left out."""
        wire: dict[str, Any] = _dump(self, exclude_none=True, exclude_defaults=True)
        return wire

    # pydantic-compatible spellings, so code written against the official client ports.

    @classmethod
    def model_validate(cls: type[_M], obj: Any) -> _M:
        """Alias of `from_json`."""
        return cls.from_json(obj)

    @classmethod
    def model_validate_json(cls: type[_M], json_data: bytes | str) -> _M:
        """Alias of `from_json_bytes`."""
        return cls.from_json_bytes(json_data)

    def model_dump(
        self,
        *,
        mode: Literal["json", "python"] = "python",
        exclude_none: bool = False,
        exclude_defaults: bool = False,
    ) -> dict[str, Any]:
        """A dict of the fields, nested grants as dicts (`mode` has no effect here)."""
        del mode  # every field is already a JSON type
        dumped: dict[str, Any] = _dump(
            self, exclude_none=exclude_none, exclude_defaults=exclude_defaults
        )
        return dumped

    def model_dump_json(self, *, exclude_none: bool = False, exclude_defaults: bool = False) -> str:
        """Compact JSON text of `model_dump`."""
        return msgspec.json.encode(
            _dump(self, exclude_none=exclude_none, exclude_defaults=exclude_defaults)
        ).decode("utf-8")


class GrantModel(_ModelMethods, msgspec.Struct, kw_only=True, omit_defaults=True):
    """Base class of the permission grants: keyword-only msgspec Structs.

    Unknown keys are ignored on input unless a subclass sets `forbid_unknown_fields`.
    """


class FrozenGrantModel(
    _ModelMethods, msgspec.Struct, kw_only=True, omit_defaults=True, frozen=True
):
    """`GrantModel` whose instances are immutable."""


@functools.cache
def _fields(cls: type[msgspec.Struct]) -> tuple[_Field, ...]:
    result: list[_Field] = []
    for info in msgspec.structs.fields(cls):
        if info.default is not msgspec.NODEFAULT:
            result.append(
                (info.name, info.encode_name, True, functools.partial(_constant, info.default))
            )
        elif info.default_factory is not msgspec.NODEFAULT:
            result.append((info.name, info.encode_name, True, info.default_factory))
        else:
            result.append((info.name, info.encode_name, False, None))
    return tuple(result)


def _constant(value: Any) -> Any:
    return value


def _dump(value: Any, *, exclude_none: bool, exclude_defaults: bool) -> Any:
    if isinstance(value, msgspec.Struct):
        out: dict[str, Any] = {}
        for name, json_name, has_default, default in _fields(type(value)):
            item = getattr(value, name)
            if exclude_none and item is None:
                continue
            if exclude_defaults and has_default and item == default():
                continue
            out[json_name] = _dump(
                item, exclude_none=exclude_none, exclude_defaults=exclude_defaults
            )
        return out
    if isinstance(value, (list, tuple)):
        return [
            _dump(v, exclude_none=exclude_none, exclude_defaults=exclude_defaults) for v in value
        ]
    if isinstance(value, Mapping):
        return {
            k: _dump(v, exclude_none=exclude_none, exclude_defaults=exclude_defaults)
            for k, v in value.items()
        }
    return value
