"""One list answer read item by item while its body arrives: cut, decoded, converted.

The client hands each chunk of a 2xx list answer to `feed`, and `convert` after it; what the
splitter could not cut (the end of the list, or all of it in a layout it does not cut) comes
back from the client's usual checks of `skeleton()` and goes through `take`. An item that does
not decode (or an envelope the splitter cannot vouch for) is remembered, not raised: the answer
is still read to its end (so the connection is kept, and an error in the envelope's `Code` or a
broken body is reported first, as for any answer), then `_list` raises it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Generic, Protocol, TypeVar

import msgspec

from kaput_not.netmaker import wire
from kaput_not.netmaker.item_splitter import ItemSplitter


class _Identified(Protocol):
    @property
    def id(self) -> str: ...


W = TypeVar("W")
Item = TypeVar("Item", bound=_Identified)

#: Items converted between two looks at other tasks: small enough that node events do not wait
#: behind a list being converted (docs/benchmarks.md has the events p99 before and after).
SLICE = 250


class ListReader(Generic[W, Item]):
    """The items of one list answer, converted as they arrive.

    `held`: objects the caller already holds, by id. An item read equal to the one held under
    its id is returned as that one, so a re-read of an unchanged list allocates next to nothing
    while the list it replaces is still in use.
    """

    def __init__(
        self,
        shape: wire.ListShape[W],
        convert: Callable[[W], Item],
        held: Mapping[str, Item] | None,
    ) -> None:
        self._decode = shape.item.decode
        self._convert = convert
        self._held = held
        self._splitter = ItemSplitter(enveloped=shape.items.enveloped)
        self._waiting: list[msgspec.Raw] = []
        self._since_pause = 0
        self.items: list[Item] = []
        #: What could not be read first: where ("item 3", "the envelope"), and why.
        self.failure: tuple[str, msgspec.DecodeError] | None = None

    def feed(self, chunk: bytes | bytearray) -> None:
        self._waiting += self._splitter.feed(chunk)

    def skeleton(self) -> bytes | bytearray:
        """The body less the items already cut out: the client checks and decodes it whole."""
        skeleton = self._splitter.skeleton()
        if self.failure is None and self._splitter.repeats_response(skeleton):
            why = msgspec.DecodeError("`Response` appears more than once")
            self.failure = ("the envelope", why)
        return skeleton

    def take(self, rest: list[msgspec.Raw]) -> None:
        """The items the skeleton still held, after those cut out."""
        self._waiting += rest

    async def convert(self) -> None:
        """Convert what is waiting, letting other tasks run every `SLICE` items."""
        waiting, self._waiting = self._waiting, []
        if self.failure is not None:
            return  # nothing after it is used
        decode, convert, held = self._decode, self._convert, self._held
        done = self.items
        for raw in waiting:
            if self._since_pause >= SLICE:
                self._since_pause = 0
                await asyncio.sleep(0)
            self._since_pause += 1
            try:
                read = convert(decode(raw))
            except msgspec.DecodeError as exc:  # a ValidationError is a DecodeError
                self.failure = (f"item {len(done)}", exc)
                return  # nothing after it is used
            if held is not None and (same := held.get(read.id)) is not None and same == read:
                read = same
            done.append(read)
