"""The JSON Netmaker speaks, as msgspec structs holding only the fields kaput-not uses.

Unknown fields are ignored, so a newer server that adds fields keeps working. Decoding is strict
about what we use: every field we read must be there (the contract suite shows the real server
always sends them), with its type; a missing one fails the decode, which the client reports as a
`BadResponse`. Filling a default would be worse than failing: an egress without `nodes` or
`network` would look like an orphan, and its slot empty, so a pass would create a duplicate.
Decoders are built once here and reused. Conversions to and from the core types live here too, so
`client.py` never touches a JSON key.

Shapes, from docs/netmaker-api.md:
- `GET /api/hosts`, `/api/nodes`, `/api/networks`: bare JSON arrays, no envelope.
- Everything else: the envelope `{"Code", "Message", "Response"}`, capitalised (the swagger file
  says lowercase; it is wrong).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

import msgspec

from kaput_not.core.model import Egress, EgressSpec, Host, NmNode, RoutedBy
from kaput_not.decoding import Decoder

T = TypeVar("T")


class Envelope(msgspec.Struct, Generic[T], rename="pascal", kw_only=True):
    """`{"Code": 200, "Message": "...", "Response": <T>}`; Netmaker's Go struct has no json tags."""

    code: int | None = None
    message: str = ""
    response: T


class Status(msgspec.Struct, rename="pascal"):
    """The envelope without its payload: all we read from an error answer."""

    code: int | None = None
    message: str = ""


class LoginRequest(msgspec.Struct):
    username: str
    password: str

    def __repr__(self) -> str:
        return f"LoginRequest(username={self.username!r}, password=<hidden>)"


class LoginResponse(msgspec.Struct, rename="pascal"):
    """`Response` of a login. An MFA account gets a pre-auth token instead, so no `AuthToken`."""

    user_name: str = ""
    auth_token: str | None = None

    def __repr__(self) -> str:
        token = "<hidden>" if self.auth_token else None
        return f"LoginResponse(user_name={self.user_name!r}, auth_token={token})"


class ApiHost(msgspec.Struct):
    id: str
    name: str
    # null for a host that never joined a network, [] once all its nodes are gone.
    nodes: list[str] | None


class ApiNode(msgspec.Struct):
    id: str
    hostid: str
    network: str
    pendingdelete: bool
    is_static: bool


class ApiNetwork(msgspec.Struct):
    netid: str
    addressrange: str = ""
    addressrange6: str = ""


class EgressWire(msgspec.Struct):
    """An egress as GET/POST/PUT /api/v1/egress return it (`mode` ignored: see
    docs/netmaker-api.md section 5)."""

    id: str
    network: str
    name: str
    description: str
    # Metrics are JSON integers; a NULL column reads back as {}, null is tolerated all the same.
    nodes: dict[str, int] | None
    range: str
    nat: bool
    status: bool


class EgressReq(msgspec.Struct):
    """The body of POST and PUT /api/v1/egress: the full state, since PUT replaces everything.

    `id` is ignored on POST and must name the egress on PUT. `tags` stays empty (a non-empty map
    makes Netmaker drop `nodes`); `domain` empty and `is_internet_gateway` false keep `range`.
    """

    id: str
    name: str
    network: str
    description: str
    nodes: dict[str, int]
    tags: dict[str, int]
    range: str
    domain: str
    nat: bool
    mode: str
    status: bool
    is_internet_gateway: bool


@dataclass(frozen=True, slots=True)
class Shape(Generic[T]):
    """What a successful answer holds: its payload decoder, and whether that sits in an envelope."""

    decoder: Decoder[T]
    enveloped: bool


ENVELOPE = Decoder(Envelope[msgspec.Raw])
STATUS = Decoder(Status)


@dataclass(frozen=True, slots=True)
class ListShape(Generic[T]):
    """A list answer, read in two steps: the array as raw items (cut out of the body as it
    arrives: netmaker/list_reader.py), then each item on its own as it is converted. Decoding
    every item first held all of them next to their converted copies at a refresh's peak."""

    items: Shape[list[msgspec.Raw]]
    item: Decoder[T]


#: A JSON array as its items, undecoded.
RAW_ITEMS = Decoder(list[msgspec.Raw])

HOSTS = ListShape(Shape(RAW_ITEMS, enveloped=False), Decoder(ApiHost))
NODES = ListShape(Shape(RAW_ITEMS, enveloped=False), Decoder(ApiNode))
NETWORKS = Shape(Decoder(list[ApiNetwork]), enveloped=False)
EGRESS_LIST = ListShape(Shape(RAW_ITEMS, enveloped=True), Decoder(EgressWire))
EGRESS = Shape(Decoder(EgressWire), enveloped=True)
LOGIN = Shape(Decoder(LoginResponse), enveloped=True)
#: An envelope whose `Response` we do not read (DELETE answers `null`).
ANYTHING = Shape(Decoder(msgspec.Raw), enveloped=True)


# Ids, host and network names recur across the three lists (a node id in its host, its node and
# each of its rules) and in every re-read: interned, each is kept once (megabytes at 10,000 hosts).
_intern = sys.intern


def host_from_wire(host: ApiHost) -> Host:
    return Host(
        id=_intern(host.id),
        name=_intern(host.name),
        node_ids=tuple(_intern(node_id) for node_id in host.nodes or ()),
    )


def node_from_wire(node: ApiNode) -> NmNode:
    return NmNode(
        id=_intern(node.id),
        host_id=_intern(node.hostid),
        network=_intern(node.network),
        pending_delete=node.pendingdelete,
        is_static=node.is_static,
    )


def egress_from_wire(egress: EgressWire) -> Egress:
    # Not the id, name and range: each is one rule's own, and 60,000 more interned strings
    # grew the interpreter's table by more than sharing them saved. The description is one of
    # a handful: interned, 20,000 rules share them.
    return Egress(
        id=egress.id,
        network=_intern(egress.network),
        name=egress.name,
        description=_intern(egress.description),
        range=egress.range,
        nat=egress.nat,
        status=egress.status,
        nodes=_routing(egress.nodes or {}),
    )


def _routing(nodes: dict[str, int]) -> Mapping[str, int]:
    if len(nodes) == 1:
        [(node_id, metric)] = nodes.items()
        return RoutedBy(_intern(node_id), metric)
    return {_intern(node_id): metric for node_id, metric in nodes.items()}


def egress_request(spec: EgressSpec, egress_id: str = "") -> EgressReq:
    """The POST (no id) or PUT (`egress_id`) body that sets an egress to `spec`."""
    return EgressReq(
        id=egress_id,
        name=spec.name,
        network=spec.network,
        description=spec.description,
        nodes={node: int(metric) for node, metric in spec.nodes.items()},
        tags={},
        range=spec.range,
        domain="",
        nat=spec.nat,
        mode="",
        status=spec.status,
        is_internet_gateway=False,
    )
