"""The error tree: one line each, naming the call, retryable where a retry can help."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kaput_not.netmaker import errors

CALL = "GET /api/hosts"


@pytest.mark.parametrize(
    ("error", "retryable"),
    [
        pytest.param(errors.NetmakerError(CALL, "boom"), False, id="base"),
        pytest.param(
            errors.CredentialsRejected(CALL, "HTTP 400 incorrect credentials", status=400),
            False,
            id="credentials-rejected",
        ),
        pytest.param(errors.Unreachable(CALL, "connection refused"), True, id="unreachable"),
        pytest.param(errors.OutcomeUnknown(CALL, "read timeout"), True, id="outcome-unknown"),
        pytest.param(errors.ApiError(CALL, status=500, code=500), True, id="api-5xx"),
        pytest.param(errors.ApiError(CALL, status=400, code=400), False, id="api-4xx"),
        pytest.param(errors.ApiError(CALL, status=200, code=500), True, id="api-code-500-in-200"),
        pytest.param(errors.ApiError(CALL, status=200, code=400), False, id="api-code-400-in-200"),
        pytest.param(
            errors.NotJson(CALL, status=502, content_type="text/html", body="'<html>'"),
            True,
            id="not-json-502",
        ),
        pytest.param(
            errors.NotJson(CALL, status=404, content_type="text/plain", body="'404'"),
            False,
            id="not-json-404",
        ),
        pytest.param(errors.BadResponse(CALL, "empty body", status=200), True, id="bad-response"),
    ],
)
def test_retryable_follows_the_class(error: errors.NetmakerError, retryable: bool) -> None:
    assert error.retryable is retryable
    assert error.call == CALL


def test_message_is_call_cause_and_hint() -> None:
    error = errors.Unreachable(CALL, "cannot connect", "is Netmaker up?")
    assert str(error) == "GET /api/hosts: cannot connect (is Netmaker up?)"
    assert repr(error) == "Unreachable('GET /api/hosts: cannot connect (is Netmaker up?)')"


def test_message_without_hint_has_no_parentheses() -> None:
    assert str(errors.OutcomeUnknown(CALL, "read timeout")) == "GET /api/hosts: read timeout"


def test_api_error_names_status_code_and_server_message() -> None:
    error = errors.ApiError("POST /api/v1/egress", status=400, code=400, server_message="bad")
    assert str(error) == "POST /api/v1/egress: HTTP 400: bad"
    inner = errors.ApiError(CALL, status=200, code=500, server_message="db locked")
    assert str(inner) == "GET /api/hosts: HTTP 200 with Code 500: db locked"
    assert (inner.status, inner.code, inner.server_message) == (200, 500, "db locked")


def test_not_json_is_an_api_error_naming_the_content_type() -> None:
    error = errors.NotJson(
        CALL, status=502, content_type="text/html", body="'<html>'", hint="proxy?"
    )
    assert isinstance(error, errors.ApiError)
    assert str(error) == "GET /api/hosts: HTTP 502 text/html, not JSON: '<html>' (proxy?)"


def test_credentials_rejected_points_at_the_settings() -> None:
    error = errors.CredentialsRejected(CALL, "HTTP 401 record not found", status=401)
    assert "NETMAKER_USERNAME / NETMAKER_PASSWORD" in str(error)
    assert not isinstance(error, errors.ApiError), "must not be caught as a plain API error"


def test_invalid_settings_is_a_value_error_on_one_line() -> None:
    error = errors.InvalidSettings("NETMAKER_API_URL 'x'\nhas no scheme")
    assert isinstance(error, ValueError)
    assert str(error) == "NETMAKER_API_URL 'x' has no scheme"


def test_one_line_folds_control_characters_and_truncates() -> None:
    assert errors.one_line("a\r\n\tb\x00c  d") == "a b c d"
    folded = errors.one_line("x" * 500, 80)
    assert len(folded) == 80
    assert folded.endswith("…")


def test_snippet_quotes_a_short_start_of_the_body() -> None:
    assert errors.snippet("") == "empty body"
    assert errors.snippet(" \n") == "empty body"
    assert errors.snippet("<html>\n<body>") == "'<html> <body>'"
    assert len(errors.snippet("y" * 10_000)) <= errors.SNIPPET_CHARS + 2


@given(st.text(), st.text(), st.integers(min_value=100, max_value=599))
def test_any_server_text_renders_as_one_bounded_line(message: str, body: str, status: int) -> None:
    for error in (
        errors.ApiError(CALL, status=status, server_message=message),
        errors.NotJson(CALL, status=status, content_type=message, body=errors.snippet(body)),
        errors.BadResponse(CALL, message, status=status),
    ):
        text = str(error)
        assert text.startswith(f"{CALL}: ")
        assert len(text.splitlines()) == 1
        assert len(text) < 600


def test_a_short_password_is_hidden_where_it_stands_alone_without_mangling_words():
    from kaput_not.netmaker.redact import redact

    assert redact("All connection attempts failed", "p") == "All connection attempts failed"
    assert redact("bad password p given", "p") == "bad password <hidden> given"
    assert redact("token=abc123def, again abc123def", "abc123def") == (
        "token=<hidden>, again <hidden>"
    )
    assert redact("xsecret1x", "secret1") == "x<hidden>x"
