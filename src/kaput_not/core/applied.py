"""What applying a plan did: the counts, the failures, and the rules the server created.

A plain value, here in the core so that whoever reads it (the reconciler, the guard, the
commands) needs no import of the executor, which only the wiring may build.
"""

from __future__ import annotations

from dataclasses import dataclass

from kaput_not.core.model import Action, Egress


@dataclass(frozen=True, slots=True)
class Failure:
    action: Action
    error: Exception


@dataclass(frozen=True, slots=True)
class ApplyResult:
    created: int = 0
    updated: int = 0
    deleted: int = 0
    skipped: int = 0
    failures: tuple[Failure, ...] = ()
    #: The rules created, as the server stored them (new ids).
    made: tuple[Egress, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.failures and not self.skipped
