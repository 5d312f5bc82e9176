"""A complete answer, and what it means: its decoded value, or the one error that says why not.

The three-level check: the HTTP status, a JSON body (by its media type or, since the real server
sends some JSON as `text/plain`, by the body itself), then the envelope's `Code`. Every text of
the server's quoted in an error is redacted first.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

import msgspec

from kaput_not.decoding import first_byte
from kaput_not.netmaker import errors, wire
from kaput_not.netmaker.redact import Redactor

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Answer:
    """A complete answer: its status, the two headers the client reads, and the body, read into
    one buffer as it arrives (joining the chunks at the end, as httpx2 does, held a big list
    twice). For a list read through a `ListReader`, the body is what the reader
    did not cut out: the envelope and the last items."""

    status: int
    content_type: str
    location: str
    body: bytes | bytearray
    #: The body was cut at `sender.ERROR_BODY_CAP` (an error's), the rest not read.
    truncated: bool = False


def is_json(response: Answer) -> bool:
    """Whether to read the body as JSON: by its media type, or by the body itself.

    The real server sends some JSON bodies as `text/plain` (GET /api/networks: Go sniffs that
    type when a handler sets none), so the header alone would refuse good answers. Every answer
    the client decodes is an object or an array, so a body that opens with `{` or `[` is read
    as JSON; an HTML page or a plain-text error is not, and gets the NotJson hint.
    """
    media = response.content_type.split(";")[0].strip().lower()
    if media == "application/json" or media.endswith("+json"):
        return True
    return first_byte(response.body) in (b"{", b"[")


class AnswerCheck:
    """Turns answers into values or errors, redacting what it quotes."""

    __slots__ = ("_redact",)

    def __init__(self, redact: Redactor) -> None:
        self._redact = redact

    def value(self, call: str, response: Answer, expect: wire.Shape[T]) -> T:
        """The three-level check (status, JSON body, envelope `Code`), then the decode."""
        status, body = response.status, response.body
        if not 200 <= status < 300:
            raise self._error(call, response)
        if not body or body.isspace():
            # GET /api/nodes answers 200 with nothing when it fails to load the caller's role.
            raise errors.BadResponse(call, "empty body where JSON was expected", status=status)
        if response.truncated or not is_json(response):  # only an HTML page is cut here
            hint = "does NETMAKER_API_URL point at the Netmaker API, not the dashboard?"
            raise self._not_json(call, response, hint)
        payload: bytes | bytearray | msgspec.Raw = body
        code, message = None, ""
        try:
            if expect.enveloped:
                envelope = wire.ENVELOPE.decode(body)
                code, message, payload = envelope.code, envelope.message, envelope.response
            elif first_byte(body) == b"{":
                # A bare-array endpoint that answers an object may still carry an error Code.
                head = wire.STATUS.decode(body)
                code, message = head.code, head.message
            if code is not None and code != 200:
                raise errors.ApiError(
                    call, status=status, code=code, server_message=self._redact(message)
                )
            return expect.decoder.decode(payload)
        except msgspec.ValidationError as exc:
            detail = f"unexpected JSON: {self._redact(str(exc))}"
            raise errors.BadResponse(call, detail, status=status) from exc
        except msgspec.DecodeError as exc:
            detail = f"invalid JSON: {self._redact(str(exc))}"
            raise errors.BadResponse(call, detail, status=status) from exc

    def _error(self, call: str, response: Answer) -> errors.ApiError:
        status = response.status
        if 300 <= status < 400:
            location = errors.one_line(self._redact(response.location) or "?", 100)
            return self._not_json(call, response, f"it redirects to {location}; use that URL")
        if not is_json(response):
            if status >= 500:
                hint = "is a proxy in front of Netmaker?"
            else:
                hint = "does NETMAKER_API_URL point at the Netmaker API (v1.5 or later)?"
            return self._not_json(call, response, hint)
        if response.truncated:  # JSON cut at the cap cannot decode: quote its start
            return errors.ApiError(call, status=status, server_message=self._body_snippet(response))
        try:
            head = wire.STATUS.decode(response.body)
        except msgspec.DecodeError:
            return errors.ApiError(call, status=status, server_message=self._body_snippet(response))
        return errors.ApiError(
            call, status=status, code=head.code, server_message=self._redact(head.message)
        )

    def _not_json(self, call: str, response: Answer, hint: str) -> errors.NotJson:
        return errors.NotJson(
            call,
            status=response.status,
            content_type=self._redact(response.content_type),
            body=self._body_snippet(response),
            hint=hint,
        )

    def _body_snippet(self, response: Answer) -> str:
        text = bytes(response.body[:2048]).decode("utf-8", errors="replace")
        shown = errors.snippet(self._redact(text))
        return f"{shown} (truncated)" if response.truncated else shown
