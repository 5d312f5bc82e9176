"""Reading Netmaker answers in the contract tests: the envelope checks every call repeats."""

from __future__ import annotations

from typing import Any

import httpx2

JSON = "application/json"
#: What Go's http package sniffs for a JSON body written before any Content-Type was set: the
#: real server sends some bare JSON bodies under it, so a client must read JSON by the body.
SNIFFED = "text/plain; charset=utf-8"
#: Endpoints whose media type varies between requests on the real server (the handler sets
#: application/json, yet text/plain was seen too): only the body is reliable there.
EITHER = (JSON, SNIFFED)


def media(answer: httpx2.Response) -> str:
    return answer.headers.get("content-type", "")


def is_json(answer: httpx2.Response) -> bool:
    return media(answer).split(";")[0].strip() == JSON


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


def bare(answer: httpx2.Response, media_type: str | tuple[str, ...] = JSON) -> Any:
    """A bare JSON body (no envelope) with HTTP 200, sent as `media_type` (or one of them)."""
    assert answer.status_code == 200, answer.text
    allowed = (media_type,) if isinstance(media_type, str) else media_type
    assert media(answer) in allowed, f"{media(answer)!r} is none of {allowed}"
    body = answer.json()
    assert not (isinstance(body, dict) and {"Code", "Message", "Response"} <= set(body)), body
    return body
