"""Users and login endpoints: authenticate, has/create super-admin (docs/netmaker-api.md 2, 7).

Login failures keep Netmaker's odd statuses: a wrong password is 400 ``incorrect credentials``,
an unknown user 401 ``record not found``, a body that is not JSON 500. The success body is
written with ``json.Marshal``, so unlike other envelopes it has no trailing newline.

Not modelled: ``POST /api/users/{username}`` and other user management, ``From-Ui``, MFA,
SSO, disabled accounts, ``BASIC_AUTH=no``.
"""

from __future__ import annotations

import re

from ..http.messages import Request, Response
from . import envelope
from .auth import Authenticator
from .errors import RECORD_NOT_FOUND, bad_request, unauthorized
from .godecode import DecodeError, Kind, Struct, decode_struct
from .routes import Handler
from .state import NetmakerState

_AUTH_PARAMS = Struct("models.UserAuthParams", {"username": Kind.STRING, "password": Kind.STRING})
_USER = Struct("models.User", {"username": Kind.STRING, "password": Kind.STRING})
_USERNAME = re.compile(r"^[a-z0-9.-]+$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class UsersApi:
    def __init__(self, state: NetmakerState, auth: Authenticator) -> None:
        self._state = state
        self._auth = auth

    def routes(self) -> list[tuple[str, str, Handler]]:
        return [
            ("POST", "/api/users/adm/authenticate", self.authenticate),
            ("GET", "/api/users/adm/hassuperadmin", self.has_superadmin),
            ("POST", "/api/users/adm/createsuperadmin", self.create_superadmin),
        ]

    def authenticate(self, request: Request) -> Response:
        try:
            params = decode_struct(request.body, _AUTH_PARAMS)
        except DecodeError:
            return envelope.error(500, "W1R3: It's not you it's me.")
        username, password = params.text("username"), params.text("password")
        if not username:
            raise unauthorized("user identifiers not provided")
        user = self._state.user(username)
        if user is None:
            raise unauthorized(RECORD_NOT_FOUND)
        if not password:
            raise bad_request("password can't be empty")
        if not user.password_matches(password):
            raise bad_request("incorrect credentials")
        token = self._auth.issue_token(user, request.header("x-application-name"))
        body = envelope.go_json(
            {
                "Code": 200,
                "Message": f"W1R3: Device {username} Authorized",
                "Response": {"UserName": username, "AuthToken": token},
            }
        )
        return Response(200, body, envelope.JSON)

    def has_superadmin(self, request: Request) -> Response:
        return envelope.bare(self._state.has_superadmin())

    def create_superadmin(self, request: Request) -> Response:
        try:
            fields = decode_struct(request.body, _USER)
        except DecodeError as exc:
            raise bad_request(str(exc)) from exc
        if self._state.has_superadmin():
            raise bad_request("superadmin user already exists")
        username, password = fields.text("username"), fields.text("password")
        problems = _user_problems(username, password)
        if problems:
            raise bad_request("\n".join(problems))  # Go's errors.Join
        self._state.add_user(username, password, superadmin=True)
        user = self._state.user(username)
        assert user is not None
        return envelope.bare(user.to_return_user())


def _user_problems(username: str, password: str) -> list[str]:
    problems = []
    if len(username) <= 3:
        problems.append("username must be more than 3 characters")
    if not _USERNAME.match(username) and not _EMAIL.match(username):
        problems.append("username may only contain lowercase letters, digits, '-' and '.'")
    if len(password) < 5:
        problems.append("password must have a minimum of 5 characters")
    return problems
