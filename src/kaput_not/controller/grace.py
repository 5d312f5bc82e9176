"""The controller's grace clocks: how long a node's rules wait before they may go.

Two graces, both DELETE_GRACE long and both on the controller's one injected clock:
- a deleted node's rules wait, so a rebuild (deleted, then created again under the same name)
  merges with the delete into one pass that updates the rules in place; full passes leave them
  too until the grace ends;
- a node seen without pod CIDRs keeps its rules (docs/design.md rule 11); they go only if it
  still has none when the grace ends, and its key is queued again for that moment.
Beside them, the host each deleted or re-annotated node resolved to before: its rules are found
(and, in the delete grace, kept) through that host until its pass has run.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from kaput_not import ratelimit
from kaput_not.core.model import KubeNode
from kaput_not.kube.informer import NodeEvent


class GraceClocks:
    def __init__(
        self,
        *,
        grace_seconds: float,
        clock: ratelimit.Clock,
        requeue_after: Callable[[str, float], None],
    ) -> None:
        self._grace = grace_seconds
        self._clock = clock
        #: Queues a node's key again after so many seconds (the work queue's `add_after`).
        self._requeue_after = requeue_after
        #: The host a deleted or re-annotated node resolved to before, until its pass ran.
        self._resolved: dict[str, str] = {}
        #: When each node was first seen without pod CIDRs (rule 11's grace starts there).
        self._cidrless_since: dict[str, float] = {}
        #: When each node was deleted: full passes leave its rules for DELETE_GRACE too.
        self._deleted_at: dict[str, float] = {}

    def on_event(self, event: NodeEvent) -> None:
        """Remember the host a node leaves (deleted, or annotated to another host)."""
        if event.old is not None and (
            event.new is None or event.new.netmaker_host != event.old.netmaker_host
        ):
            self._resolved[event.name] = event.old.netmaker_host

    def deleted(self, name: str) -> float:
        """Start node `name`'s delete grace; returns how long its pass should wait."""
        self._deleted_at[name] = self._clock()
        return self._grace

    def deleted_recently(self, stored: Callable[[str], KubeNode | None]) -> frozenset[str]:
        """The deleted nodes still in their grace; `stored` reads the node store, where a node
        created again has ended its grace."""
        now = self._clock()
        for name, when in list(self._deleted_at.items()):
            if now - when >= self._grace or stored(name) is not None:
                del self._deleted_at[name]
        return frozenset(self._deleted_at)

    def cidrless_expired(self, nodes: list[KubeNode], *, only: str | None = None) -> frozenset[str]:
        """Rule 11: the nodes without pod CIDRs for longer than the grace.

        The grace starts when a node is first seen without CIDRs; its key is queued again for
        when the grace ends, so its rules go then if it still has none.
        """
        now = self._clock()
        present = {n.name for n in nodes}
        for name in [only] if only is not None else list(self._cidrless_since):
            if name not in present:
                self._cidrless_since.pop(name, None)  # deleted: the delete grace covers it
        expired: set[str] = set()
        for node in nodes:
            if node.pod_cidrs:
                self._cidrless_since.pop(node.name, None)
                continue
            since = self._cidrless_since.setdefault(node.name, now)
            left = since + self._grace - now
            if left <= 0:
                expired.add(node.name)
            else:
                self._requeue_after(node.name, left)
        return frozenset(expired)

    def resolved(self) -> Mapping[str, str]:
        """The hosts deleted or re-annotated nodes resolved to before (a copy)."""
        return dict(self._resolved)

    def full_pass_done(self) -> None:
        """A full pass planned every host: earlier hosts matter only to deletes still in their
        grace."""
        self._resolved = {n: h for n, h in self._resolved.items() if n in self._deleted_at}

    def node_pass_done(self, name: str) -> None:
        """Node `name`'s pass wrote what it planned: its earlier host is done with, unless it
        is in its delete grace, where full passes still need that host."""
        if name not in self._deleted_at:
            self._resolved.pop(name, None)
