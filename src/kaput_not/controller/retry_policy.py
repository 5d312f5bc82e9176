"""The one error policy of every queue key (controller-runtime's reconcileHandler switch):
`circuit.decide` sorts the failure, this does what its kind asks.

- FATAL (the password is refused): the controller stops.
- SERVER (unreachable, a timeout, a 5xx): the circuit opens, and a node's key waits for the
  recovery pass instead of retrying one by one.
- PERMANENT (a 4xx, a write refused before it was sent): logged once, counted, and left to the
  next full pass; the same answer would come back.
- KEY (a conflict, an unreadable answer, a bug): the key backs off on its own.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from kaput_not.controller.circuit import Circuit, Retry, decide, server_cause
from kaput_not.controller.metrics import Metrics
from kaput_not.controller.queue import WorkQueue
from kaput_not.core.applied import Failure
from kaput_not.netmaker import errors

log = logging.getLogger("kaput_not.controller")

#: Permanent failures remembered as already logged; past this many the memory starts over.
_TOLD_LIMIT = 10_000


class PassFailed(Exception):
    """A pass ran but some writes failed; their errors decide the key's retry."""

    def __init__(self, message: str, causes: tuple[Exception, ...] = ()) -> None:
        super().__init__(message)
        self.errors = causes


class RetryPolicy:
    def __init__(
        self,
        *,
        queue: WorkQueue[str],
        circuit: Circuit,
        metrics: Metrics,
        fail: Callable[[Exception], None],
        full_pass_key: str,
    ) -> None:
        self._queue = queue
        self._circuit = circuit
        self._metrics = metrics
        self._fail = fail
        self._full_pass_key = full_pass_key
        #: Texts of permanent failures already logged: each is logged once.
        self._told_permanent: set[str] = set()

    async def __call__(self, key: str, exc: Exception) -> None:
        kind = decide(exc)
        if kind is Retry.FATAL:
            self._fail(exc)
            return
        full = key == self._full_pass_key
        what = "the full pass" if full else f"reconciling node {key}"
        if kind is Retry.SERVER:
            self._circuit.trip(server_cause(exc))  # one line when it opens, none per key
            if not full:
                self._circuit.hold(key)
            return
        if kind is Retry.PERMANENT:
            # Not retried: the same answer would come back. The next full pass tries again.
            self._queue.forget(key)
            if not isinstance(exc, PassFailed):  # a failed write was counted and logged once
                self._metrics.permanent_errors.labels("read").inc()
                text = str(exc)
                if text not in self._told_permanent:
                    if len(self._told_permanent) >= _TOLD_LIMIT:
                        self._told_permanent.clear()
                    self._told_permanent.add(text)
                    log.warning("%s failed: %s (not retried before the next full pass)", what, exc)
            return
        requeues = self._queue.requeues(key) + 1
        if isinstance(exc, errors.NetmakerError | PassFailed):
            log.warning("%s failed (retry %d): %s", what, requeues, exc)
        else:  # a bug: say so loudly, and still retry rather than lose the key
            log.error("%s failed unexpectedly (retry %d): %r", what, requeues, exc, exc_info=exc)
        self._queue.add_rate_limited(key)

    def full_pass_failures(self, failures: Iterable[Failure]) -> None:
        """A full pass's failed writes, each retried through its node's key as `decide`
        says; a PERMANENT one waits for the next full pass, and orphans (no node key) are
        the pass's own retry."""
        for failure in failures:
            node = failure.action.kube_node
            if node is None:
                continue
            kind = decide(failure.error)
            if kind is Retry.SERVER:
                self._circuit.hold(node)
            elif kind is Retry.KEY:
                self._queue.add_rate_limited(node)
