"""The routes the stand-in serves, and the route keys its request log and faults use.

A route key is ``METHOD /template``, e.g. ``PUT /apis/coordination.k8s.io/v1/namespaces/
{namespace}/leases/{name}``, so names and query strings do not split a tally. A node watch is
the list route with ``watch`` set, keyed apart as ``GET /api/v1/nodes (watch)`` so that a fault
or a count can aim at watches or at lists. A path no route matches keys on itself.

Matching is on the decoded path, one non-empty segment per ``{variable}``
(:mod:`kaput_not_standins.http.paths`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from ..http import paths
from ..http.messages import Request

NODES = "/api/v1/nodes"
NODE = "/api/v1/nodes/{name}"
ALL_LEASES = "/apis/coordination.k8s.io/v1/leases"
LEASES = "/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases"
LEASE = "/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/{name}"
TEMPLATES = (NODES, NODE, ALL_LEASES, LEASES, LEASE)

LIST_NODES = f"GET {NODES}"
WATCH_NODES = f"GET {NODES} (watch)"
GET_NODE = f"GET {NODE}"
LIST_ALL_LEASES = f"GET {ALL_LEASES}"
LIST_LEASES = f"GET {LEASES}"
CREATE_LEASE = f"POST {LEASES}"
GET_LEASE = f"GET {LEASE}"
UPDATE_LEASE = f"PUT {LEASE}"

_TRUE = frozenset({"1", "t", "T", "true", "TRUE", "True"})  # Go's strconv.ParseBool
_FALSE = frozenset({"0", "f", "F", "false", "FALSE", "False"})


@dataclass(frozen=True)
class Resolved:
    key: str  # the route key
    template: str | None  # None when no route matches the path
    params: Mapping[str, str] = field(default_factory=dict)


def resolve(request: Request) -> Resolved:
    segments = paths.segments(request.path)
    for template in TEMPLATES:
        params = paths.bind(template, segments)
        if params is None:
            continue
        key = f"{request.method} {template}"
        if key == LIST_NODES and parse_bool(request.query_value("watch")):
            key = WATCH_NODES
        return Resolved(key, template, params)
    return Resolved(f"{request.method} {request.path}", None)


def parse_bool(value: str) -> bool | None:
    """Go's ``strconv.ParseBool``; False for ``""``, None when it is not a boolean."""
    if value in _TRUE:
        return True
    if value in _FALSE or value == "":
        return False
    return None
