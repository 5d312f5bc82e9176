"""Applies a plan to Netmaker with bounded concurrency, and keeps going past failures.

Creates and updates go first and deletes after them, so a pass adds routes before it removes
any. Each write asks `may_write()` first: the moment leadership is lost or in doubt, the rest
of the plan is skipped, not written. A rejected password stops the pass (every other write
would fail the same way) and is raised to the caller, who treats it as a configuration error.

A failure about the server (circuit.py) opens the circuit and the writes still to come are held
(failed with `Held`, not sent, not logged one by one); a permanent one is logged once per rule
and error, however many passes meet it again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Protocol

from kaput_not.controller.circuit import Held, Retry, decide
from kaput_not.core.applied import ApplyResult, Failure
from kaput_not.core.model import Action, ActionKind, Egress, EgressSpec, Plan
from kaput_not.netmaker import errors

log = logging.getLogger("kaput_not.executor")


#: Permanent failures remembered as already logged; past this many the memory starts over.
_TOLD_LIMIT = 10_000


class ServerHealth(Protocol):
    """The circuit as the executor sees it (circuit.Circuit)."""

    @property
    def is_open(self) -> bool: ...
    def trip(self, exc: BaseException) -> None: ...


class EgressWriter(Protocol):
    async def create_egress(self, spec: EgressSpec) -> Egress: ...
    async def update_egress(self, target: Egress, spec: EgressSpec) -> Egress: ...
    async def delete_egress(self, target: Egress) -> None: ...


class Executor:
    def __init__(
        self,
        writer: EgressWriter,
        *,
        concurrency: int = 4,
        may_write: Callable[[], bool] = lambda: True,
        dry_run: bool = False,
        health: ServerHealth | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError(f"Netmaker write concurrency must be >= 1, got {concurrency}")
        self._writer = writer
        self._concurrency = concurrency
        # Shared by concurrent passes (node passes run side by side), so the bound is global.
        self._limit = asyncio.Semaphore(concurrency)
        self._may_write = may_write
        self._dry_run = dry_run
        self.health = health
        self._told: set[tuple[str, str]] = set()

    async def apply(self, plan: Plan) -> ApplyResult:
        run = _Run()
        adds = [a for a in plan.actions if a.kind is not ActionKind.DELETE]
        deletes = [a for a in plan.actions if a.kind is ActionKind.DELETE]
        for phase in (adds, deletes):
            await self._phase(phase, run)
        if run.fatal is not None:
            raise run.fatal
        return ApplyResult(
            created=run.done[ActionKind.CREATE],
            updated=run.done[ActionKind.UPDATE],
            deleted=run.done[ActionKind.DELETE],
            skipped=run.skipped,
            failures=tuple(run.failures),
            made=tuple(run.made),
        )

    async def _phase(self, actions: Sequence[Action], run: _Run) -> None:
        # As many workers as writes may be in flight, each taking the next action: 20,000
        # creates are 4 coroutines walking one list, not 20,000 tasks held in memory at once.
        pending = iter(actions)

        async def worker() -> None:
            for action in pending:
                await asyncio.sleep(0)  # let others run between writes (a lost lease, a stop)
                await self._one(action, run)

        await asyncio.gather(*(worker() for _ in range(min(self._concurrency, len(actions)))))

    async def _one(self, action: Action, run: _Run) -> None:
        async with self._limit:
            if run.fatal is not None or not self._may_write():
                run.skipped += 1
                log.warning(
                    "skipped (not allowed to write now): %s",
                    action.describe(),
                    extra=_fields(action),
                )
                return
            if self._dry_run:
                run.skipped += 1
                log.info("dry run, would %s", action.describe(), extra=_fields(action))
                return
            health = self.health
            if health is not None and health.is_open:
                # Held for the recovery pass: no request, no line per write.
                run.failures.append(Failure(action, Held("Netmaker is unavailable")))
                return
            try:
                made = await self._write(action)
            except errors.CredentialsRejected as exc:
                run.fatal = exc
                run.failures.append(Failure(action, exc))
            except (errors.NetmakerError, ValueError) as exc:
                run.failures.append(Failure(action, exc))
                self._failed(action, exc)
            else:
                run.done[action.kind] += 1
                if made is not None:
                    run.made.append(made)
                log.info("%s", action.describe(), extra=_fields(action))

    def _failed(self, action: Action, exc: Exception) -> None:
        kind = decide(exc)
        level = logging.WARNING
        if kind is Retry.SERVER and self.health is not None:
            self.health.trip(exc)  # its one line says it; this write waits for the recovery pass
            level = logging.DEBUG
        elif kind is Retry.PERMANENT:
            told = (action.describe(), str(exc))
            if told in self._told:
                level = logging.DEBUG
            else:
                if len(self._told) >= _TOLD_LIMIT:
                    self._told.clear()
                self._told.add(told)
        suffix = " (not retried before the next full pass)" if kind is Retry.PERMANENT else ""
        log.log(
            level,
            "failed to %s: %s%s",
            action.describe(),
            exc,
            suffix,
            extra={**_fields(action), "error": str(exc)},
        )

    async def _write(self, action: Action) -> Egress | None:
        """Write one action; returns the rule it created, if it created one."""
        if action.kind is ActionKind.CREATE:
            assert action.spec is not None
            return await self._writer.create_egress(action.spec)
        if action.kind is ActionKind.UPDATE:
            assert action.spec is not None
            assert action.target is not None
            await self._writer.update_egress(action.target, action.spec)
        else:
            assert action.target is not None
            await self._writer.delete_egress(action.target)
        return None


def _fields(action: Action) -> dict[str, object]:
    """The structured fields of a write's log line (see logs.FIELDS)."""
    return {
        "node": action.kube_node,
        "network": action.network,
        "egress_id": action.target.id if action.target is not None else None,
        "action": action.kind.value,
        "reason": action.reason,
    }


class _Run:
    """Counters of one `apply`."""

    def __init__(self) -> None:
        self.done = dict.fromkeys(ActionKind, 0)
        self.skipped = 0
        self.failures: list[Failure] = []
        self.made: list[Egress] = []
        self.fatal: errors.CredentialsRejected | None = None
