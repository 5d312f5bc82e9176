"""The egress endpoints, ``/api/v1/egress`` (docs/netmaker-api.md section 5): HTTP shape only.

Decoding follows Go (a metric of ``500.0`` is a 400 with the decoder's text), every answer is
the success envelope with status 200, and the rules themselves live in :mod:`.egress`.
"""

from __future__ import annotations

from ..http.messages import Request, Response, StreamingResponse
from . import envelope
from .auth import Authenticator
from .egress import EgressRecord, EgressRequest
from .errors import bad_request
from .godecode import DecodeError, Kind, Struct, decode_struct
from .routes import Handler
from .state import NetmakerState

_EGRESS_REQ = Struct(
    "models.EgressReq",
    {
        "id": Kind.STRING,
        "name": Kind.STRING,
        "network": Kind.STRING,
        "description": Kind.STRING,
        "nodes": Kind.METRICS,
        "tags": Kind.METRICS,
        "range": Kind.STRING,
        "domain": Kind.STRING,
        "nat": Kind.BOOL,
        "mode": Kind.STRING,
        "status": Kind.BOOL,
        "is_internet_gateway": Kind.BOOL,
    },
)


class EgressApi:
    def __init__(self, state: NetmakerState, auth: Authenticator) -> None:
        self._state = state
        self._auth = auth

    def routes(self) -> list[tuple[str, str, Handler]]:
        return [
            ("GET", "/api/v1/egress", self.list_egresses),
            ("POST", "/api/v1/egress", self.create_egress),
            ("PUT", "/api/v1/egress", self.update_egress),
            ("DELETE", "/api/v1/egress", self.delete_egress),
        ]

    def list_egresses(self, request: Request) -> Response | StreamingResponse:
        self._auth.caller(request)
        network = request.query_value("network")
        if not network:
            raise bad_request("network is required")
        records = self._state.egress.records(network)
        message = "fetched egress resource list"
        return envelope.listing(records, EgressRecord.to_api, self._state.lock, message=message)

    def create_egress(self, request: Request) -> Response:
        caller = self._auth.caller(request)
        record = self._state.egress.create(_decode(request.body), caller=caller.username)
        return envelope.success("created egress resource", record.to_api())

    def update_egress(self, request: Request) -> Response:
        self._auth.caller(request)
        record = self._state.egress.update(_decode(request.body))
        return envelope.success("updated egress resource", record.to_api())

    def delete_egress(self, request: Request) -> Response:
        self._auth.caller(request)
        egress_id = request.query_value("id")
        if not egress_id:
            raise bad_request("id is required")
        self._state.egress.delete(egress_id)
        return envelope.success("deleted egress resource")


def _decode(body: bytes) -> EgressRequest:
    try:
        fields = decode_struct(body, _EGRESS_REQ)
    except DecodeError as exc:
        raise bad_request(str(exc)) from exc
    return EgressRequest(
        id=fields.text("id"),
        name=fields.text("name"),
        network=fields.text("network"),
        description=fields.text("description"),
        nodes=fields.metrics("nodes"),
        tags=fields.metrics("tags"),
        range=fields.text("range"),
        domain=fields.text("domain"),
        nat=fields.flag("nat"),
        mode=fields.text("mode"),
        status=fields.flag("status"),
        is_internet_gateway=fields.flag("is_internet_gateway"),
    )
