"""HS256 tokens: what the emulator signs, it verifies; anything else is rejected."""

from __future__ import annotations

import base64
import json

import pytest

from kaput_not_standins.netmaker import jwt

SECRET = b"s" * 64


def _segment(value: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


def test_round_trip_keeps_the_claims():
    token = jwt.encode({"UserName": "admin", "exp": 200}, SECRET)
    assert jwt.decode(token, SECRET, now=199.5) == {"UserName": "admin", "exp": 200}


def test_a_token_expires_at_its_exp_second():
    token = jwt.encode({"exp": 200}, SECRET)
    with pytest.raises(jwt.InvalidTokenError, match="expired"):
        jwt.decode(token, SECRET, now=200)


def test_another_secret_or_a_changed_payload_fails_the_signature():
    token = jwt.encode({"UserName": "admin", "exp": 200}, SECRET)
    with pytest.raises(jwt.InvalidTokenError, match="signature"):
        jwt.decode(token, b"other", now=0)
    header, _payload, signature = token.split(".")
    forged = f"{header}.{_segment({'UserName': 'root', 'exp': 200})}.{signature}"
    with pytest.raises(jwt.InvalidTokenError, match="signature"):
        jwt.decode(forged, SECRET, now=0)


@pytest.mark.parametrize(
    "token",
    [
        "",
        "a.b",
        "!!!.???.***",
        f"{_segment({'alg': 'none'})}.{_segment({'exp': 9e9})}.",
        jwt.encode({"exp": "soon"}, SECRET),
    ],
)
def test_malformed_tokens_are_rejected(token):
    with pytest.raises(jwt.InvalidTokenError):
        jwt.decode(token, SECRET, now=0)
