"""`kaput-not plan` and `kaput-not status`: read the cluster and Netmaker once, and say what a
sync would do, or what is there; `plan --apply` does one guarded sync; `kaput-not acknowledge`
lets the delete budget's trip go, once.

Same configuration as `run` (the environment), same planner; no watch: one complete node list
and one Netmaker snapshot. `plan --apply` writes as `run` does: through the same write guard
and the same state on the Lease, only while holding the Lease (it refuses, naming the holder,
while another replica leads), and not at all under DRY_RUN. Its pipeline is `run`'s
(pipeline.py); what the commands print is in report.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
from collections.abc import Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass

from kaput_not.app.clients import StartupError, clients, leader_elector, state_store
from kaput_not.app.pipeline import plan_settings, write_guard, write_pipeline
from kaput_not.config import Settings
from kaput_not.controller.controller import RESYNC_ANNOTATION
from kaput_not.controller.guard_state import ACK_ANNOTATION, StateError, format_ack
from kaput_not.controller.metrics import Metrics
from kaput_not.controller.reconciler import PassReport
from kaput_not.core.model import KubeNode, Plan
from kaput_not.core.planner import NetmakerView, plan
from kaput_not.kube.api import KubeApi
from kaput_not.kube.informer import NodeInformer
from kaput_not.kube.lease import LeaderElector, micro_time


@dataclass(frozen=True, slots=True)
class Reading:
    nodes: Sequence[KubeNode]
    view: NetmakerView
    #: What a sync does now (with `apply`: the guarded plan it did).
    plan: Plan
    applied: PassReport | None = None
    #: `plan --apply` under DRY_RUN: planned only, nothing written.
    dry_run: bool = False


class LeaseHeld(Exception):
    """`plan --apply` while another replica holds the Lease: one line naming the holder."""


async def read_once(settings: Settings, *, apply: bool = False) -> Reading:
    dry_run = apply and settings.safety.dry_run
    apply = apply and not dry_run
    async with AsyncExitStack() as stack:
        client, kube = clients(settings, Metrics(), stack)
        informer = NodeInformer(
            kube, lambda _: None, label_selector=settings.kubernetes.node_selector
        )
        lease = await _hold_lease(settings, kube, stack) if apply else None
        # The lists are read once for the whole reading; only the Lease's holder may write.
        pipeline = write_pipeline(
            settings,
            client,
            store=state_store(settings, kube, lease),
            may_write=lease.is_leader if lease is not None else (lambda: False),
            cache_ttl_seconds=3600.0,
        )
        if apply:
            remembered = await pipeline.guard.peek()
            informer.remembered = remembered.nodes if remembered is not None else None
        await informer.sync_once()
        nodes = informer.nodes()
        if not apply:
            view = await pipeline.cache.view()
            return Reading(nodes, view, plan(nodes, view, plan_settings(settings)), None, dry_run)
        report = await pipeline.reconciler.reconcile(nodes)
        return Reading(nodes, report.view, report.plan, report)


async def _hold_lease(settings: Settings, kube: KubeApi, stack: AsyncExitStack) -> LeaderElector:
    """Take the Lease for one guarded sync (released when `stack` closes), or `LeaseHeld`.

    Its identity is the replica's with `/plan` added: run inside a leader's pod, it must not
    pass for that leader."""
    le = settings.leader_election
    elector = leader_elector(settings, kube, suffix="/plan")
    if not await elector.try_acquire():
        holder = elector.holder or "another writer"
        raise LeaseHeld(
            f"the Lease {le.namespace}/{le.name} is held by {holder}: plan --apply writes only "
            "while no replica leads; scale the controller down, or let it repair this itself"
        )
    renewing = asyncio.create_task(elector.renew_until_lost())

    async def give_back() -> None:
        renewing.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await renewing
        await elector.release()

    stack.push_async_callback(give_back)
    return elector


async def acknowledge(settings: Settings, expires_seconds: float) -> str:
    """Record an acknowledgement of the delete budget's trip, valid `expires_seconds`; return
    what to print: the state, the trip and its cause, and the acknowledgement."""
    async with AsyncExitStack() as stack:
        _client, kube = clients(settings, Metrics(), stack)
        store = state_store(settings, kube, None)
        guard = write_guard(settings, store)
        if not await guard.ready(full=True):
            raise StartupError(guard.problem or "the guard state could not be read")
        value = format_ack(guard.now() + expires_seconds)
        await store.annotate({ACK_ANNOTATION: value})
        return (
            f"guard state on {store.where}: {guard.describe()}\n"
            f"acknowledged until {value} (the {ACK_ANNOTATION} annotation): the leader takes "
            "it within 30s while deletes are held, or at its next full pass; the deletes its "
            "budget refuses then go ahead once, and the counts then become the new base"
        )


async def request_resync(settings: Settings) -> str:
    """Ask the running leader for a full pass now: a new value of `RESYNC_ANNOTATION` on the
    Lease, which the leader reads at every renewal. Returns what to print."""
    le = settings.leader_election
    if not le.enabled:
        raise StartupError(
            "LEADER_ELECTION_ENABLED=false: no leader reads the Lease; send SIGHUP to the "
            "running `kaput-not run` process instead (kill -HUP PID)"
        )
    async with AsyncExitStack() as stack:
        _client, kube = clients(settings, Metrics(), stack)
        store = state_store(settings, kube, None)
        value = micro_time(datetime.datetime.now(datetime.UTC))
        try:
            await store.annotate({RESYNC_ANNOTATION: value})
        except StateError as exc:
            raise StateError(f"asking for a full pass: {exc}") from None
        return (
            f"asked the leader for a full pass now ({RESYNC_ANNOTATION}={value} on "
            f"{store.where}): it queues one at its next renewal, within "
            f"{le.retry_period_seconds:g}s; /readyz and its log say when it ran"
        )
