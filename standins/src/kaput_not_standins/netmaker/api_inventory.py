"""Hosts, nodes and networks: the listings the controller reads and the calls a harness seeds with.

- ``GET /api/hosts`` and ``GET /api/nodes``: bare arrays sorted by id (2, 3). Nodes cover every
  network, pending deletes included, plus the static pseudo-nodes (all-zero id, ``is_static``)
  of networks with an ingress gateway. ``GET /api/nodes/{network}``: the same for one network,
  in storage order; an unknown network is ``[]``.
- ``GET``/``POST /api/networks``: bare array / bare network (8.1 step 3); the list goes out as
  ``text/plain`` as on the real server, whose handler sets no Content-Type.
- ``POST``/``DELETE /api/hosts/{hostid}/networks/{network}``: join / leave, 200 with an empty
  body; leaving without ``force=true`` only flags ``pendingdelete``.
- ``DELETE /api/v1/ui/hosts/{hostid}``: with ``force=true`` purges the nodes, then the host; the
  envelope carries the host as it was before the purge.
- ``DELETE /api/nodes/{network}/{nodeid}``: behind ``AuthorizeHost``, so the master key only.
- ``GET /api/server/health`` and ``/api/server/status``: no authentication.

Texts not given by docs/netmaker-api.md (a host that is not in the network, the node delete message)
are inferred. Not modelled: ``GET /api/v1/hosts`` paging, ``GET /api/hosts/{hostid}`` (newer
than v1.5.1), host updates, network updates and deletion, gateways and relays endpoints.
"""

from __future__ import annotations

import uuid

from ..http.messages import Request, Response, StreamingResponse
from . import envelope
from .auth import Authenticator
from .errors import NO_RESULT_FOUND, RECORD_NOT_FOUND, bad_request, internal
from .godecode import DecodeError, Kind, Struct, decode_struct
from .model import GO_ZERO_TIME, SERVER_VERSION, HostRecord, NodeRecord, StaticClient
from .routes import Handler
from .state import NetmakerState

_NETWORK = Struct(
    "schema.Network",
    {"netid": Kind.STRING, "addressrange": Kind.STRING, "addressrange6": Kind.STRING},
)


class InventoryApi:
    def __init__(self, state: NetmakerState, auth: Authenticator) -> None:
        self._state = state
        self._auth = auth

    def routes(self) -> list[tuple[str, str, Handler]]:
        return [
            ("GET", "/api/hosts", self.list_hosts),
            ("POST", "/api/hosts/{hostid}/networks/{network}", self.join_network),
            ("DELETE", "/api/hosts/{hostid}/networks/{network}", self.leave_network),
            ("DELETE", "/api/v1/ui/hosts/{hostid}", self.delete_host),
            ("GET", "/api/nodes", self.list_nodes),
            ("GET", "/api/nodes/{network}", self.list_network_nodes),
            ("DELETE", "/api/nodes/{network}/{nodeid}", self.delete_node),
            ("GET", "/api/networks", self.list_networks),
            ("POST", "/api/networks", self.create_network),
            ("GET", "/api/server/health", self.health),
            ("GET", "/api/server/status", self.status),
        ]

    def list_hosts(self, request: Request) -> Response | StreamingResponse:
        self._auth.caller(request)
        return envelope.listing(self._state.hosts(), HostRecord.to_api, self._state.lock)

    def list_nodes(self, request: Request) -> Response | StreamingResponse:
        self._auth.caller(request)
        # Sorted by id, as the real server lists them: the static clients' pseudo-nodes (all
        # zeros) first, in the order AddStaticNodestoList appends them.
        rows: list[NodeRecord | StaticClient] = [
            *self._state.static_clients(None),
            *sorted(self._state.nodes(), key=_by_id),
        ]
        return envelope.listing(rows, _node_json, self._state.lock)

    def list_network_nodes(self, request: Request) -> Response:
        self._auth.caller(request)
        return envelope.bare(self._nodes_json(request.params["network"]))

    def list_networks(self, request: Request) -> Response:
        self._auth.caller(request)
        networks = [network.to_api() for network in self._state.networks()]
        return envelope.bare(networks, sniffed=True)

    def create_network(self, request: Request) -> Response:
        self._auth.caller(request)
        try:
            fields = decode_struct(request.body, _NETWORK)
        except DecodeError as exc:
            raise bad_request(str(exc)) from exc
        network = self._state.add_network(
            fields.text("netid"),
            fields.text("addressrange"),
            addressrange6=fields.text("addressrange6"),
        )
        return envelope.bare(network.to_api())

    def join_network(self, request: Request) -> Response:
        self._auth.caller(request)
        host_id = _host_id(request)
        self._state.join_network(host_id, request.params["network"])
        return envelope.empty_json()

    def leave_network(self, request: Request) -> Response:
        self._auth.caller(request)
        host = self._state.host(_host_id(request))
        if host is None:
            raise internal(RECORD_NOT_FOUND)
        network = request.params["network"]
        node_id = host.nodes_by_network.get(network)
        if node_id is None:
            raise internal(f"host not part of network {network}")
        if request.query_value("force") == "true":
            self._state.remove_node(node_id)
        else:
            self._state.set_pending_delete(node_id)
        return envelope.empty_json()

    def delete_host(self, request: Request) -> Response:
        self._auth.caller(request)
        host = self._state.host(request.params["hostid"])
        if host is None:
            raise internal(RECORD_NOT_FOUND)
        if request.query_value("force") != "true" and host.node_ids:
            raise internal("host still has associated nodes")
        shaped = host.to_api()
        self._state.remove_host(host.id)
        return envelope.success(f"deleted host {host.name}", shaped)

    def delete_node(self, request: Request) -> Response:
        self._auth.master(request)
        node = self._state.node(request.params["nodeid"])
        if node is None or node.network != request.params["network"]:
            raise internal(NO_RESULT_FOUND)
        if request.query_value("force") == "true":
            self._state.remove_node(node.id)
        else:
            self._state.set_pending_delete(node.id)
        return envelope.success(f"{node.id} deleted.")

    def health(self, request: Request) -> Response:
        return envelope.text("Server is up and running!!")

    def status(self, request: Request) -> Response:
        return envelope.bare(
            {
                "db_connected": True,
                "broker_connected": False,
                "is_broker_conn_open": False,
                "license_error": "",
                "is_pro": False,
                "trial_end_date": GO_ZERO_TIME,
                "is_on_trial_license": False,
                "version": SERVER_VERSION,
            }
        )

    def _nodes_json(self, network: str) -> list[dict[str, object]]:
        shaped = [node.to_api() for node in self._state.nodes(network)]
        # AddStaticNodestoList appends external clients of networks with an ingress gateway.
        shaped += [client.to_api_node() for client in self._state.static_clients(network)]
        return shaped


def _by_id(node: NodeRecord) -> str:
    return node.id


def _node_json(row: NodeRecord | StaticClient) -> dict[str, object]:
    return row.to_api() if isinstance(row, NodeRecord) else row.to_api_node()


def _host_id(request: Request) -> str:
    """``uuid.Parse`` of the path's host id; a malformed one is a 400."""
    raw = request.params["hostid"]
    try:
        return str(uuid.UUID(raw))
    except ValueError:
        raise bad_request(f"invalid UUID length: {len(raw)}") from None
