"""Logging set-up for `kaput-not run`: one JSON object per line (or plain text locally).

The JSON keys are the ones log tooling reads from Kubernetes controllers (controller-runtime's
zap, klog): `ts`, `level`, `msg`, `logger`, then the structured fields. A call passes fields in
`extra=`: the names of `FIELDS` (strings), or any others as a mapping under `fields=`
(`extra={"fields": {"created": 3}}`), kept as JSON numbers, objects and lists.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import sys
from collections.abc import Mapping

#: Structured fields a log call may pass in `extra=`; each becomes a key of the JSON line.
FIELDS = ("node", "network", "egress_id", "action", "reason", "error")
#: Keys the line itself uses: a field of that name would overwrite them, so it is renamed.
_RESERVED = frozenset(("ts", "level", "logger", "msg"))


def fields(record: logging.LogRecord) -> dict[str, object]:
    """The structured fields a log call passed (`FIELDS` and the `fields=` mapping)."""
    found: dict[str, object] = {}
    for field in FIELDS:
        value = getattr(record, field, None)
        if value is not None:
            found[field] = str(value)
    more = getattr(record, "fields", None)
    if isinstance(more, Mapping):
        for key, value in more.items():
            found[f"field_{key}" if key in _RESERVED else str(key)] = value
    return found


class JsonFormatter(logging.Formatter):
    """`{"ts", "level", "msg", "logger"}`, the structured fields a call passed, and the
    exception text when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": datetime.datetime.fromtimestamp(record.created, datetime.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname.lower(),
            "msg": record.getMessage(),
            "logger": record.name,
        }
        entry.update(fields(record))
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        # json.dumps' layout (`"key": "value"`) is what people grep the logs for: kept, though
        # msgspec would encode a line faster (docs/benchmarks.md).
        return json.dumps(entry, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """`time LEVEL logger: message`, then the `fields=` mapping as ` key=value` (logfmt)."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        more = getattr(record, "fields", None)
        if not isinstance(more, Mapping) or not more:
            return line
        return line + "".join(f" {key}={_logfmt(value)}" for key, value in more.items())


def _logfmt(value: object) -> str:
    if not isinstance(value, str):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    if value == "" or any(c in value for c in ' ="'):
        return json.dumps(value, ensure_ascii=False)
    return value


class Held(logging.Handler):
    """Records kept back until the command knows how it ended (`plan`, `status`): a failure
    that ends it is printed once, as its error, not first as a WARNING on the way."""

    def __init__(self, target: logging.Handler) -> None:
        super().__init__()
        self._target = target
        self._records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self._records.append(record)

    def finish(self, failure: str = "") -> None:
        """Write what was kept, except records that only repeat `failure` (the error the
        command prints itself); from now on records go straight through."""
        root = logging.getLogger()
        root.handlers[:] = [self._target]
        for record in self._records:
            if failure and failure in record.getMessage():
                continue
            self._target.handle(record)
        self._records.clear()


def configure(level: str, fmt: str) -> None:
    # Neither format shows the thread, the process or where the call was made: don't look them
    # up for every record (the logging HOWTO's "Optimization": a log line is written per
    # Netmaker write; `_srcfile = None` is its way to skip the caller's frame, file and line).
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    logging._srcfile = None
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # httpx2 logs every request at INFO, httpcore2 every socket step at DEBUG: ours are counted
    # in metrics and logged (at DEBUG) by the Netmaker client. KAPUT_NOT_HTTP_DEBUG=1 lets
    # them through when a transport problem needs them.
    if os.environ.get("KAPUT_NOT_HTTP_DEBUG") != "1":
        for noisy in ("httpx2", "httpcore2", "hpack"):
            logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


def configure_held(level: str, fmt: str) -> Held:
    """`configure`, with records held back until `Held.finish`."""
    configure(level, fmt)
    root = logging.getLogger()
    held = Held(root.handlers[0])
    root.handlers[:] = [held]
    return held
