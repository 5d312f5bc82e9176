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

Each list's keeping (TTL, stale serving, the shared call, the re-read, the journal) is
`cached_list.py`'s; the egress lists' indexes are `rules.py`'s.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence, Sized
from typing import Protocol, TypeVar

from kaput_not.core.model import Egress, EgressSpec, Host, Network, NmNode
from kaput_not.core.planner import NetmakerView
from kaput_not.core.planner import members as planner_members
from kaput_not.netmaker import errors
from kaput_not.netmaker.cached_list import CachedList
from kaput_not.netmaker.rules import Lists, Rules, grouped
from kaput_not.ratelimit import Clock, ExponentialBackoff

#: After a failed read, node passes keep planning on the stale lists this long before one of
#: them reads again (one read a second at most, not one per node event): a fixed wait.
_RETRY_AFTER = 1.0

T = TypeVar("T")
L = TypeVar("L", bound=Sized)
H = TypeVar("H", Host, NmNode)


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


_Members = Callable[[str], tuple[Sequence[Host], Sequence[NmNode]]]


class CachedNetmaker:
    """Reads through a TTL cache; writes go to Netmaker, then patch the cache."""

    def __init__(
        self,
        api: NetmakerApi,
        *,
        ttl: float = 30.0,
        clock: Clock = time.monotonic,
        read_backoff: ExponentialBackoff[str] | None = None,
    ) -> None:
        """`read_backoff`: how long, by list, node passes keep planning on a stale list after
        its read failed (by default a fixed `_RETRY_AFTER`)."""
        if ttl < 0:
            raise ValueError(f"cache TTL must be >= 0 seconds, got {ttl}")
        self._api = api
        self._ttl = ttl
        self._clock = clock
        if read_backoff is None:
            read_backoff = ExponentialBackoff(base=_RETRY_AFTER, factor=1.0, cap=_RETRY_AFTER)
        self._read_backoff = read_backoff
        # One list read at a time, background refreshes included: each big list is held twice
        # while it is read (its JSON and its objects), so reads side by side add up.
        self._one_read = asyncio.Lock()
        self._hosts: CachedList[list[Host]] = self._list("hosts")
        self._nodes: CachedList[list[NmNode]] = self._list("nodes")
        self._networks: CachedList[list[Network]] = self._list("networks")
        # Per network, the rules by id and by routing node: a write patches one entry, not the
        # whole list (at 10,000 nodes, rebuilding a 20,000-rule list per write made the first
        # sync quadratic), and a node event finds its node's rules without a scan.
        self._egress: dict[str, CachedList[Rules]] = {}
        # The network names of the last view, and the lists they were derived from.
        self._names: tuple[list[Network], list[NmNode], list[str]] | None = None
        # The host and node index of the last view (`_members`), and its lists.
        self._members_memo: tuple[list[Host], list[NmNode], _Members] | None = None

    def _list(self, name: str) -> CachedList[L]:
        return CachedList(
            name,
            ttl=self._ttl,
            clock=self._clock,
            retry=self._read_backoff,
            one_read=self._one_read,
        )

    # -- reads -----------------------------------------------------------------------------

    # Each read passes the objects the list it replaces holds (`held`): unchanged ones are
    # kept, not allocated again beside them while node passes still plan on the old list.

    async def hosts(self, *, stale_ok: bool = False) -> list[Host]:
        slot = self._hosts

        async def fetch() -> list[Host]:
            return await self._api.list_hosts(held=_by_id(slot))

        return await slot.read(fetch, stale_ok)

    async def nodes(self, *, stale_ok: bool = False) -> list[NmNode]:
        slot = self._nodes

        async def fetch() -> list[NmNode]:
            return await self._api.list_nodes(held=_by_id(slot))

        return await slot.read(fetch, stale_ok)

    async def networks(self, *, stale_ok: bool = False) -> list[Network]:
        return await self._networks.read(self._api.list_networks, stale_ok)

    async def egress(self, network: str) -> list[Egress]:
        return (await self._rules(network)).values()

    async def _rules(self, network: str, stale_ok: bool = False) -> Rules:
        slot = self._egress.get(network)
        if slot is None:
            slot = self._egress[network] = self._list(f"the egress list of {network}")

        async def fetch() -> Rules:
            rules = slot.held
            held = rules.by_id if rules is not None else None
            return Rules(await self._api.list_egress(network, held=held))

        return await slot.read(fetch, stale_ok)

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
        egress = Lists(by_network) if stale_ok else {n: r.values() for n, r in by_network.items()}
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
        by_name = grouped((host.name, host) for host in hosts)
        by_host = grouped((node.host_id, node) for node in nodes)

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
        self._hosts.drop()
        self._nodes.drop()

    def invalidate(self) -> None:
        """Forget everything; the next read of each list goes to Netmaker."""
        self._hosts.drop()
        self._nodes.drop()
        self._networks.drop()
        for slot in self._egress.values():
            slot.drop()

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

    def _patch(self, network: str, patch: Callable[[Rules], Rules]) -> None:
        slot = self._egress.get(network)
        if slot is not None:
            slot.patch(patch)


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


def _by_id(slot: CachedList[list[H]]) -> dict[str, H] | None:
    """The items of the list `slot` holds, by id (None when it holds none)."""
    items = slot.held
    return {item.id: item for item in items} if items is not None else None
