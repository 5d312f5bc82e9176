"""``GET /api/v1/nodes``: the node list, whole or in pages, from a consistent snapshot.

The real server's rules for the parameters a client sends:

- no ``resourceVersion``: the newest state (a quorum read). With ``limit=N`` it answers at most
  N items, sorted by name, and ``metadata.continue`` plus ``metadata.remainingItemCount`` when
  more remain. ``metadata.resourceVersion`` is the global resourceVersion of that read, which
  may be newer than every item.
- ``continue=T``: the next page *of the same snapshot*: items and ``metadata.resourceVersion``
  are as of the first page, however the nodes changed since. A token whose snapshot is older
  than the retained history answers 410 ``Expired``, whose ``metadata.continue`` holds a token
  that continues from the newest state instead (an inconsistent list, if the client wants it).
  ``continue`` together with ``resourceVersion`` is a 400.
- ``resourceVersion=0``: served from the watch cache, ``limit`` ignored: every item, no token.
- ``resourceVersion=R``: with ``limit``, pages of the snapshot at exactly R (410 if R is older
  than the history); without, the newest state. An R newer than the cluster is a 504
  "Too large resource version".

Tokens are what the server makes: unpadded URL-safe base64 of
``{"v":"meta.k8s.io/v1","rv":<snapshot>,"start":"<last name>\\u0000"}``. Clients must treat them
as opaque.

Not modelled: label and field selectors (answered with a 400, so a client relying on them fails
loudly instead of receiving unfiltered nodes), ``resourceVersionMatch``, table output, protobuf.
"""

from __future__ import annotations

import base64
import bisect
import json
from collections.abc import Callable, Mapping

import msgspec

from . import status
from .nodes import NodeRecord
from .state import KubeState

_TOKEN_VERSION = "meta.k8s.io/v1"
_INCONSISTENT = -1  # the token of an Expired answer: continue from the newest state
_CONTINUE_EXPIRED = (
    "The provided continue parameter is too old to display a consistent list result. You can"
    " start a new list without the continue parameter, or use the continue token in this"
    " response to retrieve the remainder of the results. Continuing with the provided token"
    " results in an inconsistent list - objects that were created, modified, or deleted between"
    " the time the first chunk was returned and now may show up in the list."
)


def list_nodes(
    state: KubeState,
    *,
    limit: int,
    token: str,
    resource_version: str,
    selector: Callable[[Mapping[str, str]], bool] | None = None,
) -> bytes:
    """The NodeList body, of the nodes `selector` takes (None: all); the caller holds the
    state lock."""
    if token and resource_version:
        raise status.bad_request("specifying resource version is not allowed when using continue")
    current = state.current
    start = ""
    if token:
        rv, start = decode_token(token)
        if rv == _INCONSISTENT:
            rv = current
        elif rv < state.history.horizon:
            raise status.expired(
                _CONTINUE_EXPIRED, continue_token=encode_token(_INCONSISTENT, start)
            )
        elif rv > current:
            raise status.bad_request("invalid continue token: the resourceVersion is in the future")
    elif resource_version in ("", "0"):
        rv = current
        if resource_version == "0":
            limit = 0
    else:
        rv = _exact(state, resource_version, current)
        if limit <= 0:
            rv = current
    nodes = state.nodes_at(rv)
    names = state.sorted_names() if rv == current else sorted(nodes)
    if selector is not None:
        names = [name for name in names if selector(nodes[name].labels)]
    return _page(nodes, names, rv=rv, start=start, limit=limit)


def _exact(state: KubeState, resource_version: str, current: int) -> int:
    if not resource_version.isdigit():
        raise status.bad_request(f"invalid resource version: {resource_version!r}")
    rv = int(resource_version)
    if rv < state.history.horizon:
        raise status.expired("The resourceVersion for the provided list is too old.")
    if rv > current:
        raise status.StatusError(
            504,
            "Timeout",
            f"Timeout: Too large resource version: {rv}, current: {current}",
            {
                "causes": [
                    {"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}
                ],
                "retryAfterSeconds": 1,
            },
        )
    return rv


def _page(
    nodes: Mapping[str, NodeRecord], names: list[str], *, rv: int, start: str, limit: int
) -> bytes:
    first = bisect.bisect_left(names, start)
    end = len(names) if limit <= 0 else min(len(names), first + limit)
    page = names[first:end]
    meta: dict[str, object] = {"resourceVersion": str(rv)}
    if end < len(names):
        meta["continue"] = encode_token(rv, page[-1] + "\x00")  # the smallest name after it
        meta["remainingItemCount"] = len(names) - end
    items = b",".join(nodes[name].body for name in page)
    return (
        b'{"kind":"NodeList","apiVersion":"v1","metadata":'
        + msgspec.json.encode(meta)
        + b',"items":['
        + items
        + b"]}\n"
    )


def encode_token(rv: int, start: str) -> str:
    """A continue token for the items from name ``start`` on, in the snapshot at ``rv``."""
    raw = json.dumps({"v": _TOKEN_VERSION, "rv": rv, "start": start}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).rstrip(b"=").decode()


def decode_token(token: str) -> tuple[int, str]:
    """(snapshot resourceVersion, first name to return) from a continue token."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        fields = json.loads(raw)
    except ValueError:
        raise _invalid_token("continue key is not valid") from None
    if not isinstance(fields, dict) or fields.get("v") != _TOKEN_VERSION:
        raise _invalid_token(
            "continue key is not valid: server does not recognize this encoded key"
        )
    rv, start = fields.get("rv"), fields.get("start")
    if not isinstance(rv, int) or isinstance(rv, bool) or rv == 0 or rv < _INCONSISTENT:
        raise _invalid_token(
            "continue key is not valid: incorrect encoded start resourceVersion"
            f" (version {_TOKEN_VERSION})"
        )
    if not isinstance(start, str) or not start:
        raise _invalid_token("continue key is not valid: encoded start key empty")
    return rv, start


def _invalid_token(reason: str) -> status.StatusError:
    return status.bad_request(f"invalid continue token: {reason}")
