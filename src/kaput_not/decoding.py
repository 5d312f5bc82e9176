"""The one JSON decoder both adapters use: msgspec's, with every failure a `DecodeError`.

msgspec raises `RecursionError`, not `msgspec.DecodeError`, on JSON nested deeper than Python's
recursion limit (in a field we skip, or a `Raw` payload), and `UnicodeDecodeError` on a string
that is not UTF-8 where it builds a `str`. Every caller handles `DecodeError` as "an answer we
cannot read"; the other two slipped past them, so one hostile body from a proxy or a broken
server could end the node informer or crash a start-up login.
"""

from __future__ import annotations

import re
from typing import Generic, TypeVar

import msgspec

T = TypeVar("T")
_NOT_SPACE = re.compile(rb"[^ \t\r\n]")


def first_byte(body: bytes | bytearray) -> bytes:
    """The first byte of `body` that is not JSON white space (b"" if none), without a copy."""
    match = _NOT_SPACE.search(body)
    return b"" if match is None else match.group()


class Decoder(Generic[T]):
    """`msgspec.json.Decoder(shape)`, whose `decode` raises only `msgspec.DecodeError`."""

    __slots__ = ("_decoder",)

    def __init__(self, shape: type[T]) -> None:
        self._decoder: msgspec.json.Decoder[T] = msgspec.json.Decoder(shape)

    def decode(self, data: bytes | bytearray | memoryview | str) -> T:
        try:
            return self._decoder.decode(data)
        except RecursionError:
            raise msgspec.DecodeError("JSON nested too deeply to read") from None
        except UnicodeDecodeError:
            raise msgspec.DecodeError("a string holds bytes that are not UTF-8") from None
