"""Request bodies decoded the way Go's ``encoding/json`` fills Netmaker's request structs.

Why it matters: our client must cope with what Go accepts and rejects, and Python's ``json``
differs. Go, as Netmaker calls it (``json.NewDecoder(r.Body).Decode(&v)``):

- reads the first JSON value and ignores anything after it; an empty body is the error ``EOF``;
- ignores unknown keys, matches keys case-insensitively, and treats ``null`` as "leave the zero";
- refuses ``500.0`` or ``5e2`` for an ``int`` field (hence a metric of 500.0 is a 400 on create);
- reads ``[]byte`` from base64 text and a ``[32]byte`` from an array of numbers.

Error texts follow Go's ``json: cannot unmarshal ... into Go struct field S.f of type T``. Syntax
error texts are approximations (Go's byte offsets are not reproduced). Not modelled: float
fields, nested structs, ``json.Number``, embedded structs, invalid UTF-8 repair.
"""

from __future__ import annotations

import base64
import binascii
import enum
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass

_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1


class DecodeError(Exception):
    """The body does not decode into the struct; the message is Go-like error text."""


class Kind(enum.Enum):
    """The Go field types Netmaker's request structs use, valued by their Go spelling."""

    STRING = "string"
    BOOL = "bool"
    INT = "int"
    STRINGS = "[]string"
    METRICS = "map[string]int"
    BYTES = "[]uint8"
    KEY32 = "wgtypes.Key"
    UUID = "uuid.UUID"


@dataclass(frozen=True)
class Struct:
    """A Go struct by its printed name (``models.EgressReq``) and its JSON-tagged fields."""

    go_type: str
    fields: Mapping[str, Kind]

    @property
    def short_name(self) -> str:
        """Go names the struct without its package in field errors (``EgressReq.nodes``)."""
        return self.go_type.rsplit(".", 1)[-1]

    def field_for(self, key: str) -> str | None:
        """Exact match first, then case-insensitive, as ``encoding/json`` does."""
        if key in self.fields:
            return key
        folded = key.casefold()
        return next((name for name in self.fields if name.casefold() == folded), None)


@dataclass(frozen=True)
class Decoded:
    """The struct's fields after decoding; absent and ``null`` fields hold Go zero values."""

    values: Mapping[str, object]
    #: fields the body set to a non-null value: Go tells a nil slice from an empty one
    given: frozenset[str] = frozenset()

    def text(self, name: str) -> str:
        value = self.values[name]
        assert isinstance(value, str)
        return value

    def flag(self, name: str) -> bool:
        value = self.values[name]
        assert isinstance(value, bool)
        return value

    def number(self, name: str) -> int:
        value = self.values[name]
        assert isinstance(value, int)
        return value

    def strings(self, name: str) -> list[str]:
        value = self.values[name]
        assert isinstance(value, list)
        return [str(item) for item in value]

    def metrics(self, name: str) -> dict[str, int]:
        value = self.values[name]
        assert isinstance(value, dict)
        return {str(key): int(metric) for key, metric in value.items()}

    def octets(self, name: str) -> bytes:
        value = self.values[name]
        assert isinstance(value, bytes)
        return value


class _FloatText(str):
    """A JSON number with a fraction or exponent, kept as its source text for error messages."""


class _Mismatch(Exception):
    """A value of the wrong JSON type; ``what`` is Go's word for it (``string``, ``number 5.5``)."""

    def __init__(self, what: str, go_type: str) -> None:
        super().__init__(what)
        self.what = what
        self.go_type = go_type


def _reject_constant(name: str) -> object:
    raise ValueError(f"invalid character '{name[0]}' looking for beginning of value")


_DECODER = json.JSONDecoder(parse_float=_FloatText, parse_constant=_reject_constant)

_ZERO: dict[Kind, object] = {
    Kind.STRING: "",
    Kind.BOOL: False,
    Kind.INT: 0,
    Kind.STRINGS: [],
    Kind.METRICS: {},
    Kind.BYTES: b"",
    Kind.KEY32: bytes(32),
    Kind.UUID: "",
}


def decode_struct(body: bytes, struct: Struct) -> Decoded:
    """Decode ``body`` into ``struct`` or raise :class:`DecodeError` with Go's wording."""
    document = _first_value(body)
    values: dict[str, object] = {name: _copy_zero(kind) for name, kind in struct.fields.items()}
    if document is None:
        return Decoded(values)
    given: set[str] = set()
    if not isinstance(document, dict):
        raise DecodeError(
            f"json: cannot unmarshal {_json_type(document)} into Go value of type {struct.go_type}"
        )
    first_error: str | None = None
    for key, raw in document.items():
        name = struct.field_for(key)
        if name is None or raw is None:
            continue
        try:
            values[name] = _convert(raw, struct.fields[name])
            given.add(name)
        except _Mismatch as exc:
            # Go keeps decoding after a type mismatch and reports the first one at the end.
            first_error = first_error or (
                f"json: cannot unmarshal {exc.what} into Go struct field "
                f"{struct.short_name}.{name} of type {exc.go_type}"
            )
        except DecodeError as exc:
            first_error = first_error or str(exc)
    if first_error is not None:
        raise DecodeError(first_error)
    return Decoded(values, frozenset(given))


def _first_value(body: bytes) -> object:
    try:
        text = body.decode("utf-8").lstrip(" \t\r\n")
    except UnicodeDecodeError as exc:
        raise DecodeError("invalid character in JSON input") from exc
    if not text:
        raise DecodeError("EOF")
    try:
        value, _end = _DECODER.raw_decode(text)
    except json.JSONDecodeError as exc:
        if exc.pos >= len(text):
            raise DecodeError("unexpected EOF") from exc
        raise DecodeError(
            f"invalid character '{text[exc.pos]}' looking for beginning of value"
        ) from exc
    except ValueError as exc:  # NaN / Infinity, which Go does not accept
        raise DecodeError(str(exc)) from exc
    return value


def _copy_zero(kind: Kind) -> object:
    zero = _ZERO[kind]
    return list(zero) if isinstance(zero, list) else dict(zero) if isinstance(zero, dict) else zero


def _json_type(value: object) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, str) and not isinstance(value, _FloatText):
        return "string"
    if isinstance(value, int | _FloatText):
        return "number"
    return "array" if isinstance(value, list) else "object"


def _convert(raw: object, kind: Kind) -> object:
    if kind is Kind.STRING:
        return _string(raw, kind.value)
    if kind is Kind.BOOL:
        if not isinstance(raw, bool):
            raise _Mismatch(_json_type(raw), kind.value)
        return raw
    if kind is Kind.INT:
        return _int(raw, kind.value)
    if kind is Kind.STRINGS:
        items = _array(raw, kind.value)
        return ["" if item is None else _string(item, "string") for item in items]
    if kind is Kind.METRICS:
        if not isinstance(raw, dict):
            raise _Mismatch(_json_type(raw), kind.value)
        return {key: 0 if value is None else _int(value, "int") for key, value in raw.items()}
    if kind is Kind.BYTES:
        return _base64(_string(raw, kind.value))
    if kind is Kind.KEY32:
        return _key32(_array(raw, kind.value))
    return _uuid(_string(raw, kind.value))


def _string(raw: object, go_type: str) -> str:
    if type(raw) is not str:
        raise _Mismatch(_json_type(raw), go_type)
    return raw


def _int(raw: object, go_type: str) -> int:
    if isinstance(raw, _FloatText):
        raise _Mismatch(f"number {raw}", go_type)
    if type(raw) is not int:
        raise _Mismatch(_json_type(raw), go_type)
    if not _INT64_MIN <= raw <= _INT64_MAX:
        raise _Mismatch(f"number {raw}", go_type)
    return raw


def _array(raw: object, go_type: str) -> list[object]:
    if not isinstance(raw, list):
        raise _Mismatch(_json_type(raw), go_type)
    return raw


def _base64(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise DecodeError("illegal base64 data at input byte 0") from exc


def _key32(items: list[object]) -> bytes:
    # A Go array takes the first 32 elements and zero-fills the rest.
    key = bytearray(32)
    for index, item in enumerate(items[:32]):
        value = 0 if item is None else _int(item, "uint8")
        if not 0 <= value <= 255:
            raise _Mismatch(f"number {value}", "uint8")
        key[index] = value
    return bytes(key)


def _uuid(text: str) -> str:
    if len(text) not in (32, 36, 38, 45):
        raise DecodeError(f"invalid UUID length: {len(text)}")
    try:
        return str(uuid.UUID(text))
    except ValueError as exc:
        raise DecodeError("invalid UUID format") from exc
