"""The emulator's records (networks, hosts, nodes, static clients, users) and their JSON shapes.

Records are plain mutable dataclasses owned by :class:`.state.NetmakerState`; ``to_api`` renders
what the server prints (``models.ApiHost``, ``models.ApiNode``, ``schema.Network``,
``models.ReturnUser``). Field lists are trimmed to what clients plausibly read plus enough
neighbours to keep decoders honest; every key docs/netmaker-api.md section 4 names is present.

Not modelled: liveness (nodes never check in: ``connected`` stays true, ``status`` "unknown"),
relays, failover, DNS, per-node ACL or tag data, host interfaces and firewall details.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import heapq
import hmac
import ipaddress
from dataclasses import dataclass, field

from .errors import internal

ZERO_UUID = "00000000-0000-0000-0000-000000000000"
SERVER_VERSION = "v1.5.1"
GO_ZERO_TIME = "0001-01-01T00:00:00Z"


def rfc3339(timestamp: float) -> str:
    """A unix time as Go marshals ``time.Time`` (RFC 3339, trailing fraction zeros dropped), UTC."""
    moment = datetime.datetime.fromtimestamp(timestamp, datetime.UTC)
    fraction = f"{moment.microsecond:06d}".rstrip("0")
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + (f".{fraction}" if fraction else "") + "Z"


class AddressPool:
    """Overlay addresses of one network range, lowest free first, O(log n) per allocation."""

    def __init__(self, cidr: str) -> None:
        self._network = ipaddress.ip_network(cidr)
        size = self._network.num_addresses
        # IPv4 keeps the network and broadcast addresses out; IPv6 only the network address.
        self._last = size - 2 if self._network.version == 4 else size - 1
        self._next = 1
        self._released: list[int] = []

    def allocate(self) -> str:
        if self._released:
            offset = heapq.heappop(self._released)
        elif self._next <= self._last:
            offset = self._next
            self._next += 1
        else:
            raise internal(f"no available IP addresses in {self._network}")
        return f"{self._network.network_address + offset}/{self._network.prefixlen}"

    def release(self, address: str) -> None:
        ip = ipaddress.ip_interface(address).ip
        heapq.heappush(self._released, int(ip) - int(self._network.network_address))


@dataclass
class NetworkRecord:
    id: str
    netid: str
    addressrange: str
    addressrange6: str
    created_at: float
    pool4: AddressPool | None = None
    pool6: AddressPool | None = None

    def to_api(self) -> dict[str, object]:
        modified = int(self.created_at)
        return {
            "id": self.id,
            "addressrange": self.addressrange,
            "addressrange6": self.addressrange6,
            "netid": self.netid,
            "nodeslastmodified": modified,
            "networklastmodified": modified,
            "defaultinterface": f"nm-{self.netid}"[:15],
            "defaultlistenport": 51821,
            "nodelimit": 999999999,
            "defaultkeepalive": 20,
            "allowmanualsignup": "no",
            "isipv4": "yes" if self.addressrange else "no",
            "isipv6": "yes" if self.addressrange6 else "no",
            "defaultudpholepunch": "no",
            "defaultmtu": 1280,
            "defaultacl": "yes",
        }


@dataclass
class NodeRecord:
    id: str
    host_id: str
    network: str
    address: str
    address6: str
    networkrange: str
    networkrange6: str
    created_at: float
    pending_delete: bool = False
    is_ingress_gateway: bool = False

    def to_api(self) -> dict[str, object]:
        return {
            "id": self.id,
            "hostid": self.host_id,
            "address": self.address,
            "address6": self.address6,
            "localaddress": "",
            "static_node": _ext_client_json("", "", ""),
            "is_static": False,
            "is_user_node": False,
            "network": self.network,
            "networkrange": self.networkrange,
            "networkrange6": self.networkrange6,
            "isrelayed": False,
            "isrelay": False,
            "relayedby": "",
            "relaynodes": [],
            "isegressgateway": False,
            "egressgatewayranges": [],
            "isingressgateway": self.is_ingress_gateway,
            "dnson": False,
            "lastcheckin": int(self.created_at),
            "lastmodified": int(self.created_at),
            "expdatetime": 0,
            "connected": True,
            "pendingdelete": self.pending_delete,
            "status": "unknown",
            "tags": {},
        }


@dataclass
class StaticClient:
    """An external (remote-access) client behind an ingress gateway node."""

    client_id: str
    network: str
    gateway_node_id: str
    address: str

    def to_api_node(self) -> dict[str, object]:
        """``models.ConvertToStaticNode``: a pseudo-node whose id and hostid are all zeros."""
        return {
            "id": ZERO_UUID,
            "hostid": ZERO_UUID,
            "address": self.address,
            "address6": "",
            "localaddress": "",
            "static_node": _ext_client_json(self.client_id, self.network, self.address),
            "is_static": True,
            "is_user_node": False,
            "network": self.network,
            "isingressgateway": False,
            "isegressgateway": False,
            "egressgatewayranges": [],
            "connected": True,
            "pendingdelete": False,
            "status": "unknown",
            "tags": {},
        }


def _ext_client_json(client_id: str, network: str, address: str) -> dict[str, object]:
    return {
        "clientid": client_id,
        "network": network,
        "address": address,
        "enabled": bool(client_id),
    }


@dataclass
class HostRecord:
    """A host; ``node_ids`` lists its nodes in join order, ``node_id(net)`` finds one by network."""

    id: str
    name: str
    macaddress: bytes
    publickey: bytes
    traffic_key: bytes
    os: str = "linux"
    version: str = SERVER_VERSION
    listenport: int = 51821
    mtu: int = 1420
    persistentkeepalive: int = 20
    nodes_by_network: dict[str, str] = field(default_factory=dict)
    # ApiHost.nodes is null until the host first joins a network, [] once it left them all.
    joined_once: bool = False

    @property
    def node_ids(self) -> list[str]:
        return list(self.nodes_by_network.values())

    def node_id(self, network: str) -> str:
        """The host's node in ``network``; KeyError if the host is not in it."""
        return self.nodes_by_network[network]

    def to_api(self) -> dict[str, object]:
        return {
            "id": self.id,
            "verbosity": 0,
            "firewallinuse": "",
            "version": self.version,
            "name": self.name,
            "os": self.os,
            "os_family": "",
            "os_version": "",
            "kernel_version": "",
            "debug": False,
            "isstatic": False,
            "listenport": self.listenport,
            "wg_public_listen_port": 0,
            "mtu": self.mtu,
            "interfaces": [],
            "defaultinterface": "",
            "endpointip": "",
            "endpointipv6": "",
            "publickey": base64.b64encode(self.publickey).decode("ascii"),
            "macaddress": self.macaddress.hex(":"),
            "persistentkeepalive": self.persistentkeepalive,
            "nodes": self.node_ids if self.joined_once else None,
            "isdefault": False,
            "nat_type": "",
            "autoupdate": False,
            "isstaticport": False,
            "dns": "",
            "enable_flow_logs": False,
            "location": "",
            "country_code": "",
        }


@dataclass
class UserRecord:
    username: str
    salt: bytes
    password_digest: bytes
    is_superadmin: bool

    @staticmethod
    def digest(salt: bytes, password: str) -> bytes:
        return hashlib.sha256(salt + password.encode("utf-8")).digest()

    def password_matches(self, password: str) -> bool:
        return hmac.compare_digest(self.password_digest, self.digest(self.salt, password))

    @property
    def role(self) -> str:
        """The platform role: CE knows only ``super-admin`` and ``admin`` (docs/netmaker-api.md)."""
        return "super-admin" if self.is_superadmin else "admin"

    def to_return_user(self) -> dict[str, object]:
        return {
            "username": self.username,
            "display_name": "",
            "account_disabled": False,
            "isadmin": not self.is_superadmin,
            "issuperadmin": self.is_superadmin,
            "remote_gw_ids": None,
            "auth_type": "basic_auth",
            "user_group_ids": {},
            "platform_role_id": self.role,
            "network_roles": {},
            "is_mfa_enabled": False,
            "last_login_time": GO_ZERO_TIME,
        }
