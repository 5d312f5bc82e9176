"""`ItemSplitter`: items cut out of a list answer as it arrives add up to the list read whole.

The splitter is hand-written (no library splits a JSON array as it streams and hands out
msgspec items), so it is tested against the one thing it must equal: decoding the whole body.
For any list, any chunking and any damage to the body, the items cut plus what the skeleton
still holds are the items of the whole body, and the skeleton fails to read exactly when the
whole body does.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from kaput_not.decoding import Decoder
from kaput_not.netmaker.item_splitter import ItemSplitter

_ANY = Decoder(object)

# Strings that look like the splitter's boundaries, escaped quotes and non-ASCII included.
_tricky = st.sampled_from(
    ['},{"id":', '"},{"id":"', "\\", '\\"', "]},", '"Response":[', "é", "\u2028", "}", ","]
)
_text = st.lists(st.one_of(_tricky, st.text(max_size=4)), max_size=4).map("".join)
_scalar = st.one_of(st.none(), st.booleans(), st.integers(-(2**40), 2**40), _text)
_value = st.recursive(
    _scalar,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        # Nested objects that open as the items do: the boundary pattern, inside an item.
        st.builds(
            lambda i, rest: {"id": i, **rest}, inner, st.dictionaries(_text, inner, max_size=2)
        ),
    ),
    max_leaves=8,
)


def _opening_with(key: str) -> st.SearchStrategy[dict[str, Any]]:
    """Items whose first key is `key`, as every item of a Go list of structs opens alike."""
    return st.builds(
        lambda ident, rest: {key: ident, **rest}, _text, st.dictionaries(_text, _value, max_size=3)
    )


# Netmaker's `id`, and first keys that do not start with a letter (the cut pattern can then sit
# inside a string: the decode that proves each cut must refuse it).
_items = st.sampled_from(["id", "netid", ":", ",", "}", ' "']).flatmap(
    lambda key: st.lists(_opening_with(key), max_size=12)
)


def _body(items: list[Any], enveloped: bool, message: str = "listed") -> bytes:
    """As Go's encoding/json writes it: compact, envelope fields in order, trailing newline."""
    if enveloped:
        return msgspec.json.encode({"Code": 200, "Message": message, "Response": items}) + b"\n"
    return msgspec.json.encode(items) + b"\n"


def _chunks(body: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({0, len(body), *(c % (len(body) + 1) for c in cuts)})
    return [body[a:b] for a, b in itertools.pairwise(points)]


def _whole(body: bytes, enveloped: bool) -> tuple[list[Any], Any] | None:
    """The items and the rest of the answer, read in one piece (None: not a readable list)."""
    try:
        value = _ANY.decode(body)
    except msgspec.DecodeError:
        return None
    if enveloped:
        if not isinstance(value, dict) or not isinstance(value.get("Response"), list):
            return None
        return value["Response"], {**value, "Response": None}
    return (value, None) if isinstance(value, list) else None


def _streamed(chunks: list[bytes], enveloped: bool) -> tuple[tuple[list[Any], Any] | None, int]:
    """The same, cut as the chunks arrive; and the most bytes the splitter held at once."""
    splitter = ItemSplitter(enveloped=enveloped)
    cut: list[Any] = []
    most = 0
    unreadable = False  # an item cut that does not decode: the client's `BadResponse`
    for chunk in chunks:
        for raw in splitter.feed(chunk):
            try:
                cut.append(_ANY.decode(raw))
            except msgspec.DecodeError:
                unreadable = True
        most = max(most, len(splitter.skeleton()))
    rest = _whole(bytes(splitter.skeleton()), enveloped)
    if rest is None or unreadable:
        return None, most
    return (cut + rest[0], rest[1]), most


@given(_items, st.booleans(), _text, st.lists(st.integers(0, 10_000), max_size=12))
@settings(max_examples=400)
def test_the_items_cut_and_left_are_the_list_read_whole(
    items: list[Any], enveloped: bool, message: str, cuts: list[int]
) -> None:
    body = _body(items, enveloped, message)
    assert _streamed(_chunks(body, cuts), enveloped)[0] == _whole(body, enveloped)


_damage = st.tuples(
    st.sampled_from(["delete", "insert", "truncate", "replace"]),
    st.integers(0, 10_000),
    st.sampled_from(list(b'{}[],:"\\ \n0a')),
)


@given(_items, st.booleans(), _damage, st.lists(st.integers(0, 10_000), max_size=12))
@settings(max_examples=600)
def test_a_damaged_body_fails_or_reads_exactly_as_it_would_whole(
    items: list[Any], enveloped: bool, damage: tuple[str, int, int], cuts: list[int]
) -> None:
    body = bytearray(_body(items, enveloped))
    how, where, byte = damage
    where %= len(body)
    if how == "delete":
        del body[where]
    elif how == "insert":
        body.insert(where, byte)
    elif how == "truncate":
        del body[where:]
    else:
        body[where] = byte
    damaged = bytes(body)
    assert _streamed(_chunks(damaged, cuts), enveloped)[0] == _whole(damaged, enveloped)


def test_a_trailing_comma_after_the_last_item_cut_is_still_an_error() -> None:
    body = b'[{"id":"a"},{"id":"b"},]'
    assert _whole(body, enveloped=False) is None
    assert _streamed([body[:13], body[13:]], enveloped=False)[0] is None


def _rule(i: int) -> dict[str, Any]:
    return {
        "id": f"{i:08x}-0000-4000-8000-000000000000",
        "network": "mesh",
        "name": f"k8s pods sn-{i} (1/2)",
        "description": "Managed by kaput-not (DO NOT EDIT): cluster=prod index=0",
        "nodes": {f"{i:08x}-1111-4000-8000-000000000000": 500},
        "range": f"10.{i // 256}.{i % 256}.0/24",
        "nat": False,
        "status": True,
    }


def test_a_long_list_is_never_held_whole() -> None:
    """20,000 rules (6 MB) in 16 KB chunks: the splitter holds about a chunk, not the body."""
    rules = [_rule(i) for i in range(20_000)]
    body = _body(rules, enveloped=True)
    result, most = _streamed(_chunks(body, list(range(0, len(body), 16_384))), enveloped=True)
    assert result == (rules, {"Code": 200, "Message": "listed", "Response": None})
    assert most < 2 * 16_384, f"held {most} bytes of a {len(body)}-byte body"


def test_a_body_in_another_layout_is_read_whole() -> None:
    """Pretty-printed: no `},{` to cut at. The skeleton is the body, unchanged."""
    rules = [_rule(i) for i in range(50)]
    body = json.dumps(rules, indent=1).encode()
    splitter = ItemSplitter(enveloped=False)
    for start in range(0, len(body), 100):
        assert splitter.feed(body[start : start + 100]) == []
    assert not splitter.cut
    assert bytes(splitter.skeleton()) == body


def test_an_envelope_in_another_order_is_read_whole() -> None:
    body = msgspec.json.encode({"Response": [_rule(1), _rule(2)], "Code": 200, "Message": ""})
    splitter = ItemSplitter(enveloped=True)
    assert splitter.feed(body) == []
    assert bytes(splitter.skeleton()) == body


def test_an_error_answer_is_left_whole() -> None:
    body = b'{"Code":500,"Message":"database is locked","Response":null}'
    splitter = ItemSplitter(enveloped=True)
    assert splitter.feed(body) == []
    assert not splitter.cut
    assert bytes(splitter.skeleton()) == body


def test_items_whose_nested_objects_open_alike_are_cut_between_items_only() -> None:
    """A host's interfaces could open with the same key as the hosts: a cut there does not
    decode, and an earlier one is used."""
    hosts = [{"id": f"h{i}", "ifaces": [{"id": "eth0"}, {"id": "eth1"}]} for i in range(30)]
    body = _body(hosts, enveloped=False)
    result, most = _streamed(_chunks(body, list(range(0, len(body), 50))), enveloped=False)
    assert result == (hosts, None)
    assert most < len(body) // 2


def test_a_body_sent_a_byte_at_a_time_is_cut_as_well() -> None:
    rules = [_rule(i) for i in range(40)]
    body = _body(rules, enveloped=True, message="m" * 300)
    result, most = _streamed([body[i : i + 1] for i in range(len(body))], enveloped=True)
    assert result == (rules, {"Code": 200, "Message": "m" * 300, "Response": None})
    assert most < len(body) // 4


def test_an_envelope_with_response_twice_is_told_apart_once_items_are_cut() -> None:
    """Read whole, the last `Response` counts; cut, the first one's items were handed out."""
    head = _body([_rule(1), _rule(2), _rule(3)], enveloped=True).rstrip()[:-1]
    body = head + b',"Response":[]}'
    splitter = ItemSplitter(enveloped=True)
    assert len(splitter.feed(body)) == 2
    assert splitter.repeats_response(splitter.skeleton())
    single = ItemSplitter(enveloped=True)
    single.feed(_body([_rule(1), _rule(2), _rule(3)], enveloped=True))
    assert single.cut
    assert not single.repeats_response(single.skeleton())
