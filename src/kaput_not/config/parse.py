"""Reading one variable: the value parsers and the reader that turns a bad value into one line.

Every problem is a `ConfigError` whose message names the variable and says what is expected.
"""

from __future__ import annotations

import re
from collections.abc import Mapping


class ConfigError(ValueError):
    """A setting that cannot work; the message is one line naming the variable."""


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_SECONDS = re.compile(r"\d+(?:\.\d+)?")
#: Longer durations are mistakes (and overflow the event loop's timers): a year is plenty.
_LONGEST = 365 * 24 * 3600.0


def parse_bool(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigError(f"{name}={raw!r} is not a boolean: use true or false")


def parse_duration(name: str, raw: str) -> float:
    """Seconds from `30`, `30s`, `1.5m`, `10m`, `1h30m` or `500ms` (Go's ParseDuration style).

    Only digits: `nan`, `inf`, `1e3` or `-5` are refused (float() would take them, and a NaN
    grace period once made the work queue spin forever).
    """
    text = raw.strip()
    if _SECONDS.fullmatch(text):
        return _at_most_a_year(name, raw, float(text))
    total, pos = 0.0, 0
    scale = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
    for match in _DURATION.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * scale[match.group(2)]
        pos = match.end()
    if not text or pos != len(text):
        raise ConfigError(f"{name}={raw!r} is not a duration: use e.g. 30s, 10m or 1h30m")
    return _at_most_a_year(name, raw, total)


def _at_most_a_year(name: str, raw: str, seconds: float) -> float:
    if not seconds <= _LONGEST:
        raise ConfigError(f"{name}={raw!r} is longer than a year: use e.g. 30s, 10m or 1h30m")
    return seconds


def split_address(address: str) -> tuple[str, int]:
    """`host:port` or `:port` to (host, port); the empty host means every interface."""
    host, sep, port = address.rpartition(":")
    if not sep or not (port.isascii() and port.isdigit()) or not 0 <= int(port) <= 65535:
        raise ConfigError(f"METRICS_ADDRESS={address!r} must be host:port or :port")
    return host.strip("[]") or "0.0.0.0", int(port)


class Reader:
    """Reads variables from one environment mapping and turns each failure into a ConfigError."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env

    def text(self, name: str, default: str | None = None) -> str | None:
        value = self.raw(name)
        if value is None or value.strip() == "":
            return default
        return value.strip()

    def raw(self, name: str) -> str | None:
        """The value as set; bytes that are not UTF-8 (surrogate escapes) are refused."""
        value = self.env.get(name)
        if value is not None:
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise ConfigError(
                    f"{name} is not valid UTF-8: set it again as UTF-8 text"
                ) from None
        return value

    def required(self, name: str, what: str) -> str:
        value = self.text(name)
        if value is None:
            raise ConfigError(f"{name} is not set: {what}")
        return value

    def flag(self, name: str, default: bool) -> bool:
        raw = self.text(name)
        return default if raw is None else parse_bool(name, raw)

    def seconds(
        self, name: str, default: float, *, minimum: float = 0.0, zero: bool = False
    ) -> float:
        """A duration above `minimum` seconds (or exactly 0 when `zero` is allowed)."""
        raw = self.text(name)
        value = default if raw is None else parse_duration(name, raw)
        if zero and value == 0:
            return value
        if value <= minimum:
            raise ConfigError(f"{name}={raw!r} must be longer than {minimum:g}s")
        return value

    def integer(self, name: str, default: int, *, low: int, high: int) -> int:
        raw = self.text(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise ConfigError(f"{name}={raw!r} is not a whole number") from None
        if not low <= value <= high:
            raise ConfigError(f"{name}={raw!r} must be between {low} and {high}")
        return value

    def fraction(self, name: str, default: float) -> float:
        raw = self.text(name)
        if raw is None:
            return default
        try:
            value = float(raw)
        except ValueError:
            raise ConfigError(f"{name}={raw!r} is not a number") from None
        if not 0.0 < value <= 1.0:
            raise ConfigError(f"{name}={raw!r} must be a fraction above 0 and at most 1")
        return value
