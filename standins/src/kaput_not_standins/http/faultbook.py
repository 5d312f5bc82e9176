"""The rule book behind every stand-in's fault injection: which request a fault hits, and when.

A rule names a route key or a shell-style pattern of them (``"*"``, ``"GET /api/v1/nodes*"``),
how many matching requests it affects (``times``, None = every one) and its phase:

- ``before``: the request is not processed; the fault is the whole answer.
- ``after``: the request is processed, then its answer is replaced.

Rules are tried in the order they were added; :meth:`FaultBook.take` consumes one use of the
first rule that fits a request and a phase, so a request meets at most one rule per phase. The
book is thread-safe: a test thread may add rules while the stand-in serves on another.

What a fault does (its kinds and their extra fields) belongs to each stand-in, which subclasses
:class:`RouteRule` and :class:`FaultBook` and adds one helper method per kind.
"""

from __future__ import annotations

import enum
import fnmatch
import threading
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

When = Literal["before", "after"]

KindT = TypeVar("KindT", bound=enum.Enum)


@dataclass
class RouteRule(Generic[KindT]):
    route: str  # a route key, or a shell-style pattern of them
    kind: KindT
    when: When = "before"
    times: int | None = 1  # remaining matching requests; None = unlimited

    def matches(self, route_key: str) -> bool:
        return fnmatch.fnmatchcase(route_key, self.route)


RuleT = TypeVar("RuleT", bound=RouteRule[Any])


class FaultBook(Generic[RuleT]):
    def __init__(self) -> None:
        self._rules_lock = threading.Lock()
        self._rules: list[RuleT] = []

    def add(self, rule: RuleT) -> RuleT:
        if rule.times is not None and rule.times < 1:
            raise ValueError("times must be at least 1, or None for every request")
        with self._rules_lock:
            self._rules.append(rule)
        return rule

    def clear(self) -> None:
        """Drop every rule that has not fired yet."""
        with self._rules_lock:
            self._rules.clear()

    @property
    def pending(self) -> list[RuleT]:
        """Rules with uses left, in the order they will be tried."""
        with self._rules_lock:
            return list(self._rules)

    def take(self, route_key: str, when: When) -> RuleT | None:
        """Consume one use of the first rule for this request and phase, if any."""
        with self._rules_lock:
            for rule in self._rules:
                if rule.when == when and rule.matches(route_key):
                    if rule.times is not None:
                        rule.times -= 1
                        if rule.times == 0:
                            self._rules.remove(rule)
                    return rule
        return None
