"""One network's egress rules as the cache keeps them: by id and by routing node, patched in
place by our own writes, and the view's lazily copied lists of them."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TypeVar, cast

from kaput_not.core.model import Egress

G = TypeVar("G")


#: Groups grow as tuples up to this many items, then as a list (see `grouped`).
_SMALL_GROUP = 4


def grouped(pairs: Iterable[tuple[str, G]]) -> dict[str, tuple[G, ...]]:
    """The items of `(key, item)` pairs by key, as tuples (smaller than a one-item list).
    Nearly every group holds one or two items: those grow as tuples, where a list
    per group cost measurably more while a list was read again; a group past a few
    items (a gateway node routing many rules) grows as a list, so it stays linear."""
    groups: dict[str, tuple[G, ...] | list[G]] = {}
    grown: list[str] = []
    for key, item in pairs:
        found = groups.get(key)
        if found is None:
            groups[key] = (item,)
        elif isinstance(found, list):
            found.append(item)
        elif len(found) < _SMALL_GROUP:
            groups[key] = (*found, item)
        else:
            groups[key] = [*found, item]
            grown.append(key)
    for key in grown:
        groups[key] = tuple(groups[key])
    return cast(dict[str, tuple[G, ...]], groups)  # every list made a tuple


class Lists(Mapping[str, Sequence[Egress]]):
    """A view's egress lists, copied out of the cache when read. A node event that finds its
    node's rules through `routed` copies none of them (20,000 pointers per event at 10,000
    dual-stack nodes); a pass reads them synchronously after the view, so it sees one state."""

    __slots__ = ("_by_network",)

    def __init__(self, by_network: dict[str, Rules]) -> None:
        self._by_network = by_network

    def __getitem__(self, network: str) -> list[Egress]:
        return self._by_network[network].values()

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_network)

    def __len__(self) -> int:
        return len(self._by_network)


class Rules:
    """One network's egress list, by id and by routing node id, patched in place.

    A node's rules are a tuple, not a dict: nearly every node routes one or two, and a
    two-entry dict takes about three times a tuple's memory. The price: a write through a node
    copies that node's tuple, so writes through one gateway node routing k rules cost O(k) each.
    """

    __slots__ = ("_by_id", "_by_node")

    def __init__(self, egresses: Iterable[Egress]) -> None:
        self._by_id: dict[str, Egress] = {}
        for egress in egresses:
            self._by_id.pop(egress.id, None)  # an id listed twice: the last, as `put` keeps it
            self._by_id[egress.id] = egress
        self._by_node: dict[str, tuple[Egress, ...]] = grouped(
            (node_id, egress) for egress in self._by_id.values() for node_id in egress.nodes
        )

    def __len__(self) -> int:
        return len(self._by_id)

    @property
    def by_id(self) -> Mapping[str, Egress]:
        return self._by_id

    def values(self) -> list[Egress]:
        return list(self._by_id.values())

    def routed_through(self, node_id: str) -> tuple[Egress, ...]:
        return self._by_node.get(node_id, ())

    def put(self, egress: Egress, *, replacing: str | None = None) -> Rules:
        if replacing is not None:
            self.drop(replacing)
        self.drop(egress.id)  # never twice in a node's tuple
        self._by_id[egress.id] = egress
        for node_id in egress.nodes:
            self._by_node[node_id] = (*self._by_node.get(node_id, ()), egress)
        return self

    def drop(self, egress_id: str) -> Rules:
        old = self._by_id.pop(egress_id, None)
        for node_id in old.nodes if old is not None else ():
            rest = tuple(e for e in self._by_node.get(node_id, ()) if e.id != egress_id)
            if rest:
                self._by_node[node_id] = rest
            else:
                self._by_node.pop(node_id, None)
        return self
