"""Egress resources (docs/netmaker-api.md section 5): the table, CE's validation, the quirks.

Quirks reproduced on purpose, because our client must survive them:

- ``range`` is stored normalised: ``10.0.0.1/24`` becomes ``10.0.0.0/24``; a bare IP is a
  400 ``invalid CIDR address: <x>``.
- Create ignores ``status`` (always true) and the request ``id`` (a new UUID is minted), and shows
  ``mode: "direct_nat"`` even with ``nat: false`` (gorm's column default); a PUT with
  ``nat: false`` stores ``mode: ""``.
- CE allows one routing node (``can only set one routing node on CE``); an unknown node id is
  ``invalid routing node no result found``; a node from another network is accepted.
- PUT replaces every field (``nodes`` too), validates ``network`` but never moves the egress, and
  **with an empty id overwrites the first egress in the table** (lowest id, any network).
- Unknown ids are 400 ``record not found``, on PUT and DELETE alike.
- Purging a node strips its id from the ``nodes`` of every egress in the node's network and keeps
  the egress, even when ``nodes`` becomes ``{}`` (docs/netmaker-api.md section 6).

Not modelled: EE (several routing nodes, tag routing beyond storing ``tags``), virtual NAT ranges,
DNS answers for domain egress, ACL policy clean-up on delete, MQ peer updates, and the goroutine
delay of the node purge (it is immediate here; a client must still not rely on that).
"""

from __future__ import annotations

import ipaddress
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from .errors import NO_RESULT_FOUND, RECORD_NOT_FOUND, bad_request
from .model import rfc3339

# Keys of an egress as the API prints it, in print order.
EGRESS_FIELDS = (
    "id",
    "name",
    "network",
    "description",
    "nodes",
    "tags",
    "range",
    "mode",
    "virtual_range",
    "domain",
    "domain_ans",
    "nat",
    "status",
    "created_by",
    "created_at",
    "updated_at",
)
_FQDN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}\.?$", re.I)


@dataclass
class EgressRequest:
    """``models.EgressReq`` after decoding, zero values for what the client left out."""

    id: str = ""
    name: str = ""
    network: str = ""
    description: str = ""
    nodes: dict[str, int] = field(default_factory=dict)
    tags: dict[str, int] = field(default_factory=dict)
    range: str = ""
    domain: str = ""
    nat: bool = False
    mode: str = ""
    status: bool = False
    is_internet_gateway: bool = False


@dataclass
class EgressRecord:
    id: str
    name: str
    network: str
    description: str
    nodes: dict[str, int]
    tags: dict[str, int]
    range: str
    mode: str
    virtual_range: str
    domain: str
    domain_ans: list[str]
    nat: bool
    status: bool
    created_by: str
    created_at: str
    updated_at: str

    def to_api(self) -> dict[str, object]:
        """A JSON-shaped copy; Go prints map keys sorted."""
        shaped: dict[str, object] = {name: getattr(self, name) for name in EGRESS_FIELDS}
        shaped["nodes"] = dict(sorted(self.nodes.items()))
        shaped["tags"] = dict(sorted(self.tags.items()))
        shaped["domain_ans"] = list(self.domain_ans)
        return shaped


def normalize_cidr(raw: str) -> str:
    """Netmaker's ``NormalizeCIDR``: Go ``net.ParseCIDR``, then the masked network, printed by Go.

    Python would take a bare IP as a /32 and a dotted netmask as a prefix; Go takes neither.
    """
    address, slash, bits = raw.partition("/")
    if not slash or not bits.isdigit() or not address:
        raise bad_request(f"invalid CIDR address: {raw}")
    try:
        return ipaddress.ip_network(raw, strict=False).compressed
    except ValueError as exc:
        raise bad_request(f"invalid CIDR address: {raw}") from exc


def _nat_mode(request: EgressRequest, *, creating: bool) -> str:
    if request.nat:
        return request.mode if request.mode in ("direct_nat", "virtual_nat") else "direct_nat"
    # Validation clears the mode; on insert gorm then fills the column default back in.
    return "direct_nat" if creating else ""


class EgressTable:
    """Every egress, indexed by id and by network; callers hold the state lock."""

    def __init__(
        self,
        *,
        clock: Callable[[], float],
        network_exists: Callable[[str], bool],
        node_exists: Callable[[str], bool],
    ) -> None:
        self._clock = clock
        self._network_exists = network_exists
        self._node_exists = node_exists
        self._by_id: dict[str, EgressRecord] = {}
        self._by_network: dict[str, dict[str, EgressRecord]] = {}

    def records(self, network: str | None = None) -> list[EgressRecord]:
        """Egresses of one network (or all), oldest first; Netmaker defines no order."""
        if network is None:
            return list(self._by_id.values())
        return list(self._by_network.get(network, {}).values())

    def get(self, egress_id: str) -> EgressRecord | None:
        return self._by_id.get(egress_id)

    def create(self, request: EgressRequest, *, caller: str) -> EgressRecord:
        """``POST /api/v1/egress`` after decoding, in the server's order of checks."""
        cidr = self._resolve_range(request)
        self._check_network(request.network)
        nodes = {} if request.tags else dict(request.nodes)
        self._validate_routing(nodes)
        now = rfc3339(self._clock())
        record = EgressRecord(
            id=str(uuid.uuid4()),
            name=request.name,
            network=request.network,
            description=request.description,
            nodes=nodes,
            tags=dict(request.tags),
            range=cidr,
            mode=_nat_mode(request, creating=True),
            virtual_range="",
            domain=request.domain,
            domain_ans=[],
            nat=request.nat,
            status=True,
            created_by=caller,
            created_at=now,
            updated_at=now,
        )
        self.insert(record)
        return record

    def update(self, request: EgressRequest) -> EgressRecord:
        """``PUT /api/v1/egress`` after decoding: full replacement of the loaded egress."""
        self._check_network(request.network)
        cidr = self._resolve_range(request)
        record = self._load(request.id)
        nodes = {} if request.tags else dict(request.nodes)
        self._validate_routing(nodes)
        record.name = request.name
        record.description = request.description
        record.range = cidr
        record.domain = request.domain
        record.nat = request.nat
        record.mode = _nat_mode(request, creating=False)
        record.status = request.status
        record.nodes = nodes
        record.tags = dict(request.tags)
        record.updated_at = rfc3339(self._clock())
        return record

    def delete(self, egress_id: str) -> None:
        """``DELETE /api/v1/egress?id=``; the caller has checked that ``id`` is present."""
        record = self._by_id.get(egress_id)
        if record is None:
            raise bad_request(RECORD_NOT_FOUND)
        self.remove(record.id)

    def strip_node(self, network: str, node_id: str) -> None:
        """The purge clean-up (5): drop ``node_id`` from the routers of ``network``'s egresses."""
        for record in self._by_network.get(network, {}).values():
            record.nodes.pop(node_id, None)

    def insert(self, record: EgressRecord) -> None:
        if record.id in self._by_id:
            raise bad_request(f"egress {record.id} already exists")
        self._by_id[record.id] = record
        self._by_network.setdefault(record.network, {})[record.id] = record

    def remove(self, egress_id: str) -> None:
        record = self._by_id.pop(egress_id)
        self._by_network[record.network].pop(egress_id)

    def replace_fields(self, egress_id: str, fields: Mapping[str, object]) -> EgressRecord:
        """Set fields verbatim, as a hand edit in the dashboard or the database would."""
        record = self._by_id.get(egress_id)
        if record is None:
            raise KeyError(egress_id)
        unknown = sorted((set(fields) - set(EGRESS_FIELDS)) | ({"id"} & set(fields)))
        if unknown:
            raise ValueError(f"cannot set egress fields {unknown}")
        old_network = record.network
        for name, value in fields.items():
            setattr(record, name, _copied(value))
        if "updated_at" not in fields:
            record.updated_at = rfc3339(self._clock())
        if record.network != old_network:
            self._by_network[old_network].pop(egress_id)
            self._by_network.setdefault(record.network, {})[egress_id] = record
        return record

    def _resolve_range(self, request: EgressRequest) -> str:
        cidr = request.range
        if not request.is_internet_gateway and cidr:
            cidr = normalize_cidr(cidr)
        if request.domain:
            if not _FQDN.match(request.domain):
                raise bad_request("bad domain name")
            cidr = ""
        if request.is_internet_gateway:
            cidr = "*"
        return cidr

    def _check_network(self, network: str) -> None:
        if not network:
            raise bad_request("network identifiers not provided")
        if not self._network_exists(network):
            raise bad_request(RECORD_NOT_FOUND)

    def _validate_routing(self, nodes: Mapping[str, int]) -> None:
        if len(nodes) > 1:
            raise bad_request("can only set one routing node on CE")
        for node_id in nodes:
            if not self._node_exists(node_id):
                raise bad_request(f"invalid routing node {NO_RESULT_FOUND}")

    def _load(self, egress_id: str) -> EgressRecord:
        if not egress_id:
            # gorm First() without a primary key: no WHERE clause, the lowest id in the table.
            if not self._by_id:
                raise bad_request(RECORD_NOT_FOUND)
            return self._by_id[min(self._by_id)]
        record = self._by_id.get(egress_id)
        if record is None:
            raise bad_request(RECORD_NOT_FOUND)
        return record


def _copied(value: object) -> object:
    if isinstance(value, dict):
        return dict(value)
    if isinstance(value, list):
        return list(value)
    return value
