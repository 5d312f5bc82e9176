"""Login, tokens and the first super-admin (docs/netmaker-api.md sections 2, 3 and 7)."""

from __future__ import annotations

import base64
import json

import pytest

from .answers import bare, error, ok
from .conftest import Target
from .seeding import Seeder


async def test_login_returns_a_jwt_in_the_capitalised_envelope(http, target: Target, seeder):
    answer = await http.post(
        "/api/users/adm/authenticate",
        json={"username": target.username, "password": target.password},
    )
    response = ok(answer)
    assert response["UserName"] == target.username
    header, payload, _signature = response["AuthToken"].split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["alg"] == "HS256"
    assert claims["exp"] > claims["iat"]
    assert claims["sub"] == f"user|{target.username}"


async def test_a_wrong_password_is_400_incorrect_credentials(http, target: Target, seeder):
    answer = await http.post(
        "/api/users/adm/authenticate",
        json={"username": target.username, "password": "definitely-wrong"},
    )
    assert error(answer) == (400, "incorrect credentials")


async def test_an_unknown_user_is_401(http, seeder):
    answer = await http.post(
        "/api/users/adm/authenticate",
        json={"username": "no-such-user-kc", "password": "whatever"},
    )
    assert error(answer)[0] == 401


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer", "Bearer not-a-token"],
    ids=["missing", "no-space", "garbage"],
)
async def test_calls_without_a_valid_token_get_the_401_envelope(http, seeder, authorization):
    headers = {"Authorization": authorization} if authorization else {}
    answer = await http.get("/api/hosts", headers=headers)
    assert error(answer) == (401, "unauthorized")


async def test_the_word_before_the_token_is_not_checked(http, seeder: Seeder):
    token = seeder.headers["Authorization"].split(" ")[1]
    answer = await http.get("/api/hosts", headers={"Authorization": f"Token {token}"})
    assert answer.status_code == 200


async def test_the_master_key_authenticates(http, target: Target, seeder):
    if target.master_key is None:
        pytest.skip("no master key configured for this target")
    answer = await http.get("/api/hosts", headers={"Authorization": f"Bearer {target.master_key}"})
    assert isinstance(bare(answer), list)


async def test_there_is_a_superadmin_and_a_second_one_is_refused(http, seeder):
    assert bare(await http.get("/api/users/adm/hassuperadmin")) is True
    answer = await http.post(
        "/api/users/adm/createsuperadmin",
        json={"username": "second-admin", "password": "second-pass"},
    )
    assert error(answer) == (400, "superadmin user already exists")
