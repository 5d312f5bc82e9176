"""Netmaker's health as one state (docs/design.md, rule 14), and the one decision of which
retry a failure gets.

`decide(exc)` sorts every failure of a pass into one of four kinds:
- SERVER: about the server, not the request (unreachable, a timeout, a 5xx). The circuit opens:
  no Netmaker request is sent but one cheap probe on a backoff, the queue's passes are held
  (their keys noted, not failed one by one), and when the probe is answered the keys' backoffs
  are reset and ONE full pass writes everything at once.
- KEY: about this request, and it may pass later (a conflict, an unreadable answer): the key
  backs off on its own.
- PERMANENT: the same answer on every try (a 4xx, a write refused before it was sent): logged
  once, counted, and left to the next full pass; retrying it with backoff forever only fills
  the log and the server's.
- FATAL: a person must act (the password is refused): the controller stops.

An outage never looks like "the rules are gone": a failed read raises, it is never an empty list.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import time
from collections.abc import Awaitable, Callable

from kaput_not import ratelimit
from kaput_not.netmaker import errors

log = logging.getLogger("kaput_not.netmaker.health")

#: 4xx statuses that say "not now" rather than "never": per-key backoff.
_LATER = frozenset({408, 409, 423, 425, 429})


class Retry(enum.Enum):
    SERVER = "server"
    KEY = "key"
    PERMANENT = "permanent"
    FATAL = "fatal"


class Held(Exception):
    """A write not sent because Netmaker is unavailable: it waits for the recovery pass."""


#: Which of several failures of one pass decides its retry: the most severe.
_SEVERITY = (Retry.FATAL, Retry.SERVER, Retry.KEY, Retry.PERMANENT)


def decide(exc: BaseException) -> Retry:
    """The retry `exc` gets. The one place the kinds are told apart."""
    if isinstance(exc, errors.CredentialsRejected):
        return Retry.FATAL
    if isinstance(exc, Held | errors.Unreachable | errors.OutcomeUnknown):
        return Retry.SERVER
    if isinstance(exc, errors.ApiError):
        if exc.retryable:
            return Retry.SERVER
        return Retry.KEY if exc.status in _LATER else Retry.PERMANENT
    if isinstance(exc, errors.NetmakerError):
        return Retry.KEY if exc.retryable else Retry.PERMANENT
    if isinstance(exc, ValueError):
        return Retry.PERMANENT  # refused before sending (a PUT without an id): same every time
    inner = getattr(exc, "errors", None)  # retry_policy.PassFailed: the errors of its writes
    if inner is not None:  # its most severe failure decides
        kinds = {decide(e) for e in inner}
        return next((k for k in _SEVERITY if k in kinds), Retry.KEY)
    return Retry.KEY  # a bug: retried with backoff (and logged loudly) rather than lost


def server_cause(exc: BaseException) -> BaseException:
    """The failure to name when `exc` opens the circuit: for a failed pass, its first write
    that failed for the server's sake (not the pass's summary)."""
    inner = getattr(exc, "errors", None)
    if inner is None:
        return exc
    return next((e for e in inner if decide(e) is Retry.SERVER), exc)


class Circuit:
    """Open while Netmaker fails as a server; closed otherwise.

    `trip(exc)` opens it (one WARNING), `hold(key)` notes a queue key that waits for the
    server, and a probe task asks `probe()` on a backoff until it is answered; then the circuit
    closes (one INFO with how long and how many keys waited) and `on_close(keys)` runs.
    """

    def __init__(
        self,
        *,
        probe: Callable[[], Awaitable[object]],
        on_close: Callable[[set[str]], None],
        on_fatal: Callable[[Exception], None],
        on_change: Callable[[bool], None] = lambda _open: None,
        probe_base_seconds: float = 0.2,
        probe_cap_seconds: float = 1.0,
        clock: ratelimit.Clock = time.monotonic,
        wall_clock: ratelimit.Clock = time.time,
    ) -> None:
        self._probe = probe
        self._on_close = on_close
        self._on_fatal = on_fatal
        self._on_change = on_change
        self._base = probe_base_seconds
        self._cap = probe_cap_seconds
        self._clock = clock
        self._wall_clock = wall_clock
        self._opened: float | None = None
        #: Unix time it opened, for readiness.
        self.opened_wall: float | None = None
        #: The failure that opened it, then the probe's last one.
        self.cause = ""
        self.waiting: set[str] = set()
        self.probes = 0
        self._task: asyncio.Task[None] | None = None

    @property
    def is_open(self) -> bool:
        return self._opened is not None

    def open_for(self) -> float:
        """Seconds since it opened; 0 while closed."""
        return 0.0 if self._opened is None else self._clock() - self._opened

    def trip(self, exc: BaseException) -> None:
        """A failure about the server: open (once) and start probing."""
        if self._opened is not None:
            log.debug("Netmaker still unavailable: %s", exc)
            return
        self._opened = self._clock()
        self.opened_wall = self._wall_clock()
        self.cause = str(exc)
        self.probes = 0
        log.warning(
            "Netmaker is unavailable (%s): holding its writes and probing it until it answers",
            exc,
        )
        self._on_change(True)
        self._task = asyncio.create_task(self._probing(), name="netmaker-probe")

    def hold(self, key: str) -> None:
        """Note a node key whose pass waits for the server (the recovery pass covers it)."""
        self.waiting.add(key)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _probing(self) -> None:
        backoff: ratelimit.ExponentialBackoff[str] = ratelimit.ExponentialBackoff(
            base=min(self._base, self._cap), cap=self._cap, jitter=0.2
        )
        while self._opened is not None:
            await asyncio.sleep(backoff.when("probe"))
            self.probes += 1
            try:
                await self._probe()
            except Exception as exc:  # sorted by `decide`, as every failure is
                kind = decide(exc)
                if kind is Retry.FATAL:
                    self._task = None
                    self._on_fatal(exc)
                    return
                if kind is Retry.SERVER:
                    self.cause = str(exc)
                    log.debug("Netmaker probe failed: %s", exc)
                    continue
                # Any other answer is an answer: the server is back.
            self._task = None
            self._close()

    def _close(self) -> None:
        seconds = self.open_for()
        waiting, self.waiting = self.waiting, set()
        self._opened = None
        self.opened_wall = None
        log.info(
            "Netmaker answers again after %.1fs unavailable (%d probes); %d nodes waited: "
            "running one full pass",
            seconds,
            self.probes,
            len(waiting),
        )
        self._on_change(False)
        self._on_close(waiting)
