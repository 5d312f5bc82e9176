"""The write pipeline, built in one place: the cache over the Netmaker client, the planner's
settings, the write guard, the executor and the reconciler that runs them in turn.

`kaput-not run`, `plan --apply` and the demo all write through `write_pipeline`; an import
contract (pyproject.toml) keeps every other module from building an `Executor`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from kaput_not.config import Settings
from kaput_not.controller.controller import ControllerOptions
from kaput_not.controller.executor import Executor
from kaput_not.controller.guard import BudgetSettings, WriteGuard
from kaput_not.controller.guard_state import StateStore
from kaput_not.controller.reconciler import Reconciler
from kaput_not.core.planner import PlanSettings
from kaput_not.netmaker.cache import CachedNetmaker, NetmakerApi
from kaput_not.ratelimit import Clock


@dataclass(frozen=True, slots=True)
class Pipeline:
    cache: CachedNetmaker
    executor: Executor
    guard: WriteGuard
    reconciler: Reconciler


def write_pipeline(
    settings: Settings,
    client: NetmakerApi,
    *,
    store: StateStore | None,
    may_write: Callable[[], bool],
    cache_ttl_seconds: float | None = None,
    clock: Clock = time.monotonic,
    wall_clock: Clock = time.time,
) -> Pipeline:
    """Everything a write goes through, from `settings`.

    `store` keeps the guard's memory (the Lease; None: in this process only, for the demo);
    `may_write` is asked before each write (the elector's `is_leader`); `cache_ttl_seconds`
    replaces CACHE_TTL for a one-off reading. `clock` times the cache, `wall_clock` the guard's
    budget window."""
    ttl = settings.netmaker.cache_ttl_seconds if cache_ttl_seconds is None else cache_ttl_seconds
    cache = CachedNetmaker(client, ttl=ttl, clock=clock)
    executor = Executor(
        cache,
        concurrency=settings.netmaker.concurrency,
        may_write=may_write,
        dry_run=settings.safety.dry_run,
    )
    guard = write_guard(settings, store, wall_clock=wall_clock)
    reconciler = Reconciler(cache, executor, plan_settings(settings), guard)
    return Pipeline(cache, executor, guard, reconciler)


def write_guard(
    settings: Settings, store: StateStore | None, *, wall_clock: Clock = time.time
) -> WriteGuard:
    """The delete and re-create budgets over `store` (None: in this process only)."""
    return WriteGuard(
        budget_settings(settings),
        clock=wall_clock,
        store=store,
    )


def budget_settings(settings: Settings) -> BudgetSettings:
    return BudgetSettings(window_seconds=settings.safety.budget_window_seconds)


def plan_settings(settings: Settings) -> PlanSettings:
    k8s, safety = settings.kubernetes, settings.safety
    return PlanSettings(
        cluster=k8s.cluster_name,
        metric=settings.reconcile.egress_metric,
        max_delete_fraction=safety.max_delete_fraction,
        max_delete_floor=safety.max_delete_floor,
        allow_mass_delete=safety.allow_mass_delete,
        host_annotation=k8s.host_annotation,
        host_annotation_hosts=k8s.host_annotation_hosts,
        cluster_pod_cidrs=k8s.cluster_pod_cidrs,
    )


def controller_options(settings: Settings, *, freeze_after_first_sync: bool) -> ControllerOptions:
    """The loop's options; `freeze_after_first_sync` is a process-wide effect only `run` asks
    for."""
    reconcile = settings.reconcile
    return ControllerOptions(
        workers=reconcile.workers,
        resync_period_seconds=reconcile.resync_period_seconds,
        delete_grace_seconds=reconcile.delete_grace_seconds,
        # The cheap watch of Netmaker's hosts and nodes reads the cache: more often is useless.
        netmaker_poll_seconds=max(settings.netmaker.cache_ttl_seconds, 1.0),
        dry_run=settings.safety.dry_run,
        freeze_after_first_sync=freeze_after_first_sync,
        node_selector=settings.kubernetes.node_selector,
    )
