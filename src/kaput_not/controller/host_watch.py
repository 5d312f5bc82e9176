"""The controller's watch of Netmaker's host and node lists.

Netmaker has no watch API, so the controller polls the lists (cached: at most one read per
TTL) and compares each host name's memberships with the last read:
- a host that changed (joined late, moved network, left) enqueues the Kubernetes nodes that
  claim it, so a host that joins after its node still gets its rules (docs/design.md rule 6);
- a membership that was removed queues a full pass: Netmaker strips a removed node from every
  rule and keeps the rules, which no node name can claim any more.
A node pass whose host the cached lists do not know yet asks for one early refresh of them,
rate-limited, instead of waiting a TTL for the poll.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence

from kaput_not import ratelimit
from kaput_not.controller.circuit import Circuit, Retry, decide
from kaput_not.controller.queue import WorkQueue
from kaput_not.core.claims import KubeClaims
from kaput_not.core.model import Host, NmNode
from kaput_not.netmaker import errors
from kaput_not.netmaker.cache import CachedNetmaker

log = logging.getLogger("kaput_not.controller")

#: While Netmaker fails, the poll backs off up to this many seconds instead of asking every TTL.
POLL_BACKOFF_CAP_SECONDS = 300.0

#: (host id, network, node id, routable): one Netmaker membership of a host name.
_Membership = tuple[str, str, str, bool]
#: A host name's memberships, sorted. A tuple, not a set: a set per host costs far more.
Fingerprint = tuple[_Membership, ...]


def fingerprints(hosts: Sequence[Host], nodes: Sequence[NmNode]) -> dict[str, Fingerprint]:
    """Per host name, every membership of every host of that name. A change means re-plan.

    A host without nodes counts as one membership of its own, so its appearing is a change.
    """
    by_host: dict[str, list[NmNode]] = {}
    for node in nodes:
        by_host.setdefault(node.host_id, []).append(node)
    prints: dict[str, list[_Membership]] = {}
    for host in hosts:
        entry = prints.setdefault(host.name, [])
        members = by_host.get(host.id)
        if not members:
            entry.append((host.id, "", "", True))
        for node in members or ():
            entry.append((host.id, node.network, node.id, node.routable))
    return {
        name: (entry[0],) if len(entry) == 1 else tuple(sorted(set(entry)))
        for name, entry in prints.items()
    }


def lost_membership(previous: dict[str, Fingerprint], current: dict[str, Fingerprint]) -> bool:
    """Whether a membership of `previous` is missing from `current`. A host's placeholder for
    "no nodes yet" is no membership: its going (the host joined a network) loses nothing."""
    return any(
        member[2] and member not in current.get(name, ())
        for name, members in previous.items()
        if current.get(name) != members
        for member in members
    )


class HostWatch:
    def __init__(
        self,
        *,
        netmaker: CachedNetmaker,
        queue: WorkQueue[str],
        claims: KubeClaims,
        circuit: Circuit,
        full_pass_key: str,
        poll_seconds: float,
        inventory_refresh_seconds: float,
        clock: ratelimit.Clock,
        fail: Callable[[Exception], None],
    ) -> None:
        self._netmaker = netmaker
        self._queue = queue
        self._claims = claims
        self._circuit = circuit
        self._full_pass_key = full_pass_key
        self._poll_seconds = poll_seconds
        self._inventory_refresh_seconds = inventory_refresh_seconds
        self._clock = clock
        self._fail = fail
        # The host fingerprints later changes are measured from, and the lists they were taken
        # from: the same lists again (within the TTL, and on every resync) give the same
        # fingerprints without computing them again.
        self._fingerprinted: (
            tuple[Sequence[Host], Sequence[NmNode], dict[str, Fingerprint]] | None
        ) = None
        self._host_names_memo: tuple[list[Host], frozenset[str]] | None = None
        self._inventory_refreshed_at = float("-inf")

    async def run(self, running: Callable[[], bool]) -> None:
        """Poll every `poll_seconds` while `running()`; back off while the reads fail."""
        backoff: ratelimit.ExponentialBackoff[str] = ratelimit.ExponentialBackoff(
            base=self._poll_seconds, cap=POLL_BACKOFF_CAP_SECONDS, jitter=0.2
        )
        wait = self._poll_seconds
        while running():
            await asyncio.sleep(wait)
            if self._circuit.is_open:
                wait = self._poll_seconds  # the probe asks; the recovery re-plans
                continue
            if await self._attempt(self.check, "watching Netmaker hosts"):
                backoff.forget("poll")
                wait = self._poll_seconds
            else:
                wait = backoff.when("poll")

    async def _attempt(self, step: Callable[[], Awaitable[object]], what: str) -> bool:
        """Run a read-only `step`; a Netmaker error is logged (the caller tries again later), a
        rejected password stops the controller. True when the step succeeded."""
        try:
            await step()
        except errors.CredentialsRejected as exc:
            self._fail(exc)
            raise
        except errors.NetmakerError as exc:
            if decide(exc) is Retry.SERVER:
                self._circuit.trip(exc)
            else:
                log.warning("%s failed: %s", what, exc)
            return False
        return True

    async def check(self) -> list[str]:
        """Enqueue Kubernetes nodes whose Netmaker host or memberships changed; return them."""
        hosts = await self._netmaker.hosts()  # one at a time, as in the cache's view()
        nodes = await self._netmaker.nodes()
        previous = self._fingerprinted[2] if self._fingerprinted is not None else None
        current = self.remember(hosts, nodes)
        if previous is None:
            return []
        hosts_changed = {
            host
            for host in current.keys() | previous.keys()
            if current.get(host) != previous.get(host)
        }
        # The Kubernetes nodes matched to those hosts: by name, or by the host annotation.
        changed = sorted({k.name for host in hosts_changed for k in self._claims.claimants(host)})
        for name in changed:
            log.info("Netmaker host of node %s changed; reconciling the node", name)
            self._queue.add(name)
        if lost_membership(previous, current):
            # Netmaker strips a removed node from every rule and keeps the rules (`nodes: {}`):
            # no node name can claim them, so only a full pass cleans them up.
            log.info("Netmaker hosts or memberships were removed; queueing a full pass")
            self._queue.add(self._full_pass_key)
        return changed

    def remember(self, hosts: Sequence[Host], nodes: Sequence[NmNode]) -> dict[str, Fingerprint]:
        """The fingerprints of these lists, kept as the ones the next changes are measured
        from. A full pass calls it with the lists it planned every node against, so a host
        that appeared after an event's (cached) read is still noticed."""
        memo = self._fingerprinted
        if memo is not None and memo[0] is hosts and memo[1] is nodes:
            return memo[2]
        prints = fingerprints(hosts, nodes)
        self._fingerprinted = (hosts, nodes, prints)
        return prints

    async def know_host(self, name: str, host: str) -> None:
        """Refresh the cached host and node lists once if they do not know node `name`'s
        Netmaker `host` yet.

        Netmaker hosts usually join before their Kubernetes node registers, so the node's event
        would otherwise be planned against lists cached before the host existed, and wait a
        TTL for the host watch. Rate-limited: a burst of unknown names costs one refresh.
        """
        # The lists a node pass plans on: known there is known enough (even while they refresh).
        hosts = await self._netmaker.hosts(stale_ok=True)
        if host in self._host_names(hosts):
            return
        now = self._clock()
        wait = self._inventory_refreshed_at + self._inventory_refresh_seconds - now
        if wait > 0:
            # Refreshed a moment ago, maybe just before this host joined: look again once the
            # rate limit allows, instead of waiting for the next host poll.
            self._queue.add_after(name, wait)
            return
        self._inventory_refreshed_at = now
        self._netmaker.refresh_inventory()

    def _host_names(self, hosts: list[Host]) -> frozenset[str]:
        """The names in `hosts`, computed once per list (node events come by the hundred)."""
        memo = self._host_names_memo
        if memo is None or memo[0] is not hosts:
            memo = self._host_names_memo = (hosts, frozenset(h.name for h in hosts))
        return memo[1]
