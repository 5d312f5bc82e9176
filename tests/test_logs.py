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
    assert first["message"] == "created 10.0.0.0/24"
    assert (first["node"], first["action"], first["egress_id"]) == ("wörker-1", "create", "7")
    assert "network" not in first  # a field given as None is left out
    assert first["error"].startswith("Traceback")
    assert "ValueError: boom" in first["error"]
    assert "wörker-1" in lines[0]  # UTF-8, not escaped
    stamp = datetime.datetime.fromisoformat(first["time"])
    assert stamp.tzinfo is not None
    assert stamp.microsecond % 1000 == 0
    assert second["message"] == 'a "quoted"\nmessage'
    # Neither format shows them: not looked up for every record.
    assert (logging.logThreads, logging.logProcesses, logging.logMultiprocessing) == (0, 0, 0)
    assert '"level": "error", "logger": "kaput_not.test"' in lines[0]  # the layout people grep


@pytest.mark.usefixtures("restored_logging")
def test_the_text_format_is_one_readable_line(capsys: pytest.CaptureFixture[str]) -> None:
    logs.configure("INFO", "text")
    logging.getLogger("kaput_not.test").warning("held back: %s", "budget")
    [line] = capsys.readouterr().err.splitlines()
    assert line.endswith("WARNING kaput_not.test: held back: budget")
