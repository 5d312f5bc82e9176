"""HS256 JSON Web Tokens with the standard library, as Netmaker issues them to users.

See docs/netmaker-api.md section 2.

Why not a JWT library: the emulator may depend on the standard library and h11 only, and HS256
is a few lines of ``hmac``. Only what Netmaker's ``jwt.ParseWithClaims`` checks is checked here:
the three-part shape, ``alg`` = HS256, the signature, and ``exp`` (a token is expired from the
second ``now >= exp``, so a zero lifetime gives a token born expired).

Not modelled: other algorithms, ``nbf``, key rotation by ``kid``, clock leeway.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Mapping

_HEADER = {"alg": "HS256", "typ": "JWT"}


class InvalidTokenError(Exception):
    """The token is malformed, badly signed or expired (the server answers all three with 401)."""


def encode(claims: Mapping[str, object], secret: bytes) -> str:
    """Sign ``claims`` with HMAC-SHA256 and return the compact ``header.payload.signature`` form."""
    signing_input = f"{_b64_json(_HEADER)}.{_b64_json(claims)}"
    return f"{signing_input}.{_b64(_sign(signing_input, secret))}"


def decode(token: str, secret: bytes, *, now: float) -> dict[str, object]:
    """Return the claims of a valid, unexpired token, or raise :class:`InvalidTokenError`."""
    parts = token.split(".")
    if len(parts) != 3:
        raise InvalidTokenError("token is not three dot-separated parts")
    header_part, payload_part, signature_part = parts
    header = _json_object(header_part)
    if header.get("alg") != "HS256":
        raise InvalidTokenError("unexpected signing method")
    expected = _sign(f"{header_part}.{payload_part}", secret)
    if not hmac.compare_digest(expected, _unb64(signature_part)):
        raise InvalidTokenError("signature is invalid")
    claims = _json_object(payload_part)
    exp = claims.get("exp")
    if exp is not None:
        if not isinstance(exp, int | float) or isinstance(exp, bool):
            raise InvalidTokenError("exp is not a number")
        if now >= exp:
            raise InvalidTokenError("token is expired")
    return claims


def _sign(signing_input: str, secret: bytes) -> bytes:
    return hmac.new(secret, signing_input.encode("ascii"), hashlib.sha256).digest()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64_json(value: Mapping[str, object]) -> str:
    return _b64(json.dumps(value, separators=(",", ":")).encode("utf-8"))


def _unb64(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise InvalidTokenError("segment is not base64url") from exc


def _json_object(segment: str) -> dict[str, object]:
    try:
        value = json.loads(_unb64(segment))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidTokenError("segment is not JSON") from exc
    if not isinstance(value, dict):
        raise InvalidTokenError("segment is not a JSON object")
    return value
