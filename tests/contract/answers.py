"""Reading Netmaker answers in the contract tests: the envelope checks every call repeats."""

from __future__ import annotations

from typing import Any

import httpx2


def is_json(answer: httpx2.Response) -> bool:
    return answer.headers.get("content-type", "").split(";")[0].strip() == "application/json"


def envelope(answer: httpx2.Response) -> dict[str, Any]:
    """The body of a JSON envelope with the capitalised keys and ``Code`` = HTTP status."""
    assert is_json(answer), answer.headers
    body = answer.json()
    assert isinstance(body, dict)
    assert set(body) == {"Code", "Message", "Response"}, body
    assert body["Code"] == answer.status_code
    return body


def ok(answer: httpx2.Response) -> Any:
    """``Response`` of a success envelope (HTTP 200)."""
    assert answer.status_code == 200, answer.text
    return envelope(answer)["Response"]


def error(answer: httpx2.Response) -> tuple[int, str]:
    """(status, Message) of an error envelope."""
    body = envelope(answer)
    assert body["Response"] is None
    return answer.status_code, str(body["Message"])


def bare(answer: httpx2.Response) -> Any:
    """A bare JSON body (no envelope) with HTTP 200."""
    assert answer.status_code == 200, answer.text
    assert is_json(answer), answer.headers
    return answer.json()
