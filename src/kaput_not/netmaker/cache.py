"""One cached snapshot of Netmaker, kept current by our own writes.

A pass needs hosts, nodes, networks and the egress list of every network. Listing them for each
of a thousand node events would cost thousands of calls, so the lists are kept for a TTL, and
our own creates, updates and deletes patch the cached lists instead of throwing them away
(write-through). Concurrent readers of one list share one in-flight call.

How it can be wrong, and what bounds it:
- Changes made by others (a host joining, a hand edit) are seen within one TTL. A node pass
  may plan on lists up to twice the TTL old while their refresh runs (`view(stale_ok=True)`),
  so a refresh of 10,000 hosts does not hold every node event back until it lands; a full
  pass always waits for it.
- A write whose outcome is unknown (timeout, reset, a 5xx after sending), or that the server
  refused, means the cache may disagree with the server: everything is dropped, and the next
  read lists again.
- A write that lands while a list call for its network is in flight is replayed onto that
  list's result, so the answer includes the write whether or not the server's list did.
- A list that comes back empty or sharply shrunk against the last one (`suspect_shrink`) is
  read once more, and the second answer is taken: one bad answer from a broken server or proxy
  must not become a plan that deletes (or re-creates) half the mesh.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar, cast

from kaput_not.core.model import Egress, EgressSpec, Host, Network, NmNode
from kaput_not.core.planner import NetmakerView
from kaput_not.core.planner import members as planner_members
from kaput_not.core.suspect import suspect_shrink
from kaput_not.netmaker import errors

log = logging.getLogger("kaput_not.netmaker.cache")

#: After a failed read, node passes keep planning on the stale lists this long before one of
#: them reads again (one read a second at most, not one per node event).
_RETRY_AFTER = 1.0

T = TypeVar("T")
H = TypeVar("H", Host, NmNode)
G = TypeVar("G")


class NetmakerApi(Protocol):
    """What the cache needs from a Netmaker client."""

    async def list_hosts(self, *, held: Mapping[str, Host] | None = None) -> list[Host]: ...
    async def list_nodes(self, *, held: Mapping[str, NmNode] | None = None) -> list[NmNode]: ...
    async def list_networks(self) -> list[Network]: ...
    async def list_egress(
        self, network: str, *, held: Mapping[str, Egress] | None = None
    ) -> list[Egress]: ...
    async def create_egress(self, spec: EgressSpec) -> Egress: ...
    async def update_egress(self, egress_id: str, spec: EgressSpec) -> Egress: ...
    async def delete_egress(self, egress_id: str) -> None: ...


@dataclass(slots=True)
class _Entry(Generic[T]):
    value: T
    fetched_at: float


@dataclass(slots=True)
class _Slot(Generic[T]):
    """One cached list: its value, and the call filling it if one is running."""

    entry: _Entry[T] | None = None
    inflight: asyncio.Future[T] | None = None
    #: Writes made while `inflight` runs, replayed onto its result.
    journal: list[Callable[[T], T]] = field(default_factory=list)
    #: How long the list was when last read (kept when the entry is dropped).
    last_size: int | None = None
    #: When the last read failed (None after a success): refreshes in the background wait.
    failed_at: float | None = None


class CachedNetmaker:
    """Reads through a TTL cache; writes go to Netmaker, then patch the cache."""

    def __init__(
        self, api: NetmakerApi, *, ttl: float = 30.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if ttl < 0:
            raise ValueError(f"cache TTL must be >= 0 seconds, got {ttl}")
        self._api = api
        self._ttl = ttl
        self._clock = clock
        self._hosts: _Slot[list[Host]] = _Slot()
        self._nodes: _Slot[list[NmNode]] = _Slot()
        self._networks: _Slot[list[Network]] = _Slot()
        # Per network, the rules by id and by routing node: a write patches one entry, not the
        # whole list (at 10,000 nodes, rebuilding a 20,000-rule list per write made the first
        # sync quadratic), and a node event finds its node's rules without a scan.
        self._egress: dict[str, _Slot[_Rules]] = {}
        # The network names of the last view, and the lists they were derived from.
        self._names: tuple[list[Network], list[NmNode], list[str]] | None = None
        # The host and node index of the last view (`_members`), and its lists.
        self._members_memo: tuple[list[Host], list[NmNode], _Members] | None = None
        # One list read at a time, background refreshes included: each big list is held twice
        # while it is read (its JSON and its objects), so reads side by side add up.
        self._one_read = asyncio.Lock()

    # -- reads -----------------------------------------------------------------------------

    # Each read passes the objects the list it replaces holds (`held`): unchanged ones are
    # kept, not allocated again beside them while node passes still plan on the old list.

    async def hosts(self, *, stale_ok: bool = False) -> list[Host]:
        slot = self._hosts

        async def fetch() -> list[Host]:
            return await self._api.list_hosts(held=_by_id(slot))

        return await self._read(slot, fetch, stale_ok)

    async def nodes(self, *, stale_ok: bool = False) -> list[NmNode]:
        slot = self._nodes

        async def fetch() -> list[NmNode]:
            return await self._api.list_nodes(held=_by_id(slot))

        return await self._read(slot, fetch, stale_ok)

    async def networks(self, *, stale_ok: bool = False) -> list[Network]:
        return await self._read(self._networks, self._api.list_networks, stale_ok)

    async def egress(self, network: str) -> list[Egress]:
        return (await self._rules(network)).values()

    async def _rules(self, network: str, stale_ok: bool = False) -> _Rules:
        slot = self._egress.setdefault(network, _Slot())

        async def fetch() -> _Rules:
            held = slot.entry.value.by_id if slot.entry is not None else None
            return _Rules(await self._api.list_egress(network, held=held))

        return await self._read(slot, fetch, stale_ok)

    async def view(self, *, stale_ok: bool = False) -> NetmakerView:
        """Hosts, nodes and the egress list of every network that has nodes or is declared.

        `stale_ok`: a list past its TTL but younger than twice the TTL is returned at once, its
        refresh running in the background (for node passes; see the module's notes).
        """
        # Within the TTL none of the lists is read at all; past it, one at a time (`_one_read`).
        hosts = await self.hosts(stale_ok=stale_ok)
        nodes = await self.nodes(stale_ok=stale_ok)
        networks = await self.networks(stale_ok=stale_ok)
        names = self._network_names(networks, nodes)
        lists = await asyncio.gather(*(self._rules(n, stale_ok) for n in names))
        by_network = dict(zip(names, lists, strict=True))

        def routed(node_ids: Iterable[str]) -> list[Egress]:
            """Every listed rule with one of `node_ids` in its `nodes` (no scan)."""
            found: dict[str, Egress] = {}
            for rules in by_network.values():
                for node_id in node_ids:
                    for egress in rules.routed_through(node_id):
                        found[egress.id] = egress
            return list(found.values())

        # A node pass reads its lists at once, so they are copied only if it reads them; a full
        # pass (and `kaput-not plan`) keeps its view past its own writes: copied now, a snapshot.
        egress = _Lists(by_network) if stale_ok else {n: r.values() for n, r in by_network.items()}
        members = self._members(hosts, nodes)
        # Each network's own ranges: a pod CIDR overlapping one is refused (rule 13).
        ranges = {n.name: n.ranges for n in networks if n.ranges}
        return NetmakerView(
            hosts=hosts,
            nodes=nodes,
            egress=egress,
            routed=routed,
            members=members,
            address_ranges=ranges,
        )

    def _members(self, hosts: list[Host], nodes: list[NmNode]) -> _Members:
        """`planner.members` for these lists, from an index built once per pair of lists (kept
        by identity): each node event otherwise scanned 10,000 hosts and 10,000 nodes."""
        memo = self._members_memo
        if memo is not None and memo[0] is hosts and memo[1] is nodes:
            return memo[2]
        by_name = _grouped((host.name, host) for host in hosts)
        by_host = _grouped((node.host_id, node) for node in nodes)

        def lookup(name: str) -> tuple[Sequence[Host], Sequence[NmNode]]:
            named = by_name.get(name, ())
            found = {node.id: node for host in named for node in by_host.get(host.id, ())}
            if any(node_id not in found for host in named for node_id in host.node_ids):
                # A node a host lists under another host id: rare, so found by a scan.
                return planner_members(hosts, nodes, name)
            return named, tuple(found.values())

        self._members_memo = (hosts, nodes, lookup)
        return lookup

    def _network_names(self, networks: list[Network], nodes: list[NmNode]) -> list[str]:
        """Declared networks and every network a node is in; computed once per pair of lists
        (kept by identity, so a list freed and another allocated at its address is no match)."""
        memo = self._names
        if memo is not None and memo[0] is networks and memo[1] is nodes:
            return memo[2]
        names = sorted({n.name for n in networks} | {n.network for n in nodes if n.routable})
        self._names = (networks, nodes, names)
        return names

    async def probe(self) -> None:
        """One cheap uncached request (the network list: a handful of entries), to learn
        whether the server answers; the cache is left as it is."""
        await self._api.list_networks()

    def refresh_inventory(self) -> None:
        """Forget the host and node lists; egress lists stay (our writes keep them current)."""
        self._hosts.entry = None
        self._nodes.entry = None

    def invalidate(self) -> None:
        """Forget everything; the next read of each list goes to Netmaker."""
        self._hosts.entry = None
        self._nodes.entry = None
        self._networks.entry = None
        for slot in self._egress.values():
            slot.entry = None

    async def _read(
        self, slot: _Slot[T], fetch: Callable[[], Awaitable[T]], stale_ok: bool = False
    ) -> T:
        entry = slot.entry
        stale: _Entry[T] | None = None  # what a node pass may plan on while the refresh runs
        if entry is not None:
            age = self._clock() - entry.fetched_at
            if age < self._ttl:
                return entry.value
            if stale_ok and age < 2 * self._ttl:
                stale = entry
        if slot.inflight is None:
            failed = slot.failed_at
            if stale is not None and failed is not None and self._clock() - failed < _RETRY_AFTER:
                return stale.value  # the last refresh failed a moment ago: not one per event
            slot.inflight = asyncio.ensure_future(self._fill(slot, fetch))
            slot.inflight.add_done_callback(_seen)
        if stale is not None:
            return stale.value  # our writes keep patching it; the refresh replaces it
        # shield: one reader being cancelled must not cancel the call the others wait on.
        return await asyncio.shield(slot.inflight)

    async def _fill(self, slot: _Slot[T], fetch: Callable[[], Awaitable[T]]) -> T:
        started = self._clock()
        try:
            async with self._one_read:
                value = await fetch()
            if slot.last_size is not None and suspect_shrink(slot.last_size, _size(value)):
                log.warning(
                    "a Netmaker list shrank from %d to %d items; reading it again before "
                    "believing it",
                    slot.last_size,
                    _size(value),
                )
                async with self._one_read:
                    value = await fetch()
            for patch in slot.journal:
                value = patch(value)
            slot.last_size = _size(value)  # after our own writes, as `_patch` counts them
            slot.entry = _Entry(value, started)
        except Exception:
            slot.failed_at = self._clock()
            raise
        else:
            slot.failed_at = None
            return value
        finally:
            slot.journal.clear()
            slot.inflight = None

    # -- writes ----------------------------------------------------------------------------

    async def create_egress(self, spec: EgressSpec) -> Egress:
        created = _sharing(await self._write(self._api.create_egress(spec)), spec)
        self._patch(created.network, lambda rules: rules.put(created))
        return created

    async def update_egress(self, target: Egress, spec: EgressSpec) -> Egress:
        updated = _sharing(await self._write(self._api.update_egress(target.id, spec)), spec)
        self._patch(target.network, lambda rules: rules.put(updated, replacing=target.id))
        return updated

    async def delete_egress(self, target: Egress) -> None:
        await self._write(self._api.delete_egress(target.id))
        self._patch(target.network, lambda rules: rules.drop(target.id))

    async def _write(self, call: Awaitable[T]) -> T:
        try:
            return await call
        except errors.Unreachable:
            raise  # never delivered: nothing changed
        except BaseException:
            # Unknown outcome, or refused because our picture was stale (e.g. a node that is
            # gone): either way the cache can no longer be trusted.
            self.invalidate()
            raise

    def _patch(self, network: str, patch: Callable[[_Rules], _Rules]) -> None:
        slot = self._egress.get(network)
        if slot is None:
            return
        if slot.entry is not None:
            slot.entry.value = patch(slot.entry.value)
            # Our own deletes shrink the list: the next read must not find that suspect.
            slot.last_size = len(slot.entry.value)
        if slot.inflight is not None:
            slot.journal.append(patch)


def _seen(call: asyncio.Future[T]) -> None:
    """Retrieve and report a refresh's failure: with no reader waiting (they took the stale
    lists), asyncio would call it never retrieved, and nobody would say it."""
    if not call.cancelled() and call.exception() is not None:
        log.warning("reading a Netmaker list failed: %s", call.exception())


def _sharing(stored: Egress, spec: EgressSpec) -> Egress:
    """`stored`, holding the spec's own strings and node map when the server kept what we sent.

    The plan that wrote it holds the spec already: sharing keeps one copy of each value, not
    two, for every rule a first sync writes.
    Anything the server changed is kept as the server answered it.
    """
    shared = Egress(
        id=stored.id,
        network=spec.network,
        name=spec.name,
        description=spec.description,
        range=spec.range,
        nat=spec.nat,
        status=spec.status,
        nodes=spec.nodes,
    )
    return shared if shared == stored else stored


_Members = Callable[[str], tuple[Sequence[Host], Sequence[NmNode]]]


#: Groups grow as tuples up to this many items, then as a list (see `_grouped`).
_SMALL_GROUP = 4


def _grouped(pairs: Iterable[tuple[str, G]]) -> dict[str, tuple[G, ...]]:
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


def _by_id(slot: _Slot[list[H]]) -> dict[str, H] | None:
    """The items of the list `slot` holds, by id (None when it holds none)."""
    return {item.id: item for item in slot.entry.value} if slot.entry is not None else None


def _size(value: object) -> int:
    return len(value) if isinstance(value, list | _Rules) else 0


class _Lists(Mapping[str, Sequence[Egress]]):
    """A view's egress lists, copied out of the cache when read. A node event that finds its
    node's rules through `routed` copies none of them (20,000 pointers per event at 10,000
    dual-stack nodes); a pass reads them synchronously after the view, so it sees one state."""

    __slots__ = ("_by_network",)

    def __init__(self, by_network: dict[str, _Rules]) -> None:
        self._by_network = by_network

    def __getitem__(self, network: str) -> list[Egress]:
        return self._by_network[network].values()

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_network)

    def __len__(self) -> int:
        return len(self._by_network)


class _Rules:
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
        self._by_node: dict[str, tuple[Egress, ...]] = _grouped(
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

    def put(self, egress: Egress, *, replacing: str | None = None) -> _Rules:
        if replacing is not None:
            self.drop(replacing)
        self.drop(egress.id)  # never twice in a node's tuple
        self._by_id[egress.id] = egress
        for node_id in egress.nodes:
            self._by_node[node_id] = (*self._by_node.get(node_id, ()), egress)
        return self

    def drop(self, egress_id: str) -> _Rules:
        old = self._by_id.pop(egress_id, None)
        for node_id in old.nodes if old is not None else ():
            rest = tuple(e for e in self._by_node.get(node_id, ()) if e.id != egress_id)
            if rest:
                self._by_node[node_id] = rest
            else:
                self._by_node.pop(node_id, None)
        return self
