"""Netmaker's response shapes: the capitalised envelopes, bare JSON, and gorilla's defaults.

- Success envelope: ``{"Code":200,"Message":...,"Response":...}`` written by
  ``json.Encoder``, so the body ends with a newline.
- Error envelope: same keys, HTTP status = ``Code``, written by ``json.Marshal``: no newline.
- Bare JSON (hosts, nodes, networks, ...): ``json.NewEncoder(w).Encode(v)``, newline included;
  handlers that never set the header send it as Go sniffs it: ``text/plain; charset=utf-8``.
- 404 is Go's ``http.NotFound`` text; 405 has an empty body (gorilla/mux defaults).

JSON is compact and escapes ``<``, ``>``, ``&``, U+2028 and U+2029 as Go's encoder does, so a
client that string-matches bodies sees the same bytes. Go sorts map keys; callers pass dicts
already in the order Go would print them.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from typing import TypeVar

import msgspec

from ..http.messages import Response, StreamingResponse

T = TypeVar("T")

JSON = "application/json"
TEXT = "text/plain; charset=utf-8"

_GO_ESCAPES = {
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}


_GO_ESCAPES_UTF8 = {char.encode(): escaped.encode() for char, escaped in _GO_ESCAPES.items()}


def go_json(value: object) -> bytes:
    """Compact JSON as Go's ``json.Marshal`` prints it (no trailing newline).

    msgspec, not ``json``: a list of 10,000 hosts encodes in a fifth of the time, so benchmarks
    measure the controller rather than this stand-in.
    """
    data = msgspec.json.encode(value)
    # These characters only occur inside JSON strings, so replacing them keeps the JSON valid.
    for raw, escaped in _GO_ESCAPES_UTF8.items():
        if raw in data:
            data = data.replace(raw, escaped)
    return data


def success(message: str, payload: object = None) -> Response:
    """``logic.ReturnSuccessResponse[WithJson]``: HTTP 200, envelope, trailing newline."""
    body = go_json({"Code": 200, "Message": message, "Response": payload}) + b"\n"
    return Response(200, body, JSON)


def error(status: int, message: str) -> Response:
    """``logic.ReturnErrorResponse``: HTTP ``status``, ``Response`` null, no newline."""
    return Response(status, go_json({"Code": status, "Message": message, "Response": None}), JSON)


def bare(payload: object, *, newline: bool = True, sniffed: bool = False) -> Response:
    """HTTP 200 with a bare JSON value; ``json.NewEncoder(w).Encode`` adds the newline.

    ``sniffed``: the handler set no Content-Type, so Go sniffed ``text/plain`` from the JSON
    (GET /api/networks, the enrollment keys, host registration on the real server).
    """
    body = go_json(payload) + (b"\n" if newline else b"")
    return Response(200, body, TEXT if sniffed else JSON)


#: Records rendered between two looks at other requests when a list is sent in pieces: small,
#: so that writes do not wait several slices to be read during a refresh.
LIST_SLICE = 100


def listing(
    records: Sequence[T],
    render: Callable[[T], object],
    lock: threading.RLock,
    *,
    message: str | None = None,
) -> Response | StreamingResponse:
    """A JSON array of `records` as `bare` (or, with `message`, as `success`) writes it.

    Up to `LIST_SLICE` records: one `Response`. Longer lists go out as Go sends a big body
    (chunked, no Content-Length), rendered a slice at a time under `lock`, other requests
    served between slices: the real server encodes a list outside its database lock, so a
    big host list never holds its writes back, where rendering it in one piece here did. Each
    record is rendered as it stands when its slice is (rows read as a cursor reads them); the
    bytes are those of the one-piece answer.
    """
    if len(records) <= LIST_SLICE:
        payload = [render(record) for record in records]
        return bare(payload) if message is None else success(message, payload)
    if message is None:
        head, tail = b"[", b"]\n"
    else:
        head, tail = b'{"Code":200,"Message":' + go_json(message) + b',"Response":[', b"]}\n"
    return StreamingResponse(200, _pieces(list(records), render, lock, head, tail), JSON)


async def _pieces(
    records: list[T], render: Callable[[T], object], lock: threading.RLock, head: bytes, tail: bytes
) -> AsyncIterator[bytes]:
    yield head
    for start in range(0, len(records), LIST_SLICE):
        await asyncio.sleep(0)  # let the requests that arrived meanwhile through
        with lock:
            piece = go_json([render(record) for record in records[start : start + LIST_SLICE]])
        yield (b"," if start else b"") + piece[1:-1]
    yield tail


async def collected(response: Response | StreamingResponse) -> Response:
    """`response` in one piece (for a fault that rewrites or cuts the body)."""
    if isinstance(response, Response):
        return response
    body = b"".join([chunk async for chunk in response.chunks])
    return Response(response.status, body, response.content_type, response.headers)


def text(body: str, status: int = 200) -> Response:
    """A plain-text answer; Go sniffs ``text/plain; charset=utf-8`` for it."""
    return Response(status, body.encode("utf-8"), TEXT)


def empty_json() -> Response:
    """HTTP 200, ``application/json``, no body: handlers that set the header and write nothing."""
    return Response(200, b"", JSON)


def not_found() -> Response:
    """gorilla/mux's default for an unknown path: Go's ``http.NotFound``."""
    return text("404 page not found\n", 404)


def method_not_allowed() -> Response:
    """gorilla/mux's default for a known path with another method: 405, empty body."""
    return Response(405)
