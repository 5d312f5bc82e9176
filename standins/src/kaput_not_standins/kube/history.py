"""The retained history of node changes: what watches replay and consistent lists read.

Every node change appends an :class:`Event` (ADDED, MODIFIED, DELETED) with the object as the
event shows it and the object it replaced. That serves two things, as etcd's revision history
does for the real server:

- a watch from resourceVersion R replays the events after R, in order;
- a continued list reads the nodes as they were at the first page's resourceVersion, by undoing
  the later events on a copy of the current nodes.

The history is bounded by :meth:`History.compact` (drop everything, like an etcd compaction) and
by an optional event limit (drop the oldest, like a full watch cache). Both move the *horizon*:
the oldest resourceVersion still served. Older ones answer 410 Expired.

One window where the real server has two: a watch is served from the watch cache (a bounded
ring of recent events per resource) and a continued list from etcd (compacted every five
minutes). The stand-in uses one history for both.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

from . import status
from .nodes import NodeRecord


@dataclass(frozen=True)
class Event:
    rv: int
    type: str  # ADDED | MODIFIED | DELETED
    node: NodeRecord  # as the event carries it (a DELETED one has the deletion's resourceVersion)
    previous: NodeRecord | None  # the stored version this change replaced


class History:
    """Not thread-safe on its own: the state calls it under its lock."""

    def __init__(self, *, limit: int | None) -> None:
        if limit is not None and limit < 1:
            raise ValueError("the history limit must be at least 1, or None")
        self._limit = limit
        self._events: list[Event] = []
        self._rvs: list[int] = []  # the events' resourceVersions, for bisection
        self.horizon = 0  # the oldest resourceVersion a watch or a continued list may start from
        self._newest_dropped = 0

    def __len__(self) -> int:
        return len(self._events)

    def append(self, event: Event) -> None:
        self._events.append(event)
        self._rvs.append(event.rv)
        if self._limit is not None and len(self._events) > self._limit:
            dropped = self._events.pop(0)
            self._rvs.pop(0)
            self._newest_dropped = dropped.rv
            self.horizon = max(self.horizon, dropped.rv)

    def compact(self, current: int) -> None:
        """Forget every event: any resourceVersion older than ``current`` is now too old."""
        if self._events:
            self._newest_dropped = self._events[-1].rv
        self._events.clear()
        self._rvs.clear()
        self.horizon = current

    def since(self, rv: int, *, live: bool) -> list[Event]:
        """The events after ``rv``, oldest first.

        A ``live`` watch that has seen everything up to ``rv`` may continue as long as no event
        after ``rv`` was dropped; a compaction alone does not end it (it does not end a real
        watch either). A new request must start at or after the horizon.
        """
        limit = self._newest_dropped if live else self.horizon
        if rv < limit:
            raise status.expired(f"too old resource version: {rv} ({limit})")
        return self._events[bisect.bisect_right(self._rvs, rv) :]

    def rewind(self, nodes: dict[str, NodeRecord], rv: int) -> dict[str, NodeRecord]:
        """``nodes`` (the current ones) as they were at ``rv``; the caller checked the horizon."""
        snapshot = dict(nodes)
        for event in reversed(self.since(rv, live=False)):
            _undo(snapshot, event)
        return snapshot


def _undo(snapshot: dict[str, NodeRecord], event: Event) -> None:
    if event.previous is None:
        snapshot.pop(event.node.name, None)
    else:
        snapshot[event.node.name] = event.previous
