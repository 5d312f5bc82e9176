"""gorilla/mux defaults for unknown paths and wrong methods (docs/netmaker-api.md section 1)."""

from __future__ import annotations


async def test_an_unknown_path_is_a_plain_text_404(http, auth):
    answer = await http.get("/api/kaput-not-no-such-route", headers=auth)
    assert answer.status_code == 404
    assert answer.text.strip() == "404 page not found"
    assert answer.headers["content-type"].startswith("text/plain")


async def test_a_known_path_with_another_method_is_an_empty_405(http, auth):
    answer = await http.patch("/api/v1/egress", headers=auth)
    assert answer.status_code == 405
    assert answer.content == b""
