"""Logging set-up for `kaput-not run`: one JSON object per line (or plain text locally)."""

from __future__ import annotations

import datetime
import json
import logging
import os
import sys

#: Structured fields a log call may pass in `extra=`; each becomes a key of the JSON line.
FIELDS = ("node", "network", "egress_id", "action", "reason", "error")


class JsonFormatter(logging.Formatter):
    """`{"time", "level", "logger", "message"}`, the structured `FIELDS` a call passed, and the
    exception text when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.datetime.fromtimestamp(record.created, datetime.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for field in FIELDS:
            value = getattr(record, field, None)
            if value is not None:
                entry[field] = str(value)
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        # json.dumps' layout (`"key": "value"`) is what people grep the logs for: kept, though
        # msgspec would encode a line faster (docs/benchmarks.md).
        return json.dumps(entry, ensure_ascii=False)


def configure(level: str, fmt: str) -> None:
    # Neither format shows the thread or the process: don't look them up for every record (the
    # logging HOWTO's "Optimization": a log line is written per Netmaker write).
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # httpx2 logs every request at INFO, httpcore2 every socket step at DEBUG: ours are counted
    # in metrics and logged (at DEBUG) by the Netmaker client. KAPUT_NOT_HTTP_DEBUG=1 lets
    # them through when a transport problem needs them.
    if os.environ.get("KAPUT_NOT_HTTP_DEBUG") != "1":
        for noisy in ("httpx2", "httpcore2", "hpack"):
            logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
