"""Node informer: a paged list, then a watch from the list's resourceVersion, forever.

The store keeps name, resourceVersion and pod CIDRs per node, nothing else. Handlers get
`NodeEvent`s; they should only enqueue, because the reconcile reads the store again (level
based), so a stale or duplicated event never drives a write.

Failure handling, in order of what happens most:
- the watch ends after its server timeout: watch again from the last resourceVersion seen
  (bookmarks keep it fresh even when nothing changes);
- 410 Gone (on start or as an ERROR event), any other ERROR event, or a broken stream: list
  again and diff against the store, so nodes deleted in the gap become delete events;
- the API server is unreachable or answers errors: back off exponentially with jitter (1 s up
  to 30 s), never a hot loop.

`synced` is set after the first complete list; until then nothing may delete.

Choosing the nodes: `label_selector` (NODE_SELECTOR) goes to the API server with the list and
the watch, so the store holds only the selected nodes, and a node whose labels stop matching
arrives as a DELETED event (the server's rule for selector watches). A node annotated
`kaput-not.io/ignore: "true"` is left out here the same way. Either way a node left out is,
to everything after the informer, a node that is gone: its rules go after the delete grace,
through the write guard, and nothing warns about it.

A relist that comes back empty, or sharply shrunk (more than half of the store and more than
5 nodes gone), is suspect: a broken or lying API server must not turn into one
delete event per node. It is read once more after `confirm_delay`, and only the second answer
is applied. The first list of a process is compared with `remembered`, the node count the
cluster last had (the write guard's state), and read again on any shrink: a new process has no
list of its own to compare with, and a partial first list would stand until the next relist.
"""

from __future__ import annotations

import asyncio
import logging
import random
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum

import msgspec

from kaput_not import ratelimit
from kaput_not.core.model import KubeNode
from kaput_not.core.suspect import suspect_first, suspect_shrink
from kaput_not.kube import wire
from kaput_not.kube.api import Gone, KubeApi, KubeError, denied

log = logging.getLogger("kaput_not.informer")

NODES = "/api/v1/nodes"


class EventKind(StrEnum):
    ADDED = "added"
    MODIFIED = "modified"
    DELETED = "deleted"


@dataclass(frozen=True, slots=True)
class NodeEvent:
    kind: EventKind
    name: str
    old: KubeNode | None
    new: KubeNode | None


@dataclass(slots=True)
class _Stored:
    node: KubeNode
    resource_version: str


class NodeInformer:
    def __init__(
        self,
        api: KubeApi,
        on_event: Callable[[NodeEvent], None],
        *,
        page_size: int = 500,
        watch_timeout_seconds: int = 300,
        backoff_initial: float = 1.0,
        backoff_max: float = 30.0,
        rand: random.Random | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        confirm_delay: float = 1.0,
        label_selector: str = "",
    ) -> None:
        self._api = api
        self._selector = {"labelSelector": label_selector} if label_selector else {}
        self._on_event = on_event
        self._page_size = page_size
        self._watch_timeout = watch_timeout_seconds
        self._backoff: ratelimit.ExponentialBackoff[str] = ratelimit.ExponentialBackoff(
            base=backoff_initial, cap=backoff_max, jitter=0.5, rng=rand
        )
        self._sleep = sleep
        self._confirm_delay = confirm_delay
        self._store: dict[str, _Stored] = {}
        self.synced = asyncio.Event()
        #: Nodes the cluster last had, as the write guard remembers (None: unknown). Set before
        #: the first list, which is read again when it shows fewer.
        self.remembered: int | None = None
        #: False from a broken watch until the relist: the store may miss changes meanwhile.
        self.fresh = True
        self.lists = 0
        self.watches = 0
        #: Why the last list or watch failed, until a list succeeds (None: it did), and
        #: whether the API refused us (RBAC: no retry mends it).
        self.problem: str | None = None
        self.denied = False

    # -- the store -------------------------------------------------------------------------

    def get(self, name: str) -> KubeNode | None:
        stored = self._store.get(name)
        return stored.node if stored else None

    def nodes(self) -> list[KubeNode]:
        return [s.node for s in self._store.values()]

    def __len__(self) -> int:
        return len(self._store)

    async def sync_once(self) -> None:
        """One complete list into the store, no watch: for one-shot commands."""
        await self._relist()

    # -- the loop --------------------------------------------------------------------------

    async def run(self) -> None:
        """List and watch until cancelled."""
        while True:
            try:
                version = await self._relist()
                self._backoff.forget(NODES)
                while True:
                    version = await self._watch(version)
            except Gone as exc:
                self.fresh = False
                log.info("node watch expired (%s); listing again", exc)
            except (KubeError, msgspec.DecodeError) as exc:
                self.fresh = False
                self.problem = f"listing or watching Kubernetes nodes failed: {exc}"
                self.denied = isinstance(exc, KubeError) and denied(exc)
                delay = self._backoff.when(NODES)
                log.warning("node list/watch failed (%s); retrying in %.1fs", exc, delay)
                await self._sleep(delay)

    async def _relist(self) -> str:
        """A complete paged list, diffed against the store; returns its resourceVersion."""
        seen, version = await self._list()
        if self.synced.is_set():
            before: int | None = len(self._store)
            suspect = suspect_shrink(len(self._store), len(seen))
        else:
            before = self.remembered
            suspect = before is not None and suspect_first(before, len(seen))
        if suspect:
            log.warning(
                "the node list shrank from %d to %d; reading it again before believing it",
                before,
                len(seen),
            )
            await self._sleep(self._confirm_delay)
            seen, version = await self._list()
        self.lists += 1
        self._replace(seen)
        self.synced.set()
        self.fresh = True
        self.problem, self.denied = None, False
        return version

    async def _list(self) -> tuple[dict[str, _Stored], str]:
        seen: dict[str, _Stored] = {}
        token = ""
        version = ""
        while True:
            params = {"limit": str(self._page_size), **self._selector}
            if token:
                params["continue"] = token
            page = await self._api.get(NODES, wire.node_list_decoder, params)
            for item in page.items:
                if not item.ignored():
                    seen[item.metadata.name] = _stored(item)
            token = page.metadata.continue_
            version = page.metadata.resourceVersion
            if not token:
                break
        return seen, version

    def _replace(self, seen: dict[str, _Stored]) -> None:
        old = self._store
        self._store = seen
        for name, stored in seen.items():
            before = old.get(name)
            if before is None:
                self._emit(EventKind.ADDED, name, None, stored.node)
            elif before.resource_version != stored.resource_version:
                self._emit(EventKind.MODIFIED, name, before.node, stored.node)
        for name, gone in old.items():
            if name not in seen:
                self._emit(EventKind.DELETED, name, gone.node, None)

    async def _watch(self, version: str) -> str:
        """One watch request; returns the last resourceVersion when the server ends it."""
        params = {
            "watch": "1",
            "allowWatchBookmarks": "true",
            "resourceVersion": version,
            "timeoutSeconds": str(self._watch_timeout),
            **self._selector,
        }
        self.watches += 1
        async with self._api.stream(NODES, params, read_timeout=self._watch_timeout + 30) as lines:
            async for line in lines:
                version = self._apply(wire.event_decoder.decode(line), version)
        return version

    def _apply(self, event: wire.WatchEvent, version: str) -> str:
        if event.type == "ERROR":
            status = wire.status_decoder.decode(event.object)
            cls = Gone if status.code == 410 else KubeError
            raise cls(
                f"GET {NODES} (watch)",
                f"ERROR event {status.code} {status.reason}: {status.message}",
                status=status.code,
                reason=status.reason,
            )
        node = wire.node_decoder.decode(event.object)
        name = node.metadata.name
        if event.type == "BOOKMARK":
            return node.metadata.resourceVersion or version
        stored = _stored(node)
        before = self._store.get(name)
        if before is not None and _older(stored.resource_version, before.resource_version):
            # A replayed or reordered event (a proxy, a broken server): applying it would bring
            # back old CIDRs, or delete a node recreated since (its DELETED carries the old
            # incarnation's version). The watch position stays where it is.
            log.debug(
                "ignoring a %s event for node %s at resourceVersion %s, older than the %s stored",
                event.type,
                name,
                stored.resource_version,
                before.resource_version,
            )
            return version
        if event.type == "DELETED" or node.ignored():
            if before is not None:
                del self._store[name]
                self._emit(EventKind.DELETED, name, before.node, None)
        elif event.type in ("ADDED", "MODIFIED"):
            self._store[name] = stored
            if before is None:
                self._emit(EventKind.ADDED, name, None, stored.node)
            elif before.resource_version != stored.resource_version:
                self._emit(EventKind.MODIFIED, name, before.node, stored.node)
        return stored.resource_version or version

    def _emit(self, kind: EventKind, name: str, old: KubeNode | None, new: KubeNode | None) -> None:
        try:
            self._on_event(NodeEvent(kind, name, old, new))
        except Exception:
            log.exception("node event handler failed for %s %s", kind, name)


def _older(version: str, than: str) -> bool:
    """Whether resourceVersion `version` is older than `than`. They are opaque strings in
    general, but the API server's are etcd revisions, integers: compared as such when both
    parse, and never called older otherwise (the event is applied, as before)."""
    if version.isascii() and version.isdigit() and than.isascii() and than.isdigit():
        return int(version) < int(than)
    return False


def _stored(node: wire.Node) -> _Stored:
    return _Stored(
        KubeNode(
            # Interned: the same name is the Netmaker host's (`Host.name`), kept once.
            name=sys.intern(node.metadata.name),
            pod_cidrs=node.pod_cidrs(),
            host_name=node.host_name(),
            uid=node.metadata.uid,
        ),
        node.metadata.resourceVersion,
    )
