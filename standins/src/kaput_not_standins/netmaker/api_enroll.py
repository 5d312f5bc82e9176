"""Enrollment keys and host registration (docs/netmaker-api.md section 7).

``POST /api/v1/host/register/{token}`` needs no Authorization header. In order: the token must
name a key (400), the body must decode as ``schema.Host`` (500 with Go's decoder text), the
version must be ``dev`` or at least 0.17.0 (400 ``bad client version on register: <version>``),
the traffic key must be present (an empty string will do) unless ``os`` is ``iot`` (400
``missing traffic key``), a known host id with a key without networks is 400
``host already exists``, and a spent key is 400 ``invalid enrollment key``. The answer is a bare
``{"server_config", "requested_host"}``, sent as ``text/plain`` like the real server's.

The server keeps the client-chosen host id (a missing or nil id gets a fresh one here: the real
behaviour is undocumented) and creates one node per key network that exists. **The real server
creates those nodes asynchronously** (a goroutine); the emulator creates them before answering,
but clients must poll ``GET /api/hosts`` either way. The relative order of the version, traffic
key and host checks is inferred.

Not modelled: MQ credentials (``server_config`` carries empty ones), zombie detection by MAC
address, host passwords, key deletion and update.
"""

from __future__ import annotations

import base64
import re
import secrets
import uuid

from ..http.messages import Request, Response
from . import envelope
from .auth import Authenticator
from .enrollment import EnrollmentKey
from .errors import bad_request, internal
from .godecode import Decoded, DecodeError, Kind, Struct, decode_struct
from .model import SERVER_VERSION, ZERO_UUID, HostRecord
from .routes import Handler
from .state import NetmakerState

_KEY_REQUEST = Struct(
    "models.APIEnrollmentKey",
    {
        "expiration": Kind.INT,
        "uses_remaining": Kind.INT,
        "networks": Kind.STRINGS,
        "unlimited": Kind.BOOL,
        "tags": Kind.STRINGS,
    },
)
_HOST = Struct(
    "models.Host",
    {
        "id": Kind.UUID,
        "name": Kind.STRING,
        "version": Kind.STRING,
        "os": Kind.STRING,
        "traffickeypublic": Kind.BYTES,
        "macaddress": Kind.BYTES,
        "publickey": Kind.KEY32,
        "listenport": Kind.INT,
        "mtu": Kind.INT,
    },
)
_SEMVER = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)")
_OLDEST_CLIENT = (0, 17, 0)
_KEEPALIVE_NS = 20 * 1_000_000_000  # models.DefaultPersistentKeepAlive, a Go time.Duration


class EnrollmentApi:
    def __init__(self, state: NetmakerState, auth: Authenticator) -> None:
        self._state = state
        self._auth = auth

    def routes(self) -> list[tuple[str, str, Handler]]:
        return [
            ("GET", "/api/v1/enrollment-keys", self.list_keys),
            ("POST", "/api/v1/enrollment-keys", self.create_key),
            ("POST", "/api/v1/host/register/{token}", self.register),
        ]

    def list_keys(self, request: Request) -> Response:
        self._auth.caller(request)
        return envelope.bare([key.to_api() for key in self._state.keys.all()], sniffed=True)

    def create_key(self, request: Request) -> Response:
        self._auth.caller(request)
        try:
            fields = decode_struct(request.body, _KEY_REQUEST)
        except DecodeError as exc:
            raise bad_request(str(exc)) from exc
        key = self._state.keys.create(
            server=self._state.server,
            tags=fields.strings("tags"),
            networks=fields.strings("networks"),
            unlimited=fields.flag("unlimited"),
            uses_remaining=fields.number("uses_remaining"),
            expiration=fields.number("expiration"),
        )
        return envelope.bare(key.to_api(), sniffed=True)

    def register(self, request: Request) -> Response:
        key = self._state.keys.from_token(request.params["token"])
        try:
            fields = decode_struct(request.body, _HOST)
        except DecodeError as exc:
            raise internal(str(exc)) from exc
        if not _version_supported(fields.text("version")):
            raise bad_request(f"bad client version on register: {fields.text('version')}")
        # Go checks for a nil slice: absent or null is refused, "" (empty, not nil) is not.
        if fields.text("os") != "iot" and "traffickeypublic" not in fields.given:
            raise bad_request("missing traffic key")
        host_id = fields.text("id")
        host = self._state.host(host_id) if host_id and host_id != ZERO_UUID else None
        if host is not None and not key.networks:
            raise bad_request("host already exists")
        if not key.try_use(self._state.clock()):
            raise bad_request("invalid enrollment key")
        if host is None:
            host = self._state.insert_host(_new_host(fields))
        self._join_key_networks(host, key)
        return envelope.bare(
            {"server_config": self._server_config(), "requested_host": _host_json(host)},
            sniffed=True,
        )

    def _join_key_networks(self, host: HostRecord, key: EnrollmentKey) -> None:
        for network in key.networks:
            if self._state.network(network) is not None and network not in host.nodes_by_network:
                self._state.join_network(host.id, network)

    def _server_config(self) -> dict[str, object]:
        server = self._state.server
        return {
            "corednsaddress": "",
            "api": server,
            "apihost": server.rsplit(":", 1)[0],
            "apiport": server.rsplit(":", 1)[-1],
            "dnsmode": "on",
            "version": SERVER_VERSION,
            "mqport": "",
            "server": server,
            "broker": "",
            "brokertype": "mosquitto",
            "is_pro": False,
            "mquserName": "",
            "mqpassword": "",
            "traffickey": base64.b64encode(secrets.token_bytes(32)).decode("ascii"),
        }


def _version_supported(version: str) -> bool:
    if version == "dev":
        return True
    match = _SEMVER.match(version)
    return match is not None and tuple(int(part) for part in match.groups()) >= _OLDEST_CLIENT


def _new_host(fields: Decoded) -> HostRecord:
    host_id = fields.text("id")
    return HostRecord(
        id=host_id if host_id and host_id != ZERO_UUID else str(uuid.uuid4()),
        name=fields.text("name"),
        macaddress=fields.octets("macaddress"),
        publickey=fields.octets("publickey"),
        traffic_key=fields.octets("traffickeypublic"),
        os=fields.text("os"),
        version=fields.text("version"),
        listenport=fields.number("listenport") or 51821,
        mtu=fields.number("mtu") or 1420,
    )


def _host_json(host: HostRecord) -> dict[str, object]:
    """``models.Host``, not ``ApiHost``: byte slices as base64, the WireGuard key as numbers."""
    return {
        "id": host.id,
        "verbosity": 0,
        "firewallinuse": "",
        "version": host.version,
        "ipforwarding": False,
        "daemoninstalled": False,
        "autoupdate": False,
        "hostpass": "",
        "name": host.name,
        "os": host.os,
        "debug": False,
        "nodes": host.node_ids if host.joined_once else None,
        "interfaces": None,
        "defaultinterface": "",
        "endpointip": "",
        "endpointipv6": "",
        "publickey": list(host.publickey),
        "macaddress": base64.b64encode(host.macaddress).decode("ascii"),
        "traffickeypublic": base64.b64encode(host.traffic_key).decode("ascii"),
        "listenport": host.listenport,
        "mtu": host.mtu,
        "persistentkeepalive": _KEEPALIVE_NS,
        "isstatic": False,
        "isdefault": False,
    }
