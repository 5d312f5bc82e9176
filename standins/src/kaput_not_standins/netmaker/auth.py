"""Who is calling: Netmaker's ``SecurityCheck`` and token issuing, as CE does them.

See docs/netmaker-api.md sections 2 and 3.

- ``Authorization`` is split on single spaces and element [1] is the token; the word before it is
  never checked, and a header without a space is a 401.
- The master key, when configured and non-empty, is compared literally and acts as
  ``masteradministrator``.
- Otherwise the token must be a valid, unexpired HS256 JWT signed with the server's current
  secret (see :meth:`.state.NetmakerState.rotate_jwt_secret`), naming an existing user. CE has
  no further permission check, so every user passes.
- Lifetime: ``X-Application-Name`` of ``netclient`` or ``netmaker-desktop``, or none at all, uses
  ``jwt_validity_minutes_clients``; any other value ``jwt_validity_minutes``.

Not modelled: EE roles and network checks (no 403), disabled or SSO users, MFA pre-auth tokens,
personal access tokens, host tokens (``AuthorizeHost`` accepts only the master key here).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..http.messages import Request
from . import jwt
from .errors import RECORD_NOT_FOUND, unauthorized
from .model import UserRecord
from .state import NetmakerState

MASTER_USER = "masteradministrator"
_CLIENT_APPS = frozenset({"netclient", "netmaker-desktop"})


@dataclass(frozen=True)
class Caller:
    username: str
    is_master: bool = False


class Authenticator:
    def __init__(self, state: NetmakerState, *, master_key: str | None) -> None:
        self._state = state
        self._master_key = master_key or None

    def caller(self, request: Request) -> Caller:
        """``SecurityCheck``: the caller, or :class:`.errors.ApiError` 401."""
        token = self._token(request)
        if self._is_master(token):
            return Caller(MASTER_USER, is_master=True)
        try:
            claims = jwt.decode(token, self._state.jwt_secret, now=self._state.clock())
        except jwt.InvalidTokenError:
            raise unauthorized() from None
        username = claims.get("UserName")
        if not isinstance(username, str) or self._state.user(username) is None:
            raise unauthorized(RECORD_NOT_FOUND)
        return Caller(username)

    def master(self, request: Request) -> Caller:
        """``AuthorizeHost`` for the routes behind it: the master key, or a 401."""
        if not self._is_master(self._token(request)):
            raise unauthorized()
        return Caller(MASTER_USER, is_master=True)

    def issue_token(self, user: UserRecord, application: str | None) -> str:
        settings = self._state.settings
        app = application or "netmaker-desktop"
        minutes = (
            settings.jwt_validity_minutes_clients
            if app in _CLIENT_APPS
            else settings.jwt_validity_minutes
        )
        issued = int(self._state.clock())
        claims = {
            "UserName": user.username,
            "Role": user.role,
            "Api": self._state.server,
            "TokenType": "user_id_token",
            "RacAutoDisable": False,
            "iss": "Netmaker",
            "sub": f"user|{user.username}",
            "iat": issued,
            "exp": issued + minutes * 60,
        }
        return jwt.encode(claims, self._state.jwt_secret)

    def _is_master(self, token: str) -> bool:
        return self._master_key is not None and token == self._master_key

    @staticmethod
    def _token(request: Request) -> str:
        parts = (request.header("authorization") or "").split(" ")
        if len(parts) < 2:
            raise unauthorized()
        return parts[1]
