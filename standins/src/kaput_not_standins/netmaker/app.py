"""The emulated Netmaker API as one synchronous function: request in, response out.

It wires the endpoint groups into one router and runs each handler under the state lock, so a
request sees and leaves the tables consistent (the real server serialises database access
through sqlite's single connection, too). An :class:`.errors.ApiError` raised anywhere becomes
Netmaker's error envelope. Sockets, faults and the request log live in the layers above.
"""

from __future__ import annotations

from ..http.messages import Request, Response, StreamingResponse
from . import envelope
from .api_egress import EgressApi
from .api_enroll import EnrollmentApi
from .api_inventory import InventoryApi
from .api_users import UsersApi
from .auth import Authenticator
from .errors import ApiError
from .routes import Resolved, Router
from .state import NetmakerState


class NetmakerApi:
    def __init__(self, state: NetmakerState, *, master_key: str | None) -> None:
        self._state = state
        auth = Authenticator(state, master_key=master_key)
        self.router = Router()
        for group in (
            UsersApi(state, auth),
            InventoryApi(state, auth),
            EnrollmentApi(state, auth),
            EgressApi(state, auth),
        ):
            for method, template, handler in group.routes():
                self.router.add(method, template, handler)

    def resolve(self, request: Request) -> Resolved:
        return self.router.resolve(request)

    def respond(self, resolved: Resolved) -> Response | StreamingResponse:
        with self._state.lock:
            try:
                return resolved.respond()
            except ApiError as exc:
                return envelope.error(exc.status, exc.message)
