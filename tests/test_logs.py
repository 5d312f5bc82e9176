"""The log lines `kaput-not run` writes: with LOG_FORMAT=json, one JSON object per line."""

from __future__ import annotations

import datetime
import json
import logging
from collections.abc import Iterator

import pytest

from kaput_not import logs


@pytest.fixture
def restored_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    flags = logging.logThreads, logging.logProcesses, logging.logMultiprocessing
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        logging.logThreads, logging.logProcesses, logging.logMultiprocessing = flags


@pytest.mark.usefixtures("restored_logging")
def test_a_json_line_holds_the_message_the_fields_given_and_the_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    logs.configure("INFO", "json")
    log = logging.getLogger("kaput_not.test")
    log.debug("not at INFO")
    try:
        raise ValueError("boom")
    except ValueError:
        fields = {"node": "wörker-1", "network": None, "action": "create", "egress_id": 7}
        log.exception("created %s", "10.0.0.0/24", extra=fields)
    log.info('a "quoted"\nmessage')
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2, lines
    first, second = (json.loads(line) for line in lines)
    assert first["level"] == "error"
    assert first["logger"] == "kaput_not.test"
    assert first["msg"] == "created 10.0.0.0/24"
    assert (first["node"], first["action"], first["egress_id"]) == ("wörker-1", "create", "7")
    assert "network" not in first  # a field given as None is left out
    assert first["error"].startswith("Traceback")
    assert "ValueError: boom" in first["error"]
    assert "wörker-1" in lines[0]  # UTF-8, not escaped
    stamp = datetime.datetime.fromisoformat(first["ts"])
    assert stamp.tzinfo is not None
    assert stamp.microsecond % 1000 == 0
    assert second["msg"] == 'a "quoted"\nmessage'
    # Neither format shows them: not looked up for every record.
    assert (logging.logThreads, logging.logProcesses, logging.logMultiprocessing) == (0, 0, 0)
    # Issue 20: the keys (and order) of Kubernetes controllers' JSON logs, `"key": "value"`.
    assert list(first)[:4] == ["ts", "level", "msg", "logger"]
    assert '"level": "error", "msg": "created 10.0.0.0/24", "logger": "kaput_not.test"' in lines[0]


@pytest.mark.usefixtures("restored_logging")
def test_the_text_format_is_one_readable_line(capsys: pytest.CaptureFixture[str]) -> None:
    logs.configure("INFO", "text")
    logging.getLogger("kaput_not.test").warning("held back: %s", "budget")
    [line] = capsys.readouterr().err.splitlines()
    assert line.endswith("WARNING kaput_not.test: held back: budget")


@pytest.mark.usefixtures("restored_logging")
def test_json_logs_use_ts_level_msg_logger_and_keep_fields_as_json_types(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Issue 20: `ts`, `level`, `msg`, `logger` (controller-runtime's and klog's keys), and
    counts passed as fields stay numbers a log query can compare."""
    logs.configure("INFO", "json")
    counts = {"created": 3, "deleted": 0, "seconds": 0.25, "msg": "clash", "nested": {"a": [1]}}
    logging.getLogger("kaput_not.controller").info("full sync", extra={"fields": counts})
    [line] = capsys.readouterr().err.splitlines()
    entry = json.loads(line)
    assert list(entry)[:4] == ["ts", "level", "msg", "logger"]
    assert entry["msg"] == "full sync"  # a field cannot overwrite the line's own keys
    assert entry["field_msg"] == "clash"
    assert (entry["created"], entry["deleted"], entry["seconds"]) == (3, 0, 0.25)
    assert entry["nested"] == {"a": [1]}


@pytest.mark.usefixtures("restored_logging")
def test_text_logs_append_fields_as_logfmt(capsys: pytest.CaptureFixture[str]) -> None:
    logs.configure("INFO", "text")
    fields = {"created": 3, "cluster": "eu 1", "ranges": ["10.0.0.0/8"]}
    logging.getLogger("kaput_not.test").info("full sync", extra={"fields": fields})
    [line] = capsys.readouterr().err.splitlines()
    assert line.endswith(
        'INFO kaput_not.test: full sync created=3 cluster="eu 1" ranges=["10.0.0.0/8"]'
    )


@pytest.mark.usefixtures("restored_logging")
def test_held_records_drop_only_the_ones_that_repeat_the_failure(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Issue 20: `plan`/`status` print the error that ends them once; other warnings on the
    way still show, and after `finish` records go straight through."""
    held = logs.configure_held("WARNING", "text")
    log = logging.getLogger("kaput_not.test")
    log.warning("reading a Netmaker list failed: GET /api/hosts: HTTP 502")
    log.warning("the node list shrank from 9 to 3; reading it again")
    assert capsys.readouterr().err == ""  # held
    held.finish("GET /api/hosts: HTTP 502")
    log.warning("after")
    lines = capsys.readouterr().err.splitlines()
    assert [line.split(": ", 1)[1] for line in lines] == [
        "the node list shrank from 9 to 3; reading it again",
        "after",
    ]
