"""Leader election on a coordination.k8s.io/v1 Lease, with "leader right now?" for every writer.

Timing (defaults; `lease > renew_deadline > retry_period` is checked at construction):
- lease 15 s: how long others wait, from when *they* saw the lease change, before taking it;
- renew deadline 10 s: the leader must renew within this, or it steps down;
- retry period 2 s: how often candidates try and the leader renews (jittered up by 20%).

`is_leader()` is True only while the last successful renewal is younger than the renew
deadline, measured on this process's monotonic clock. Another replica can only take over after
a full lease duration measured on *its* clock from when it saw our last renewal, which is
later than our renewal, so our writes stop before anyone else may start. This assumes clocks
that tick at the same rate, not synchronised wall clocks (the same assumption client-go makes).

Once leadership is lost it is not re-acquired: `run()` returns and the caller exits non-zero so
Kubernetes restarts the replica as a fresh standby. `release()` on graceful shutdown empties the
holder so a standby takes over at its next try instead of waiting out the lease.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from kaput_not import ratelimit
from kaput_not.kube import wire
from kaput_not.kube.api import Conflict, KubeApi, KubeError, NotFound, denied

log = logging.getLogger("kaput_not.lease")

#: Conflicting annotation writes (a renewal between our read and our write) are retried this often.
_ANNOTATE_ATTEMPTS = 5


class NotLeader(Exception):
    """An annotation write was refused: this process does not hold the Lease (one line)."""


@dataclass(frozen=True, slots=True)
class LeaseConfig:
    """Built from the settings tree (kaput_not.app), whose LeaderElection holds the defaults."""

    namespace: str
    name: str
    identity: str
    lease_seconds: float
    renew_deadline_seconds: float
    retry_period_seconds: float

    def validate(self) -> None:
        if not self.identity:
            raise ValueError("leader election needs a non-empty identity")
        if not (
            self.lease_seconds > self.renew_deadline_seconds > self.retry_period_seconds * 1.2 > 0
        ):
            raise ValueError(
                "leader election needs lease > renew deadline > 1.2 x retry period, got "
                f"{self.lease_seconds:g}s, {self.renew_deadline_seconds:g}s, "
                f"{self.retry_period_seconds:g}s"
            )
        # The Lease carries whole seconds: a rounded duration published below the renew
        # deadline would let a standby take over while we still lead.
        if self.lease_seconds != int(self.lease_seconds):
            raise ValueError(
                "LEADER_ELECTION_LEASE_DURATION must be a whole number of seconds (the Lease "
                f"carries whole seconds), got {self.lease_seconds:g}s"
            )


def micro_time(moment: datetime.datetime) -> str:
    """Kubernetes MicroTime: UTC, RFC 3339 with exactly six fraction digits."""
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaderElector:
    def __init__(
        self,
        api: KubeApi,
        config: LeaseConfig,
        *,
        monotonic: ratelimit.Clock = time.monotonic,
        now: Callable[[], datetime.datetime] = lambda: datetime.datetime.now(datetime.UTC),
        rand: random.Random | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        config.validate()
        self._api = api
        self._config = config
        self._monotonic = monotonic
        self._now = now
        # Candidates try every 1 to 1.2 retry periods (client-go's jitter factor 1.2): a fixed
        # backoff of 1.2 periods, each wait shortened by up to a sixth of it.
        longest = 1.2 * config.retry_period_seconds
        self._try_again: ratelimit.ExponentialBackoff[str] = ratelimit.ExponentialBackoff(
            base=longest, cap=longest, jitter=1 / 6, rng=rand
        )
        self._sleep = sleep
        self._path = (
            f"/apis/coordination.k8s.io/v1/namespaces/{config.namespace}/leases/{config.name}"
        )
        self._collection = f"/apis/coordination.k8s.io/v1/namespaces/{config.namespace}/leases"
        self._renewed_at: float | None = None
        # What we last saw of someone else's lease, and when (on our clock).
        self._observed: tuple[str, str] | None = None
        self._observed_at = 0.0
        self._lease: wire.Lease | None = None
        # Why the Lease cannot be read, or written (created, updated): the API refused us
        # (RBAC). Each is cleared by the next call of its kind that succeeds.
        self._read_denied: str | None = None
        self._write_denied: str | None = None
        #: Called with the Lease's annotations at every read (each try and renewal, every
        #: retry period): how the leader hears an operator's request written there.
        self.on_annotations: Callable[[Mapping[str, str]], None] | None = None
        # One writer of the Lease at a time: a renewal and an annotation write (the guard's
        # state) each read, change and PUT it; side by side they would fail each other.
        self._write_lock = asyncio.Lock()

    @property
    def identity(self) -> str:
        return self._config.identity

    def is_leader(self) -> bool:
        """Leader right now: the last renewal is younger than the renew deadline."""
        renewed = self._renewed_at
        return (
            renewed is not None
            and self._monotonic() - renewed < self._config.renew_deadline_seconds
        )

    async def run(self, on_started: Callable[[], None]) -> None:
        """Acquire (waiting as a standby as long as needed), then renew until leadership is lost.

        Returns when leadership is lost; cancellation stops it at any point.
        """
        await self._acquire()
        log.info(
            "became leader of lease %s/%s as %s",
            self._config.namespace,
            self._config.name,
            self.identity,
        )
        on_started()
        await self._renew_until_lost()
        log.error("lost leadership of lease %s/%s", self._config.namespace, self._config.name)

    async def release(self) -> None:
        """Give the lease up, if we hold it, so a standby takes over at once."""
        lease = self._lease
        if lease is None or not self.is_leader():
            return
        self._renewed_at = None  # stop writing before the lease is visibly free
        try:
            released = await asyncio.wait_for(
                self._release(lease), self._config.retry_period_seconds
            )
        except (KubeError, TimeoutError) as exc:
            log.warning("could not release the lease (a standby waits it out): %s", exc)
            return
        if released:
            log.info("released lease %s/%s", self._config.namespace, self._config.name)

    async def _release(self, lease: wire.Lease) -> bool:
        """PUT the lease freed; on Conflict read it again and free it only if still ours.

        A renewal cancelled at shutdown may have succeeded at the server after all, leaving
        our copy's resourceVersion out of date. The re-read keeps the Lease's metadata (the
        guard's annotations); its resourceVersion makes the PUT fail if anyone else takes it
        between our read and our write."""
        try:
            await self._put(self._freed(lease))
        except Conflict:
            lease = await self._api.get(self._path, wire.lease_decoder)
        else:
            return True
        holder = lease.spec.holderIdentity or ""
        if holder != self.identity:
            log.info("not releasing the lease: it is held by %s now", holder or "no one")
            return False
        try:
            await self._put(self._freed(lease))
        except Conflict:
            log.info("not releasing the lease: it changed again while we released it")
            return False
        return True

    def _freed(self, lease: wire.Lease) -> wire.Lease:
        """`lease` with no holder and a 1 s duration, its metadata as given."""
        now = micro_time(self._now())
        spec = wire.LeaseSpec(
            holderIdentity=None,
            leaseDurationSeconds=1,
            acquireTime=now,
            renewTime=now,
            leaseTransitions=lease.spec.leaseTransitions,
        )
        return wire.Lease(metadata=lease.metadata, spec=spec)

    @property
    def denied(self) -> str | None:
        """Why this replica cannot take part in the election (the API refuses to let it read or
        write the Lease: RBAC), or None. Other failures are passing and not said here."""
        return self._read_denied or self._write_denied

    def _refused(self, what: str, exc: KubeError, *, write: bool) -> None:
        log.warning("%s the lease failed: %s", what, exc)
        if denied(exc):
            cause = f"{what} the lease {self._config.namespace}/{self._config.name} failed: {exc}"
            if write:
                self._write_denied = cause
            else:
                self._read_denied = cause

    @property
    def holder(self) -> str:
        """The holder last seen on the Lease ("" if none, or not read yet)."""
        return self._observed[0] if self._observed is not None else ""

    async def try_acquire(self) -> bool:
        """One acquire step, for a one-shot writer (`plan --apply`): True if we hold it now.

        A Lease held by another is not taken, even if that holder stopped renewing: only a
        full lease duration watched without a renewal would show that, and one-shot writers
        do not wait for it (`holder` names who holds it)."""
        return await self._locked_try_once()

    async def renew_until_lost(self) -> None:
        """Keep the Lease acquired with `try_acquire` until cancelled or lost."""
        await self._renew_until_lost()

    async def write_annotations(self, change: Callable[[dict[str, str]], None]) -> None:
        """Apply `change` to the Lease's annotations and PUT it, beside the renewals.

        Under the write lock, a PUT with the resourceVersion just read; on Conflict it reads
        again and retries, only while we still hold the Lease. Raises `NotLeader` when we do
        not, and `KubeError` when the API fails."""
        for _ in range(_ANNOTATE_ATTEMPTS):
            async with self._write_lock:
                if not self.is_leader():
                    raise NotLeader(f"{self.identity} does not hold the lease")
                lease = await self._api.get(self._path, wire.lease_decoder)
                holder = lease.spec.holderIdentity or ""
                if holder != self.identity:
                    raise NotLeader(f"the lease is held by {holder or 'no one'}")
                annotations = dict(lease.metadata.annotations or {})
                change(annotations)
                lease.metadata.annotations = annotations
                with contextlib.suppress(Conflict):  # a renewal came between: read again
                    self._lease = await self._put(lease)
                    return
            await asyncio.sleep(0)
        raise NotLeader("the lease kept changing under the annotation writes")

    async def _locked_try_once(self) -> bool:
        async with self._write_lock:
            return await self._try_once()

    async def _acquire(self) -> None:
        while True:
            if await self._locked_try_once():
                return
            await self._sleep(self._try_again.when("acquire"))

    async def _renew_until_lost(self) -> None:
        while True:
            await self._sleep(self._config.retry_period_seconds)
            if not await self._renew():
                return

    async def _renew(self) -> bool:
        """Keep trying until renewed or the renew deadline has passed since the last renewal."""
        while self.is_leader():
            assert self._renewed_at is not None
            left = self._config.renew_deadline_seconds - (self._monotonic() - self._renewed_at)
            try:
                if await asyncio.wait_for(self._locked_try_once(), max(left, 0.001)):
                    return True
            except TimeoutError:
                log.warning("renewing the lease timed out")
                return self.is_leader()
            await self._sleep(min(self._config.retry_period_seconds, max(left, 0.0)))
        return False

    async def _try_once(self) -> bool:
        """One acquire-or-renew step; True when we hold the lease afterwards."""
        # Our own renewal counts from before the request (the safe side for `is_leader`);
        # what we saw of another holder counts from when the answer arrived, as client-go
        # does: the holder may have renewed at any moment while our GET was on its way.
        started = self._monotonic()
        try:
            lease = await self._api.get(self._path, wire.lease_decoder)
        except NotFound:
            self._read_denied = None  # an answer: we may read it, there is none yet
            if self.on_annotations is not None:
                self.on_annotations({})
            return await self._create(started)
        except KubeError as exc:
            self._refused("reading", exc, write=False)
            return False
        self._read_denied = None
        if self.on_annotations is not None:
            self.on_annotations(lease.metadata.annotations or {})
        arrived = self._monotonic()
        spec = lease.spec
        holder = spec.holderIdentity or ""
        seen = (holder, spec.renewTime or "")
        if seen != self._observed:
            self._observed, self._observed_at = seen, arrived
        duration = spec.leaseDurationSeconds or self._config.lease_seconds
        held_by_other = holder not in ("", self.identity)
        if held_by_other and arrived - self._observed_at < duration:
            return False
        now = micro_time(self._now())
        transitions = spec.leaseTransitions or 0
        acquire = spec.acquireTime if holder == self.identity else now
        lease.spec = wire.LeaseSpec(
            holderIdentity=self.identity,
            leaseDurationSeconds=int(self._config.lease_seconds),
            acquireTime=acquire or now,
            renewTime=now,
            leaseTransitions=transitions if holder == self.identity else transitions + 1,
        )
        try:
            self._lease = await self._put(lease)
        except Conflict:
            return False
        except KubeError as exc:
            self._refused("updating", exc, write=True)
            return False
        self._write_denied = None
        self._renewed_at = started
        return True

    async def _create(self, started: float) -> bool:
        now = micro_time(self._now())
        lease = wire.Lease(
            metadata=wire.ObjectMeta(name=self._config.name, namespace=self._config.namespace),
            spec=wire.LeaseSpec(
                holderIdentity=self.identity,
                leaseDurationSeconds=int(self._config.lease_seconds),
                acquireTime=now,
                renewTime=now,
                leaseTransitions=0,
            ),
        )
        try:
            self._lease = await self._api.send(
                "POST", self._collection, wire.encoder.encode(lease), wire.lease_decoder
            )
        except KubeError as exc:  # 409 AlreadyExists: someone else created it first
            if denied(exc):
                self._refused("creating", exc, write=True)
            else:
                log.info("creating the lease failed: %s", exc)
            return False
        self._write_denied = None
        self._renewed_at = started
        return True

    async def _put(self, lease: wire.Lease) -> wire.Lease:
        return await self._api.send(
            "PUT", self._path, wire.encoder.encode(lease), wire.lease_decoder
        )
