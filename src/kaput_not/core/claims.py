"""Who claims what, across every Kubernetes node: the lookups a single-node pass needs to judge
one node against all the others without scanning them.

- `claimants(host)`: the nodes that resolve to a Netmaker host name (by their own name or by the
  host annotation), so a pass can tell the owner by name from an annotation that would take it.
- `overlapping(node)`: the other nodes whose pod CIDRs overlap this node's, so two nodes routing
  one range are both refused, whichever event came first. Only a CIDR that could be written
  counts: a default route (never indexed) or one outside the cluster's pod ranges (`within`)
  is refused on its own, so one broken or hostile node cannot refuse every other node.

Maintained incrementally (`update(old, new)` per informer event), or built once from a list
(a full pass, `plan` without an index). Pure: the core's own data, no adapter.
"""

from __future__ import annotations

import bisect
import ipaddress
import socket
from collections import Counter
from collections.abc import Iterable, Sequence

from kaput_not.core.model import KubeNode

#: (IP version, first address, prefix length, node name): a pod CIDR, sorted by where it starts.
_Entry = tuple[int, int, int, str]


#: (IP version, first address, prefix length): a CIDR read as numbers.
Span = tuple[int, int, int]


def parse_cidr(text: str) -> Span | None:
    """`text` as `ipaddress.ip_network(text, strict=False)` reads it (host bits cleared), or
    None where that refuses it. Every informer event and every node of a full pass reads its
    pod CIDRs here: the usual address/length form goes through `socket.inet_pton` (C, a pure
    function), about ten times cheaper than ipaddress, which reads every other form."""
    address, slash, length = text.partition("/")
    if slash and length.isascii() and length.isdigit():
        six = ":" in address
        try:
            packed = socket.inet_pton(socket.AF_INET6 if six else socket.AF_INET, address)
        except (OSError, ValueError):
            # An IPv6 scope, a NUL byte or a non-ASCII character: ipaddress has the last word.
            return _parsed(text)
        bits = 128 if six else 32
        prefix = int(length)
        if prefix > bits:
            return None
        host_bits = bits - prefix
        return (6 if six else 4, int.from_bytes(packed, "big") >> host_bits << host_bits, prefix)
    return _parsed(text)


def last_address(span: Span) -> int:
    version, start, prefix = span
    return start | ((1 << ((32 if version == 4 else 128) - prefix)) - 1)


def inside(span: Span, within: Sequence[Span]) -> bool:
    """Whether `span` lies within one of `within` (an empty `within`: no bounds, always)."""
    if not within:
        return True
    end = last_address(span)
    return any(
        o[0] == span[0] and o[2] <= span[2] and o[1] <= span[1] and end <= last_address(o)
        for o in within
    )


def _parsed(text: str) -> Span | None:
    try:
        net = ipaddress.ip_network(text, strict=False)
    except ValueError:
        return None  # the planner reports an unparsable CIDR itself
    return net.version, int(net.network_address), net.prefixlen


def _entries(node: KubeNode) -> list[_Entry]:
    found: list[_Entry] = []
    for cidr in node.pod_cidrs:
        span = parse_cidr(cidr.strip())
        # A default route is refused on its own (rule 13) and would overlap every node.
        if span is not None and span[2]:
            found.append((*span, node.name))
    return found


class KubeClaims:
    """Host claims and pod CIDRs of every Kubernetes node, kept up to date event by event."""

    __slots__ = ("_by_host", "_cidrs", "_lengths", "_overlaps")

    def __init__(self, nodes: Iterable[KubeNode] = ()) -> None:
        # One node per host name nearly always: the node itself, a tuple only when shared.
        self._by_host: dict[str, KubeNode | tuple[KubeNode, ...]] = {}
        self._cidrs: list[_Entry] = []
        self._lengths: Counter[tuple[int, int]] = Counter()
        # The last sweep, with the cluster ranges it was made for.
        self._overlaps: tuple[tuple[Span, ...], dict[str, list[str]]] | None = None
        for node in nodes:
            self._claim(node)
            for entry in _entries(node):
                self._cidrs.append(entry)
                self._lengths[(entry[0], entry[2])] += 1
        self._cidrs.sort()

    def update(self, old: KubeNode | None, new: KubeNode | None) -> None:
        """Take in one change: `old` replaced by `new` (either may be None: added, deleted)."""
        self._overlaps = None
        if old is not None:
            self._unclaim(old)
            for entry in _entries(old):
                at = bisect.bisect_left(self._cidrs, entry)
                if at < len(self._cidrs) and self._cidrs[at] == entry:
                    del self._cidrs[at]
                    self._lengths[(entry[0], entry[2])] -= 1
                    if not self._lengths[(entry[0], entry[2])]:
                        del self._lengths[(entry[0], entry[2])]
        if new is not None:
            self._claim(new)
            for entry in _entries(new):
                bisect.insort(self._cidrs, entry)
                self._lengths[(entry[0], entry[2])] += 1

    def claimants(self, host: str) -> tuple[KubeNode, ...]:
        """Every node whose host name (its own, or its annotation's) is `host`."""
        found = self._by_host.get(host)
        if found is None:
            return ()
        return found if isinstance(found, tuple) else (found,)

    def overlapping(self, node: KubeNode, within: Sequence[Span] = ()) -> list[str]:
        """The names of the other nodes with a pod CIDR overlapping one of `node`'s, sorted.
        With `within` (the cluster's pod ranges), a CIDR outside them is left out on both
        sides: it is refused on its own, never written, so it overlaps nothing."""
        names: set[str] = set()
        for version, start, length, _ in _entries(node):
            if not inside((version, start, length), within):
                continue
            bits = 32 if version == 4 else 128
            end = start | ((1 << (bits - length)) - 1)
            # Inside it (or the same): a CIDR that starts within it.
            lo = bisect.bisect_left(self._cidrs, (version, start))
            hi = bisect.bisect_right(self._cidrs, (version, end, bits + 1))
            names.update(e[3] for e in self._cidrs[lo:hi] if inside(e[:3], within))
            # Around it: a shorter prefix of a length in use, starting where its supernet does.
            for v, shorter in self._lengths:
                if v != version or shorter >= length:
                    continue
                outer = start >> (bits - shorter) << (bits - shorter)
                if not inside((version, outer, shorter), within):
                    continue
                at = bisect.bisect_left(self._cidrs, (version, outer, shorter))
                while at < len(self._cidrs) and self._cidrs[at][:3] == (version, outer, shorter):
                    names.add(self._cidrs[at][3])
                    at += 1
        names.discard(node.name)
        return sorted(names)

    def overlaps(self, within: Sequence[Span] = ()) -> dict[str, list[str]]:
        """Every node with a pod CIDR overlapping another node's, with those nodes (sorted):
        what `overlapping` says of each node (with the same `within`), found in one sweep for a
        full pass (a query per node parsed every CIDR again). Kept until the next `update`."""
        within = tuple(within)
        if self._overlaps is not None and self._overlaps[0] == within:
            return self._overlaps[1]
        found: dict[str, set[str]] = {}
        # CIDRs are nested or apart: in start order, the open ones enclosing a CIDR are a stack.
        open_: list[tuple[int, int, str]] = []  # (version, last address, name)
        for version, start, length, name in self._cidrs:
            if not inside((version, start, length), within):
                continue
            end = start | ((1 << ((32 if version == 4 else 128) - length)) - 1)
            while open_ and (open_[-1][0] != version or open_[-1][1] < start):
                open_.pop()
            for _, _, outer in open_:
                if outer != name:
                    found.setdefault(name, set()).add(outer)
                    found.setdefault(outer, set()).add(name)
            open_.append((version, end, name))
        swept = {name: sorted(others) for name, others in found.items()}
        self._overlaps = (within, swept)
        return swept

    def _claim(self, node: KubeNode) -> None:
        host = node.netmaker_host
        found = self._by_host.get(host)
        if found is None:
            self._by_host[host] = node
        else:
            kept = found if isinstance(found, tuple) else (found,)
            self._by_host[host] = (*(k for k in kept if k.name != node.name), node)

    def _unclaim(self, node: KubeNode) -> None:
        host = node.netmaker_host
        found = self._by_host.get(host)
        if found is None:
            return
        kept = tuple(
            k for k in (found if isinstance(found, tuple) else (found,)) if k.name != node.name
        )
        if not kept:
            del self._by_host[host]
        else:
            self._by_host[host] = kept[0] if len(kept) == 1 else kept
