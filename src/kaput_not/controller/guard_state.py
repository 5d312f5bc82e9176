"""The write guard's memory, kept in the cluster: no restart forgets it (docs/design.md rule 8).

One small JSON document, stored as one annotation (`ANNOTATION`) on the leader-election Lease:
the leader already writes there, and RBAC already allows it. It holds counts, never slots or
ids, so its size is bounded whatever the cluster's: the owned-rule and node counts last seen,
their high-water mark over the budget window (in `BUCKETS` buckets per window, the largest
count of each), the deletes charged (bucketed the same way), a trip and its cause, and the last
operator acknowledgement. Times are wall-clock seconds: monotonic clocks do not survive a
process.

An operator acknowledges a trip by writing `ACK_ANNOTATION` on the same Lease (the value is
the acknowledgement's expiry, RFC 3339); `kaput-not acknowledge` writes it, and so does
`kubectl annotate lease -n NAMESPACE NAME kaput-not.io/guard-acknowledge=2030-01-01T12:00:00Z
--overwrite`. The guard records the acknowledgement it used (by its value) so it is used once.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import msgspec

from kaput_not.kube import wire
from kaput_not.kube.api import Conflict, KubeApi, KubeError, NotFound
from kaput_not.kube.lease import LeaderElector, NotLeader

log = logging.getLogger("kaput_not.guard")

ANNOTATION = "kaput-not.io/guard-state"
ACK_ANNOTATION = "kaput-not.io/guard-acknowledge"
VERSION = 1
#: Buckets per window: the high-water mark and the deletes charged keep one entry per bucket.
BUCKETS = 24
#: Conflicting writes (another writer between our read and our write) are retried this often.
_ATTEMPTS = 5


class Trip(msgspec.Struct, frozen=True):
    #: Wall-clock seconds.
    since: float
    cause: str


class Acknowledgement(msgspec.Struct, frozen=True):
    #: The annotation's value it came from: the same value is never used twice.
    id: str
    expires: float
    used_at: float | None = None


class GuardState(msgspec.Struct, omit_defaults=True):
    version: int = VERSION
    #: Rules of ours and Kubernetes nodes last seen (None: never seen).
    owned: int | None = None
    nodes: int | None = None
    #: [bucket start, most rules of ours, most nodes] within the window.
    high: list[tuple[float, int, int]] = msgspec.field(default_factory=list)
    #: [bucket start, deletes charged] within the window: charged before they are sent.
    spent: list[tuple[float, int]] = msgspec.field(default_factory=list)
    trip: Trip | None = None
    ack: Acknowledgement | None = None

    def sample(self, now: float, window: float, owned: int, nodes: int | None) -> None:
        """Counts seen by a full pass: last seen, and into the high-water mark."""
        self.owned = owned
        if nodes is not None:
            self.nodes = nodes
        start = _bucket(now, window)
        self.expire(now, window)
        if self.high and self.high[-1][0] == start:
            _, most_owned, most_nodes = self.high[-1]
            self.high[-1] = (start, max(most_owned, owned), max(most_nodes, nodes or 0))
        else:
            self.high.append((start, owned, nodes or 0))

    def high_owned(self) -> int:
        """The high-water mark of our rules (at least the count last seen)."""
        return max([self.owned or 0, *(owned for _, owned, _ in self.high)])

    def high_nodes(self) -> int:
        return max([self.nodes or 0, *(nodes for _, _, nodes in self.high)])

    def charge(self, now: float, window: float, count: int) -> None:
        start = _bucket(now, window)
        if self.spent and self.spent[-1][0] == start:
            self.spent[-1] = (start, self.spent[-1][1] + count)
        else:
            self.spent.append((start, count))

    def refund(self, count: int) -> None:
        """Take back `count` of the latest charges (deletes charged but never written)."""
        while count > 0 and self.spent:
            start, spent = self.spent[-1]
            back = min(spent, count)
            count -= back
            if spent - back:
                self.spent[-1] = (start, spent - back)
            else:
                self.spent.pop()

    def spent_total(self) -> int:
        return sum(count for _, count in self.spent)

    def expire(self, now: float, window: float) -> None:
        horizon = now - window
        width = window / BUCKETS
        self.high = [h for h in self.high if h[0] + width > horizon]
        self.spent = [s for s in self.spent if s[0] + width > horizon]

    def accept(self, now: float, window: float) -> None:
        """An acknowledgement was used: the counts now are the new base, the trip is gone."""
        self.trip = None
        self.high = []
        self.spent = []
        if self.owned is not None:
            self.sample(now, window, self.owned, self.nodes)


def _bucket(now: float, window: float) -> float:
    width = window / BUCKETS
    return (now // width) * width


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(GuardState)


def encode(state: GuardState) -> str:
    return _encoder.encode(state).decode()


def decode(text: str) -> GuardState:
    """The state in an annotation; a version we do not know is an error (one line)."""
    try:
        state = _decoder.decode(text)
    except msgspec.DecodeError as exc:
        raise StateError(f"the {ANNOTATION} annotation is not a guard state: {exc}") from None
    if state.version != VERSION:
        raise StateError(
            f"the {ANNOTATION} annotation has version {state.version}, this build reads "
            f"{VERSION}: upgrade kaput-not, or delete the annotation to start afresh"
        )
    return state


def parse_ack(value: str) -> float:
    """An acknowledgement's value: its expiry, RFC 3339 (e.g. 2030-01-01T12:00:00Z)."""
    try:
        moment = datetime.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise StateError(
            f"the {ACK_ANNOTATION} annotation {value!r} is not a time: write its expiry as "
            "RFC 3339, e.g. 2030-01-01T12:00:00Z"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return moment.timestamp()


def format_ack(expires: float) -> str:
    return datetime.datetime.fromtimestamp(expires, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class StateError(Exception):
    """The state could not be read or saved: one line."""


@dataclass(frozen=True, slots=True)
class Stored:
    state: GuardState | None
    #: The acknowledgement annotation's value, if any.
    ack: str | None = None


class StateStore(Protocol):
    async def load(self) -> Stored: ...
    async def save(self, state: GuardState) -> None: ...


class MemoryStore:
    """In-process store for unit tests: what a Lease would keep, as text."""

    def __init__(self) -> None:
        self.text: str | None = None
        self.ack: str | None = None
        self.fail: Exception | None = None
        self.saves = 0

    async def load(self) -> Stored:
        if self.fail is not None:
            raise StateError(str(self.fail))
        return Stored(decode(self.text) if self.text else None, self.ack)

    async def save(self, state: GuardState) -> None:
        if self.fail is not None:
            raise StateError(str(self.fail))
        self.text = encode(state)
        self.saves += 1


class LeaseStore:
    """The state on the leader-election Lease.

    With an elector (leader election on, or `plan --apply` holding the Lease) writes go through
    it: under its lock, and only while it leads. Without one (leader election off) the same
    Lease is the state's home, written without holding it: created if missing, each write a
    PUT with the resourceVersion read, retried on Conflict.
    """

    def __init__(
        self, api: KubeApi, namespace: str, name: str, elector: LeaderElector | None = None
    ) -> None:
        self._api = api
        self._namespace = namespace
        self._name = name
        self._elector = elector
        self._path = f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/{name}"

    @property
    def where(self) -> str:
        return f"Lease {self._namespace}/{self._name}"

    async def load(self) -> Stored:
        try:
            lease = await self._api.get(self._path, wire.lease_decoder)
        except NotFound:
            return Stored(None)
        except KubeError as exc:
            raise StateError(f"reading the guard state from {self.where}: {exc}") from None
        annotations = lease.metadata.annotations or {}
        text = annotations.get(ANNOTATION)
        return Stored(decode(text) if text else None, annotations.get(ACK_ANNOTATION))

    async def save(self, state: GuardState) -> None:
        await self.annotate({ANNOTATION: encode(state)})

    async def annotate(self, changes: dict[str, str]) -> None:
        def change(annotations: dict[str, str]) -> None:
            annotations.update(changes)

        try:
            if self._elector is not None:
                await self._elector.write_annotations(change)
            else:
                await self._write(change)
        except NotLeader as exc:
            raise StateError(f"not saving the guard state to {self.where}: {exc}") from None
        except KubeError as exc:
            raise StateError(f"saving the guard state to {self.where}: {exc}") from None

    async def _write(self, change: Callable[[dict[str, str]], None]) -> None:
        for _ in range(_ATTEMPTS):
            try:
                lease = await self._api.get(self._path, wire.lease_decoder)
            except NotFound:
                meta = wire.ObjectMeta(name=self._name, namespace=self._namespace, annotations={})
                assert meta.annotations is not None
                change(meta.annotations)
                body = wire.encoder.encode(wire.Lease(metadata=meta))
                collection = self._path.rsplit("/", 1)[0]
                with contextlib.suppress(Conflict):  # created meanwhile: update it
                    await self._api.send("POST", collection, body, wire.lease_decoder)
                    return
            else:
                annotations = dict(lease.metadata.annotations or {})
                change(annotations)
                lease.metadata.annotations = annotations
                with contextlib.suppress(Conflict):  # changed meanwhile: read it again
                    await self._api.send(
                        "PUT", self._path, wire.encoder.encode(lease), wire.lease_decoder
                    )
                    return
            await asyncio.sleep(0)
        raise StateError(f"{self.where} kept changing under {_ATTEMPTS} writes in a row")
