"""The emulated server's in-memory data, its seeding API, and the rules for networks, hosts, nodes.

One object owns every table (networks, hosts, nodes, static clients, users, enrollment keys,
egresses) and the settings a real server keeps in its database (the JWT secret and lifetimes).
The HTTP layer and Python callers use the same methods, so a seeded host looks exactly like a
registered one. Seeding is O(1) per host and node (addresses come from a per-network pool), so
thousands of hosts take milliseconds.

Deleting follows docs/netmaker-api.md section 6: a purge (forced delete, host removal) drops
the node, frees its address, strips its id from the ``nodes`` of every egress in its network
(keeping the egress), and deletes the static clients of an ingress gateway; a non-forced delete
only sets ``pendingdelete``. The real server purges egress references in a goroutine; here it
happens before the call returns, and nodes of a registration are created synchronously too,
where the real server creates them asynchronously (clients must poll in both cases).

Every public method takes a re-entrant lock, so a test thread may seed while the emulator serves
requests on its own thread; the HTTP layer holds the same lock for a whole request.

Not modelled: EE roles and network permissions, ACL policies and their side effects, MQ and
zombie handling (a pending delete is never completed by the server), host-level settings,
network deletion and updates, gateways other than the static-client trick.
"""

from __future__ import annotations

import ipaddress
import re
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Concatenate, ParamSpec, TypeVar

from .egress import EgressRecord, EgressTable
from .enrollment import EnrollmentKeys
from .errors import NO_RESULT_FOUND, RECORD_NOT_FOUND, bad_request, internal
from .model import (
    AddressPool,
    HostRecord,
    NetworkRecord,
    NodeRecord,
    StaticClient,
    UserRecord,
    rfc3339,
)

_P = ParamSpec("_P")
_R = TypeVar("_R")
_NETID = re.compile(r"^[a-z0-9_-]{1,32}$")
_TOO_SMALL = {4: (31, 32), 6: (127, 128)}


def _locked(
    method: Callable[Concatenate[NetmakerState, _P], _R],
) -> Callable[Concatenate[NetmakerState, _P], _R]:
    def wrapper(self: NetmakerState, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        with self.lock:
            return method(self, *args, **kwargs)

    wrapper.__doc__ = method.__doc__
    wrapper.__name__ = method.__name__
    return wrapper


@dataclass
class Settings:
    """Server settings seeded once from ``JWT_VALIDITY_DURATION`` (seconds // 60), in minutes."""

    jwt_validity_minutes: int = 720  # any X-Application-Name but netclient/netmaker-desktop
    jwt_validity_minutes_clients: int = 720  # netclient, netmaker-desktop, and a missing header


def _auto_ranges() -> Iterator[str]:
    """Default network ranges: CGNAT /16s first, then 10.x and 172.16-31 /16s."""
    for second in range(64, 128):
        yield f"100.{second}.0.0/16"
    for second in range(256):
        yield f"10.{second}.0.0/16"
    for second in range(16, 32):
        yield f"172.{second}.0.0/16"


class NetmakerState:
    def __init__(self, *, clock: Callable[[], float] = time.time, jwt_validity_minutes: int = 720):
        self.lock = threading.RLock()
        self.clock = clock
        self.settings = Settings(jwt_validity_minutes, jwt_validity_minutes)
        self.server = "127.0.0.1"  # the API host named in enrollment tokens and JWTs
        self.jwt_secret = secrets.token_urlsafe(48)[:64].encode("ascii")
        self.keys = EnrollmentKeys(clock=clock)
        self.egress = EgressTable(
            clock=clock,
            network_exists=lambda netid: netid in self._networks,
            node_exists=lambda node_id: node_id in self._nodes,
        )
        self._networks: dict[str, NetworkRecord] = {}
        self._hosts: dict[str, HostRecord] = {}
        self._nodes: dict[str, NodeRecord] = {}
        self._static_clients: dict[str, StaticClient] = {}
        self._users: dict[str, UserRecord] = {}
        self._ranges = _auto_ranges()

    # -- networks ---------------------------------------------------------------------------

    @_locked
    def add_network(
        self, netid: str, addressrange: str | None = None, *, addressrange6: str = ""
    ) -> NetworkRecord:
        """Create a network as ``POST /api/networks`` does, with its default enrollment key.

        ``addressrange=None`` picks an unused IPv4 /16 (unless only ``addressrange6`` is given).
        """
        if not _NETID.match(netid):
            raise bad_request("invalid network name: use 1 to 32 characters of [a-z0-9-_]")
        if netid in self._networks:
            raise bad_request("network already exists")
        if addressrange is None:
            addressrange = "" if addressrange6 else self._free_range()
        if not addressrange and not addressrange6:
            raise bad_request("IPv4 or IPv6 CIDR required")
        v4 = self._checked_range(addressrange, 4)
        v6 = self._checked_range(addressrange6, 6)
        network = NetworkRecord(
            id=str(uuid.uuid4()),
            netid=netid,
            addressrange=v4,
            addressrange6=v6,
            created_at=self.clock(),
            pool4=_pool(v4),
            pool6=_pool(v6),
        )
        self._networks[netid] = network
        self.keys.create_default(server=self.server, network=netid)
        return network

    @_locked
    def network(self, netid: str) -> NetworkRecord | None:
        return self._networks.get(netid)

    @_locked
    def networks(self) -> list[NetworkRecord]:
        return list(self._networks.values())

    def _checked_range(self, cidr: str, version: int) -> str:
        if not cidr:
            return ""
        try:
            parsed = ipaddress.ip_network(cidr, strict=False)
        except ValueError as exc:
            raise bad_request(f"invalid CIDR address: {cidr}") from exc
        if "/" not in cidr or parsed.version != version:
            raise bad_request(f"invalid CIDR address: {cidr}")
        if parsed.prefixlen in _TOO_SMALL[version]:
            raise bad_request(f"network cidr {cidr} is too small")
        used = {n.addressrange for n in self._networks.values()}
        used |= {n.addressrange6 for n in self._networks.values()}
        if parsed.compressed in used:
            raise bad_request("network cidr already in use")
        return parsed.compressed

    def _free_range(self) -> str:
        used = {n.addressrange for n in self._networks.values()}
        for candidate in self._ranges:
            if candidate not in used:
                return candidate
        raise bad_request("no free default address range left; pass addressrange")

    # -- hosts and nodes --------------------------------------------------------------------

    @_locked
    def add_host(
        self, name: str, networks: Sequence[str] = (), *, host_id: str | None = None
    ) -> HostRecord:
        """A host as a registered netclient would leave it, joined to ``networks`` in order."""
        host = HostRecord(
            id=host_id or str(uuid.uuid4()),
            name=name,
            macaddress=secrets.token_bytes(6),
            publickey=secrets.token_bytes(32),
            traffic_key=secrets.token_bytes(32),
        )
        self.insert_host(host)
        for network in networks:
            self.join_network(host.id, network)
        return host

    @_locked
    def insert_host(self, host: HostRecord) -> HostRecord:
        """Store a host built by the caller (registration); its id must be new."""
        if host.id in self._hosts:
            raise bad_request("host already exists")
        self._hosts[host.id] = host
        return host

    @_locked
    def host(self, host_id: str) -> HostRecord | None:
        return self._hosts.get(host_id)

    @_locked
    def hosts(self) -> list[HostRecord]:
        """Every host, sorted by id as ``GET /api/hosts`` lists them."""
        return [self._hosts[host_id] for host_id in sorted(self._hosts)]

    @_locked
    def join_network(self, host_id: str, network: str) -> str:
        """Create the host's node in ``network`` and return its id (``addHostToNetwork``)."""
        host = self._hosts.get(host_id)
        net = self._networks.get(network)
        if host is None or net is None:
            raise internal(RECORD_NOT_FOUND)
        if network in host.nodes_by_network:
            raise internal(f"host already part of network {network}")
        node = NodeRecord(
            id=str(uuid.uuid4()),
            host_id=host.id,
            network=network,
            address=net.pool4.allocate() if net.pool4 else "",
            address6=net.pool6.allocate() if net.pool6 else "",
            networkrange=net.addressrange,
            networkrange6=net.addressrange6,
            created_at=self.clock(),
        )
        self._nodes[node.id] = node
        host.nodes_by_network[network] = node.id
        host.joined_once = True
        return node.id

    @_locked
    def node(self, node_id: str) -> NodeRecord | None:
        return self._nodes.get(node_id)

    @_locked
    def nodes(self, network: str | None = None) -> list[NodeRecord]:
        """Real nodes (no static pseudo-nodes), oldest first."""
        return [n for n in self._nodes.values() if network is None or n.network == network]

    @_locked
    def set_pending_delete(self, node_id: str) -> None:
        """A non-forced delete: the node stays everywhere, flagged ``pendingdelete``."""
        self._require_node(node_id).pending_delete = True

    @_locked
    def remove_node(self, node_id: str) -> None:
        """Purge a node (forced delete); its egresses stay, without this router.

        See docs/netmaker-api.md section 6.
        """
        node = self._require_node(node_id)
        del self._nodes[node_id]
        host = self._hosts.get(node.host_id)
        if host is not None:
            host.nodes_by_network.pop(node.network, None)
        network = self._networks.get(node.network)
        if network is not None:
            _release(network, node.address, node.address6)
        self.egress.strip_node(node.network, node_id)
        for client in [c for c in self._static_clients.values() if c.gateway_node_id == node_id]:
            del self._static_clients[client.client_id]
            if network is not None:
                _release(network, client.address, "")

    @_locked
    def remove_host(self, host_id: str) -> HostRecord:
        """Purge every node of the host, then delete it (``?force=true``)."""
        host = self._hosts.get(host_id)
        if host is None:
            raise internal(RECORD_NOT_FOUND)
        for node_id in host.node_ids:
            self.remove_node(node_id)
        del self._hosts[host_id]
        return host

    @_locked
    def add_static_client(self, network: str, *, gateway_node_id: str | None = None) -> str:
        """Give ``network`` an ingress gateway with one external client; return the client id.

        The gateway is ``gateway_node_id`` or the network's oldest node. ``GET /api/nodes`` then
        lists the client as a pseudo-node whose id and hostid are all zeros.
        """
        net = self._networks.get(network)
        if net is None:
            raise internal(RECORD_NOT_FOUND)
        candidates = [n for n in self._nodes.values() if n.network == network]
        if gateway_node_id is not None:
            candidates = [n for n in candidates if n.id == gateway_node_id]
        if not candidates:
            raise bad_request(f"network {network} has no node to act as ingress gateway")
        gateway = candidates[0]
        gateway.is_ingress_gateway = True
        client = StaticClient(
            client_id=f"client-{secrets.token_hex(4)}",
            network=network,
            gateway_node_id=gateway.id,
            address=net.pool4.allocate() if net.pool4 else "",
        )
        self._static_clients[client.client_id] = client
        return client.client_id

    @_locked
    def static_clients(self, network: str | None = None) -> list[StaticClient]:
        return [c for c in self._static_clients.values() if network is None or c.network == network]

    def _require_node(self, node_id: str) -> NodeRecord:
        node = self._nodes.get(node_id)
        if node is None:
            raise internal(NO_RESULT_FOUND)
        return node

    # -- users and tokens -------------------------------------------------------------------

    @_locked
    def add_user(self, username: str, password: str, *, superadmin: bool = False) -> None:
        """A user who can log in; CE gives every user full access (docs/netmaker-api.md 3)."""
        if username in self._users:
            raise bad_request("user exists")
        salt = secrets.token_bytes(16)
        self._users[username] = UserRecord(
            username, salt, UserRecord.digest(salt, password), superadmin
        )

    @_locked
    def user(self, username: str) -> UserRecord | None:
        return self._users.get(username)

    @_locked
    def has_superadmin(self) -> bool:
        return any(user.is_superadmin for user in self._users.values())

    @_locked
    def rotate_jwt_secret(self) -> None:
        """Invalidate every token issued so far, as a server on a fresh database would."""
        self.jwt_secret = secrets.token_urlsafe(48)[:64].encode("ascii")

    # -- egress seeding ---------------------------------------------------------------------

    @_locked
    def add_egress(
        self,
        *,
        network: str,
        cidr: str,
        nodes: dict[str, int] | None = None,
        name: str = "",
        description: str = "",
        nat: bool = False,
        status: bool = True,
        mode: str = "direct_nat",
        tags: dict[str, int] | None = None,
        domain: str = "",
        egress_id: str | None = None,
        created_by: str = "admin",
    ) -> dict[str, object]:
        """Store an egress verbatim, bypassing every API rule; returns it as the API shows it.

        For foreign rules and hand-made drift. ``cidr`` is stored as given: the API would
        normalise it, so pass canonical text unless non-canonical data is the point.
        """
        now = rfc3339(self.clock())
        record = EgressRecord(
            id=egress_id or str(uuid.uuid4()),
            name=name,
            network=network,
            description=description,
            nodes=dict(nodes or {}),
            tags=dict(tags or {}),
            range=cidr,
            mode=mode,
            virtual_range="",
            domain=domain,
            domain_ans=[],
            nat=nat,
            status=status,
            created_by=created_by,
            created_at=now,
            updated_at=now,
        )
        self.egress.insert(record)
        return record.to_api()

    @_locked
    def egresses(self, network: str | None = None) -> list[dict[str, object]]:
        """JSON-shaped copies of the egresses of ``network`` (all networks if None)."""
        return [record.to_api() for record in self.egress.records(network)]

    @_locked
    def update_egress_raw(self, /, egress_id: str, **fields: object) -> dict[str, object]:
        """Overwrite fields of an egress without any API rule, like a hand edit in the dashboard."""
        return self.egress.replace_fields(egress_id, fields).to_api()

    @_locked
    def delete_egress_raw(self, egress_id: str) -> None:
        """Delete an egress without any API rule; KeyError if it does not exist."""
        if self.egress.get(egress_id) is None:
            raise KeyError(egress_id)
        self.egress.remove(egress_id)


def _pool(cidr: str) -> AddressPool | None:
    return AddressPool(cidr) if cidr else None


def _release(network: NetworkRecord, address: str, address6: str) -> None:
    if address and network.pool4 is not None:
        network.pool4.release(address)
    if address6 and network.pool6 is not None:
        network.pool6.release(address6)
