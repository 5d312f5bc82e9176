"""The items of a JSON list answer, cut out of the body as it arrives.

A list's whole body used to wait in memory until its last item was converted, beside the lists
still in use, at every re-read. The splitter hands items out chunk by
chunk and keeps only the bytes not yet cut.

Netmaker (Go's encoding/json) writes a list of structs compactly, every item opening with the
same first key: `[{"id":...},{"id":...}]`. The splitter learns that opening from the first
item, and in what it holds looks for the last `}` followed by `,` and that opening. With a
first key that starts with a letter, as Netmaker's `id`, the pattern cannot sit inside a JSON
string (the quote before the key would end the string, and a letter cannot follow a string's
end), so it is a boundary or, rarely, a nested object opening alike. Everything before the
cut is then decoded as one array with msgspec, which proves the cut: JSON is read left to
right, so a prefix that closes as an array just there ends at an item boundary of the whole
body too. A cut that fails to decode waits for more bytes (an earlier one is tried first).

Whatever is not cut stays whole: `skeleton()` is the body with the items handed out taken away,
and the caller reads it with the checks every answer gets (JSON, the envelope's `Code`, the
items left), so an error answer, a truncated body or a stray comma fails as it would in one
piece. A body in another layout (white space between items, the envelope's fields in another
order) is never cut, and costs what it did before. One thing the skeleton cannot show is an
envelope that holds `Response` twice (read whole, the last one counts): `repeats_response`
says so, for the caller to refuse the answer.
"""

from __future__ import annotations

import json
import re

import msgspec

from kaput_not.decoding import first_byte
from kaput_not.netmaker.wire import RAW_ITEMS

_SPACE = rb"[ \t\r\n]*"
_STRING = rb'"(?:[^"\\]|\\.)*"'
#: Netmaker's envelope up to its list, field by field as Go writes them: Code, Message, Response.
_ENVELOPE_HEAD = re.compile(
    rb"%s\{%s\"Code\"%s:%s-?[0-9]+%s,%s\"Message\"%s:%s%s%s,%s\"Response\"%s:%s\["
    % ((_SPACE,) * 8 + (_STRING,) + (_SPACE,) * 4),
    re.DOTALL,
)
_BARE_HEAD = re.compile(_SPACE + rb"\[")
#: An item's opening: `{` and its first key, as every item of a Go list of structs opens.
_OPENING = re.compile(rb"\{" + _STRING + rb":", re.DOTALL)
#: How far to look for the head before giving up cutting (the envelope's head is ~60 bytes).
_HEAD_LIMIT = 1 << 16
#: Cuts tried per look, from the last one back, before waiting for more bytes.
_TRIES = 2


class ItemSplitter:
    """Feed it a list answer's body chunk by chunk; it returns the items each chunk completes."""

    def __init__(self, *, enveloped: bool) -> None:
        self._enveloped = enveloped
        self._head_pattern = _ENVELOPE_HEAD if enveloped else _BARE_HEAD
        self._held = bytearray()  # the body from its start until the first cut, then the rest
        self._head = b""  # up to and including the list's `[`, once found and cut from `_held`
        self._start = 0  # where the next item starts in `_held` (after the head, then the `,`)
        self._separator = b""  # `},` and the items' opening, once learned
        self._stopped = False  # a body in another layout: no more cuts, kept whole
        self._look_at = 0  # no look before `_held` is this long (after a look that cut nothing)

    @property
    def cut(self) -> bool:
        """Whether any item was handed out (the skeleton then lacks them)."""
        return bool(self._head)

    def feed(self, chunk: bytes | bytearray) -> list[msgspec.Raw]:
        """`chunk` appended; the items it completed, in order (often none)."""
        held = self._held
        held += chunk
        if self._stopped or len(held) < self._look_at:
            return []
        if not self._separator and not self._learn():
            # Look again once the bytes held have doubled (a head sent a byte at a time).
            self._look_at = 2 * len(held)
            return []
        return self._cut()

    def skeleton(self) -> bytes | bytearray:
        """The body as read, less every item handed out: what the caller still has to read."""
        if not self._head:
            return self._held
        # `_held` starts with the `,` after the last item cut: the list goes on after `[`.
        return self._head + self._held[1:]

    def repeats_response(self, skeleton: bytes | bytearray) -> bool:
        """Whether, items having been cut, the envelope holds `Response` more than once
        (`skeleton`: what `skeleton()` returned).

        Read whole, such a body is its last `Response`; cut, the items handed out came from
        the first. Go never writes it; a body that does is refused, not read two ways. Only
        the skeleton is read here (small once items are cut), with Python's json, which shows
        an object's keys in order.
        """
        if not self._head or not self._enveloped:
            return False
        top: list[list[tuple[str, object]]] = []

        def pairs(found: list[tuple[str, object]]) -> object:
            top.append(found)
            return None

        try:
            json.loads(skeleton, object_pairs_hook=pairs)
        except (ValueError, RecursionError):
            return False  # not JSON we can read: the caller's read of the skeleton says so
        keys = [key for key, _ in top[-1]] if top else []
        return keys.count("Response") > 1

    def _learn(self) -> bool:
        """Find where the list starts and how its items open; False while unknown."""
        held = self._held
        head = self._head_pattern.match(held)
        if head is None:
            # Its first byte already rules the head out, or it is too long to be one.
            opener = b"{" if self._enveloped else b"["
            self._stopped = len(held) > _HEAD_LIMIT or first_byte(held) not in (b"", opener)
            return False
        opening = _OPENING.match(held, head.end())
        if opening is None:
            # Not an object first (or its key still coming): no cut unless the opening is
            # unfinished; an empty list or a list of another kind stays whole.
            self._stopped = len(held) - head.end() > _HEAD_LIMIT or not _may_open(held, head.end())
            return False
        self._start = head.end()
        self._separator = b"}," + opening.group()
        return True

    def _cut(self) -> list[msgspec.Raw]:
        held = self._held
        start = self._start
        end = len(held)
        for _ in range(_TRIES):
            boundary = held.rfind(self._separator, start, end)
            if boundary < 0:
                break
            try:
                items = RAW_ITEMS.decode(b"[" + held[start : boundary + 1] + b"]")
            except msgspec.DecodeError:
                # Inside an item (a nested object opening alike): try an earlier one.
                end = boundary + len(self._separator) - 1
                continue
            if not self._head:
                self._head = bytes(held[:start])
                self._start = 1  # from now on `_held` starts with the `,` before an item
            del held[: boundary + 1]
            self._look_at = 0
            return items
        # Nothing cut: look again once the bytes held have doubled, so that a body that
        # keeps failing (an item bigger than many chunks) costs linear time, not quadratic.
        self._look_at = 2 * len(held)
        return []


def _may_open(held: bytearray, at: int) -> bool:
    """Whether the bytes from `at` could still grow into an item's opening."""
    return bytes(held[at : at + 2]) in (b"", b"{", b'{"')
