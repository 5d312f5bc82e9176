"""The stand-in's cluster: nodes, leases, namespaces and one resourceVersion counter.

Like etcd, every write anywhere takes the next value of a single global counter, so a node's
``resourceVersion`` jumps when leases change in between, and a list's resourceVersion may be
newer than any node in it. ``resource_version`` is the counter's current value as a string.

The seeding API is direct and thread-safe (one re-entrant lock; the HTTP handlers take it too,
so a request sees a consistent cluster). It plays the kubelet and the node IPAM controller and
keeps their rules: names must be DNS-1123 subdomains, ``spec.podCIDRs`` can be set once and
never changed, an update that changes nothing is a no-op (no new resourceVersion, no event),
as the API server skips writes that change nothing. A broken rule raises
:class:`.status.StatusError` with the server's 4xx Status.

Every node change is kept in :attr:`KubeState.history` (see :mod:`.history`) until
:meth:`KubeState.compact` or the history limit drops it.

Not modelled: namespace deletion, finalizers and graceful deletion (a delete is immediate),
owner references and garbage collection, node status beyond a fixed healthy block, label
syntax validation.
"""

from __future__ import annotations

import copy
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from . import status
from .history import Event, History
from .nodes import NodeRecord, check_name, check_pod_cidrs, default_labels, new_record

DEFAULT_NAMESPACES = ("default", "kube-node-lease", "kube-public", "kube-system")
LEASE_API_VERSION = "coordination.k8s.io/v1"


class KubeState:
    def __init__(
        self, *, clock: Callable[[], float] = time.time, history_limit: int | None = None
    ) -> None:
        """``clock`` stamps object times; ``history_limit`` bounds the node changes kept."""
        self.lock = threading.RLock()
        self._clock = clock
        self._rv = 1
        self._nodes: dict[str, NodeRecord] = {}
        self._sorted_names: list[str] | None = None
        self._nodes_created = 0
        self.history = History(limit=history_limit)
        self._leases: dict[tuple[str, str], dict[str, Any]] = {}
        self._namespaces = set(DEFAULT_NAMESPACES)
        self._listeners: list[Callable[[], None]] = []

    # -- the counter and change notification ------------------------------------------------

    @property
    def resource_version(self) -> str:
        """The newest resourceVersion handed out, across all objects."""
        with self.lock:
            return str(self._rv)

    @property
    def current(self) -> int:
        with self.lock:
            return self._rv

    def subscribe(self, listener: Callable[[], None]) -> None:
        """Call ``listener()`` (under the lock, so it must be quick) after every node change."""
        with self.lock:
            self._listeners.append(listener)

    def unsubscribe(self, listener: Callable[[], None]) -> None:
        with self.lock:
            self._listeners.remove(listener)

    def _next_rv(self) -> int:
        self._rv += 1
        return self._rv

    def _now(self) -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self._clock()))

    # -- nodes ------------------------------------------------------------------------------

    def create_node(
        self,
        name: str,
        pod_cidrs: tuple[str, ...] = (),
        labels: Mapping[str, str] | None = None,
        annotations: Mapping[str, str] | None = None,
    ) -> NodeRecord:
        """Register a node, as a kubelet does. ``labels`` None gives the kubelet's labels;
        ``annotations`` are added to the kubelet's."""
        pod_cidrs = tuple(pod_cidrs)
        with self.lock:
            check_name(name)
            if name in self._nodes:
                raise status.already_exists("nodes", name)
            check_pod_cidrs(name, None, pod_cidrs)
            self._nodes_created += 1
            now = self._now()
            record = new_record(
                name,
                rv=self._next_rv(),
                created=now,
                labels=default_labels(name) if labels is None else labels,
                pod_cidrs=pod_cidrs,
                index=self._nodes_created + 9,
                annotations=annotations,
            )
            self._store(Event(int(record.resource_version), "ADDED", record, None))
            return record

    def update_node(
        self,
        name: str,
        *,
        labels: Mapping[str, str] | None = None,
        pod_cidrs: tuple[str, ...] | None = None,
        annotations: Mapping[str, str] | None = None,
    ) -> NodeRecord:
        """Replace the labels and/or the annotations, and/or set the pod CIDRs (once: see the
        module docstring). A kubelet may edit its own Node's annotations at any time."""
        with self.lock:
            old = self._existing(name)
            changes: dict[str, Any] = {}
            if labels is not None and dict(labels) != dict(old.labels):
                changes["labels"] = labels
            if annotations is not None and dict(annotations) != dict(old.annotations):
                changes["annotations"] = annotations
            if pod_cidrs is not None:
                check_pod_cidrs(name, old.pod_cidrs, tuple(pod_cidrs))
                if tuple(pod_cidrs) != old.pod_cidrs:
                    changes["pod_cidrs"] = tuple(pod_cidrs)
            if not changes:
                return old
            return self._modify(old, changes)

    def touch_node(self, name: str) -> NodeRecord:
        """A kubelet status heartbeat: always a new resourceVersion and a MODIFIED event."""
        with self.lock:
            return self._modify(self._existing(name), {"heartbeat": self._now()})

    def delete_node(self, name: str) -> NodeRecord:
        """Delete at once; returns the object the DELETED event carries (last state, new RV)."""
        with self.lock:
            old = self._existing(name)
            gone = old.revised(resource_version=str(self._next_rv()))
            del self._nodes[name]
            self._sorted_names = None
            self._store(Event(int(gone.resource_version), "DELETED", gone, old), keep=False)
            return gone

    def node(self, name: str) -> NodeRecord | None:
        with self.lock:
            return self._nodes.get(name)

    def nodes(self) -> list[NodeRecord]:
        """Every node, sorted by name."""
        with self.lock:
            return [self._nodes[name] for name in self.sorted_names()]

    def sorted_names(self) -> list[str]:
        """The current node names, sorted (cached until a node is added or deleted)."""
        with self.lock:
            if self._sorted_names is None:
                self._sorted_names = sorted(self._nodes)
            return self._sorted_names

    def nodes_at(self, rv: int) -> Mapping[str, NodeRecord]:
        """The nodes as they were at ``rv`` (the caller checked it against the horizon).

        At the current version this is the live table: use it under :attr:`lock`.
        """
        with self.lock:
            if rv >= self._rv:
                return self._nodes
            return self.history.rewind(self._nodes, rv)

    def compact(self) -> None:
        """Drop all retained history: any resourceVersion older than now answers 410 Expired.

        Watches that have already seen every change are not ended, as a real compaction does
        not end them.
        """
        with self.lock:
            self.history.compact(self._rv)

    def _existing(self, name: str) -> NodeRecord:
        record = self._nodes.get(name)
        if record is None:
            raise status.not_found("nodes", name)
        return record

    def _modify(self, old: NodeRecord, changes: dict[str, Any]) -> NodeRecord:
        record = old.revised(resource_version=str(self._next_rv()), **changes)
        self._store(Event(int(record.resource_version), "MODIFIED", record, old))
        return record

    def _store(self, event: Event, *, keep: bool = True) -> None:
        if keep:
            if event.node.name not in self._nodes:
                self._sorted_names = None
            self._nodes[event.node.name] = event.node
        self.history.append(event)
        for listener in self._listeners:
            listener()

    # -- namespaces and leases ----------------------------------------------------------------

    def create_namespace(self, name: str) -> None:
        """Add a namespace (``DEFAULT_NAMESPACES`` exist from the start)."""
        with self.lock:
            self._namespaces.add(name)

    def has_namespace(self, name: str) -> bool:
        with self.lock:
            return name in self._namespaces

    def lease(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The stored Lease as a GET returns it (a copy), or None."""
        with self.lock:
            stored = self._leases.get((namespace, name))
            return copy.deepcopy(stored) if stored is not None else None

    def leases(self, namespace: str | None = None) -> list[dict[str, Any]]:
        """Copies of the stored Leases, in one namespace or all, by namespace and name."""
        with self.lock:
            keys = sorted(k for k in self._leases if namespace is None or k[0] == namespace)
            return [copy.deepcopy(self._leases[k]) for k in keys]

    def put_lease(
        self,
        namespace: str,
        name: str,
        spec: Mapping[str, Any] | None = None,
        annotations: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """Seed a Lease (create or overwrite, no concurrency check), e.g. one held by another.

        ``spec`` uses the API's field names (``holderIdentity``, ``renewTime``...), stored as
        given, as are ``annotations``. The namespace is created if needed.
        """
        meta = {"annotations": dict(annotations)} if annotations else {}
        with self.lock:
            self._namespaces.add(namespace)
            return self.save_lease(namespace, name, spec=dict(spec or {}), meta=meta)

    def save_lease(
        self, namespace: str, name: str, *, spec: dict[str, Any], meta: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Store a Lease with a new resourceVersion, keeping uid and creation time if it exists.

        ``meta`` holds the client's ``labels`` / ``annotations`` (others are set here). The
        caller holds the lock and has checked preconditions. Returns a copy of what is stored.
        """
        old = self._leases.get((namespace, name))
        rv = self._next_rv()
        metadata: dict[str, Any] = {
            "name": name,
            "namespace": namespace,
            "uid": old["metadata"]["uid"] if old else _lease_uid(namespace, name, rv),
            "resourceVersion": str(rv),
            "creationTimestamp": old["metadata"]["creationTimestamp"] if old else self._now(),
        }
        for key in ("labels", "annotations"):
            if meta.get(key):
                metadata[key] = dict(meta[key])
        stored = {
            "kind": "Lease",
            "apiVersion": LEASE_API_VERSION,
            "metadata": metadata,
            "spec": copy.deepcopy(spec),
        }
        self._leases[(namespace, name)] = stored
        return copy.deepcopy(stored)


def _lease_uid(namespace: str, name: str, rv: int) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"lease/{namespace}/{name}/{rv}"))
