"""Hiding the client's secrets (the password and the current token) from every text it quotes.

Error texts from the server, and the headers quoted in a message (Content-Type, Location), pass
through a `Redactor` before they reach an error: nothing the client raises or logs holds either.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from collections.abc import Callable

#: Shorter secrets are hidden only where they stand alone: replacing every occurrence of a
#: two-letter password would mangle ordinary words and hide nothing.
_SHORT_SECRET = 6


def redact(text: str, secret: str) -> str:
    """`text` with `secret` replaced by <hidden>, raw or as it reads inside a JSON string."""
    if not secret:
        return text
    for form in _written_forms(secret):
        if len(secret) >= _SHORT_SECRET:
            text = text.replace(form, "<hidden>")
        else:
            alone = rf"(?<![A-Za-z0-9]){re.escape(form)}(?![A-Za-z0-9])"
            text = re.sub(alone, "<hidden>", text)
    return text


_GO_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"}


def _written_forms(secret: str) -> list[str]:
    """The secret raw and JSON-escaped, as our encoder, Python's or Go's would write it.

    A server that echoes the login body (an error quoting the request) sends the escaped form:
    a password holding `"`, `\\` or a tab would slip past a search for the raw text; a
    `Location` header reflecting it sends it percent-encoded. Longest first, so a form never
    hides part of a longer one.
    """
    escaped = json.dumps(secret, ensure_ascii=False)[1:-1]
    go = escaped
    for char, code in _GO_ESCAPES.items():
        go = go.replace(char, code)
    quoted = (urllib.parse.quote(secret, safe=""), urllib.parse.quote_plus(secret))
    forms = {secret, escaped, json.dumps(secret)[1:-1], go, *quoted}
    return sorted(forms, key=len, reverse=True)


class Redactor:
    """`redactor(text)`: `text` without the password, nor the token as it is at that moment."""

    __slots__ = ("_password", "_token")

    def __init__(self, password: str, token: Callable[[], str | None]) -> None:
        self._password = password
        self._token = token

    def __call__(self, text: str) -> str:
        for secret in (self._password, self._token() or ""):
            text = redact(text, secret)
        return text
