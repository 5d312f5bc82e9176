"""Kubernetes ``Status`` failures: the one error type of the stand-in, and its constructors.

Every failure the real API server reports is a ``Status`` object (``k8s.io/apimachinery``'s
``StatusError``), sent with the HTTP status equal to its ``code``, as the body of an error reply
or as the object of a watch ``ERROR`` event::

    {"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"...",
     "reason":"NotFound","details":{"name":"n1","kind":"nodes"},"code":404}

Keys come in Go's field order and empty ones are omitted, as Go's ``omitempty`` does (``details``
is absent unless the server fills it; ``metadata`` is always there). The constructors below use
the real server's wording, so a client that logs ``message`` logs what it would log in
production. The seeding API raises the same errors, so a seeding mistake reads like the answer
the server would have given.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import msgspec

from ..http.messages import Headers, Response

JSON = "application/json"

_REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    406: "NotAcceptable",
    409: "Conflict",
    410: "Expired",
    413: "RequestEntityTooLarge",
    415: "UnsupportedMediaType",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}


class StatusError(Exception):
    """A failure the stand-in reports as a Kubernetes ``Status`` with HTTP status ``code``."""

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        details: Mapping[str, Any] | None = None,
        *,
        metadata: Mapping[str, Any] | None = None,
        headers: Headers = (),
    ) -> None:
        super().__init__(f"{code} {reason}: {message}")
        self.code = code
        self.reason = reason
        self.message = message
        self.details = dict(details) if details else None
        self.metadata = dict(metadata) if metadata else {}
        self.headers = headers

    def status(self) -> dict[str, Any]:
        """The ``Status`` object, keys in Go's order."""
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": dict(self.metadata),
            "status": "Failure",
            "message": self.message,
        }
        if self.reason:
            body["reason"] = self.reason
        if self.details is not None:
            body["details"] = self.details
        body["code"] = self.code
        return body

    def response(self) -> Response:
        return Response(self.code, encode(self.status()), JSON, self.headers)


def encode(value: object) -> bytes:
    """JSON as the API server writes it: compact, one trailing newline (Go's json.Encoder)."""
    return msgspec.json.encode(value) + b"\n"


def _details(name: str, group: str, kind: str) -> dict[str, Any]:
    details: dict[str, Any] = {"name": name}
    if group:
        details["group"] = group
    details["kind"] = kind
    return details


def _qualified(resource: str, group: str) -> str:
    return f"{resource}.{group}" if group else resource


def not_found(resource: str, name: str, *, group: str = "") -> StatusError:
    """``nodes "n1" not found``; ``resource`` is the plural (``nodes``, ``leases``)."""
    message = f'{_qualified(resource, group)} "{name}" not found'
    return StatusError(404, "NotFound", message, _details(name, group, resource))


def already_exists(resource: str, name: str, *, group: str = "") -> StatusError:
    message = f'{_qualified(resource, group)} "{name}" already exists'
    return StatusError(409, "AlreadyExists", message, _details(name, group, resource))


def conflict(resource: str, name: str, *, group: str = "") -> StatusError:
    """The optimistic-concurrency failure: the object changed since the client read it."""
    message = (
        f'Operation cannot be fulfilled on {_qualified(resource, group)} "{name}": the object has'
        " been modified; please apply your changes to the latest version and try again"
    )
    return StatusError(409, "Conflict", message, _details(name, group, resource))


def invalid(
    kind: str, name: str, causes: Sequence[tuple[str, str, str]], *, group: str = ""
) -> StatusError:
    """422 ``Invalid``. ``kind`` is singular (``Lease``); causes are (type, field, detail).

    ``type`` is Go's field error type: ``Invalid value: 0``, ``Forbidden``, ``Required value``...
    """
    qualified = f"{kind}.{group}" if group else kind
    parts = [
        f"{field}: {error_type}: {detail}" if detail else f"{field}: {error_type}"
        for error_type, field, detail in causes
    ]
    joined = parts[0] if len(parts) == 1 else "[" + ", ".join(parts) + "]"
    details = _details(name, group, kind)
    details["causes"] = [
        {
            "reason": _cause_reason(error_type),
            "message": f"{error_type}: {detail}" if detail else error_type,
            "field": field,
        }
        for error_type, field, detail in causes
    ]
    return StatusError(422, "Invalid", f'{qualified} "{name}" is invalid: {joined}', details)


def _cause_reason(error_type: str) -> str:
    if error_type.startswith("Invalid value"):
        return "FieldValueInvalid"
    if error_type.startswith("Required value"):
        return "FieldValueRequired"
    if error_type.startswith("Forbidden"):
        return "FieldValueForbidden"
    return "FieldValueInvalid"


def expired(message: str, *, continue_token: str = "") -> StatusError:
    """410 ``Expired``: a resourceVersion or continue token older than the retained history."""
    metadata = {"continue": continue_token} if continue_token else None
    return StatusError(410, "Expired", message, metadata=metadata)


def bad_request(message: str) -> StatusError:
    return StatusError(400, "BadRequest", message)


def unauthorized() -> StatusError:
    return StatusError(401, "Unauthorized", "Unauthorized")


def route_not_found() -> StatusError:
    """What the server answers for a path it does not serve."""
    return StatusError(404, "NotFound", "the server could not find the requested resource", {})


def method_not_allowed() -> StatusError:
    message = "the server does not allow this method on the requested resource"
    return StatusError(405, "MethodNotAllowed", message, {})


def unsupported_media_type() -> StatusError:
    message = (
        "the body of the request was in an unknown format - accepted media types include:"
        " application/json, application/yaml, application/vnd.kubernetes.protobuf"
    )
    return StatusError(415, "UnsupportedMediaType", message)


def internal(message: str) -> StatusError:
    return StatusError(
        500,
        "InternalError",
        f"Internal error occurred: {message}",
        {"causes": [{"message": message}]},
    )


def for_code(code: int, message: str | None = None) -> StatusError:
    """A failure by status code, worded as the server words it; used by fault injection.

    429 carries ``details.retryAfterSeconds`` and a ``Retry-After`` header, as API Priority
    and Fairness sends them.
    """
    if code == 429:
        text = message or "Too many requests, please try again later."
        return StatusError(
            429, "TooManyRequests", text, {"retryAfterSeconds": 1}, headers=(("Retry-After", "1"),)
        )
    if code == 500:
        return internal(message or "fault injected")
    return StatusError(code, _REASONS.get(code, ""), message or "fault injected")
