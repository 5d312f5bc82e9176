"""Enrollment keys and their tokens (docs/netmaker-api.md section 7).

A key holds a 32-character ``value``; its ``token`` is standard base64 of
``{"server":"<api host>","value":"<value>"}``. The server ignores ``server`` when reading a token
back, so a harness may build tokens itself. Creating a network also creates an unlimited key
tagged with the network's name (``default: true``).

A key is usable while it is unlimited, has uses left (each registration spends one) or has not
expired. Text of the tag and validity errors is approximate (only the statuses are documented).
Not modelled: key types beyond what the three fields imply, relays, groups, auto-egress, and
the key deletion and update endpoints.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
import string
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .errors import NO_RESULT_FOUND, bad_request, internal
from .model import GO_ZERO_TIME, rfc3339

_VALUE_ALPHABET = string.ascii_letters + string.digits


@dataclass
class EnrollmentKey:
    value: str
    token: str
    tags: list[str]
    networks: list[str]
    unlimited: bool
    uses_remaining: int
    expiration: float  # unix seconds; 0 = none
    default: bool = False

    def usable(self, now: float) -> bool:
        return self.unlimited or self.uses_remaining > 0 or now < self.expiration

    def try_use(self, now: float) -> bool:
        """``TryToUseEnrollmentKey``: unlimited, else spend a use, else the expiry decides."""
        if self.unlimited:
            return True
        if self.uses_remaining > 0:
            self.uses_remaining -= 1
            return True
        return now < self.expiration

    def to_api(self) -> dict[str, object]:
        if self.unlimited:
            key_type = 3
        elif self.uses_remaining > 0:
            key_type = 2
        else:
            key_type = 1 if self.expiration else 0
        return {
            "expiration": rfc3339(self.expiration) if self.expiration else GO_ZERO_TIME,
            "uses_remaining": self.uses_remaining,
            "value": self.value,
            "networks": list(self.networks),
            "unlimited": self.unlimited,
            "tags": list(self.tags),
            "token": self.token,
            "type": key_type,
            "relay": "",
            "groups": [],
            "default": self.default,
        }


def tokenize(server: str, value: str) -> str:
    """The token for a key ``value``: base64 of compact ``{"server":...,"value":...}``."""
    document = json.dumps({"server": server, "value": value}, separators=(",", ":"))
    return base64.b64encode(document.encode("utf-8")).decode("ascii")


class EnrollmentKeys:
    """The key table; callers hold the state lock."""

    def __init__(self, *, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._by_value: dict[str, EnrollmentKey] = {}

    def all(self) -> list[EnrollmentKey]:
        return list(self._by_value.values())

    def create(
        self,
        *,
        server: str,
        tags: Sequence[str],
        networks: Sequence[str],
        unlimited: bool = False,
        uses_remaining: int = 0,
        expiration: float = 0,
    ) -> EnrollmentKey:
        """``POST /api/v1/enrollment-keys``: tags of 3 to 32 characters, unused by other keys."""
        taken = {tag for key in self._by_value.values() for tag in key.tags}
        for tag in tags:
            if not 3 <= len(tag) <= 32:
                raise bad_request("invalid tag: tags must have 3 to 32 characters")
            if tag in taken:
                raise bad_request("key names must be unique")
        key = self._new(server, tags, networks, unlimited, uses_remaining, expiration)
        if not key.usable(self._clock()):
            raise internal(
                "enrollment key is not valid: it needs uses remaining, an expiration or unlimited"
            )
        self._by_value[key.value] = key
        return key

    def create_default(self, *, server: str, network: str) -> EnrollmentKey:
        """The key ``CreateNetwork`` adds: unlimited, tagged and scoped with the network name."""
        key = self._new(server, [network], [network], True, 0, 0)
        key.default = True
        self._by_value[key.value] = key
        return key

    def from_token(self, token: str) -> EnrollmentKey:
        """``DeTokenize``: any failure is a 400 with the underlying error text."""
        try:
            document = json.loads(base64.b64decode(token, validate=True))
        except (binascii.Error, ValueError) as exc:
            raise bad_request(f"invalid enrollment token: {exc}") from exc
        value = document.get("value") if isinstance(document, dict) else None
        key = self._by_value.get(value) if isinstance(value, str) else None
        if key is None:
            raise bad_request(NO_RESULT_FOUND)
        return key

    def _new(
        self,
        server: str,
        tags: Sequence[str],
        networks: Sequence[str],
        unlimited: bool,
        uses_remaining: int,
        expiration: float,
    ) -> EnrollmentKey:
        value = "".join(secrets.choice(_VALUE_ALPHABET) for _ in range(32))
        return EnrollmentKey(
            value=value,
            token=tokenize(server, value),
            tags=list(tags),
            networks=list(networks),
            unlimited=unlimited,
            uses_remaining=uses_remaining,
            expiration=expiration,
        )
