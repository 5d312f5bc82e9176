"""The errors the Netmaker client raises, so callers never see httpx2's.

Every failed call raises one of these, chained (`raise ... from exc`) to what caused it. Each one
names the call that failed and renders as ONE line, "<call>: <cause> (<hint>)", because the CLI
prints it as it is and a log line must stay a line. Callers branch on the class and on
`retryable`, never on the text::

    Exception
    ├── NetmakerError                .call, .retryable
    │   ├── CredentialsRejected      login refused; terminal, a configuration error
    │   ├── Unreachable              never delivered (DNS, refused, TLS, connect timeout); retry
    │   ├── OutcomeUnknown           sent, but no complete answer; a write may have happened
    │   ├── ApiError                 the server answered an error: .status .code .server_message
    │   │   └── NotJson              it answered, but not with JSON (a proxy page, a wrong URL)
    │   └── BadResponse              a 2xx we cannot read: empty, truncated, wrong shape; retry
    └── ValueError
        └── InvalidSettings          bad client settings, raised before any call is made

Why the split matters to callers:
- `Unreachable` means the server state did not change, so retrying is always safe.
- `OutcomeUnknown` after a write means the change may or may not have been applied: a cache must
  forget what it knew, and a retried create may leave a duplicate for the planner to remove.
- `ApiError` is retryable for 5xx only. A 4xx is the same on every try.
- `CredentialsRejected` and `InvalidSettings` need a person, so nothing retries them.

No message here ever holds a password, a token or an Authorization header: the client hands in
only server texts and body snippets it has already redacted, and every text is folded to one
short line.
"""

from __future__ import annotations

import re

#: Longest body snippet quoted in a message: enough to recognise a proxy page, never a blob.
SNIPPET_CHARS = 80
#: Longest server message quoted in full.
MESSAGE_CHARS = 200

_WHITESPACE = re.compile(r"\s+")


def one_line(text: str, limit: int = MESSAGE_CHARS) -> str:
    """`text` folded to a single line of at most `limit` characters (control characters dropped)."""
    printable = "".join(ch if ch.isprintable() else " " for ch in text)
    folded = _WHITESPACE.sub(" ", printable).strip()
    if len(folded) > limit:
        return folded[: limit - 1].rstrip() + "…"
    return folded


def snippet(body: str, limit: int = SNIPPET_CHARS) -> str:
    """The start of a response body, fit for a message: one line, quoted, short."""
    if not body.strip():
        return "empty body"
    return repr(one_line(body, limit))


class NetmakerError(Exception):
    """A Netmaker call failed. `call` is "<METHOD> <path>", e.g. "GET /api/hosts"."""

    def __init__(self, call: str, cause: str, hint: str | None = None) -> None:
        self.call = call
        self.cause = one_line(cause)
        self.hint = one_line(hint) if hint else None
        super().__init__(self.call, self.cause, self.hint)

    @property
    def retryable(self) -> bool:
        """Whether the same call may succeed later without anyone changing anything."""
        return False

    def __str__(self) -> str:
        hint = f" ({self.hint})" if self.hint else ""
        return f"{self.call}: {self.cause}{hint}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r})"


class CredentialsRejected(NetmakerError):
    """The login was refused: wrong password, unknown or disabled user, SSO or MFA account.

    Terminal: retrying cannot fix a configuration error and only fills the server's logs.
    """

    def __init__(self, call: str, reason: str, *, status: int, hint: str | None = None) -> None:
        self.status = status
        super().__init__(
            call,
            f"credentials rejected: {reason}",
            hint or "check NETMAKER_USERNAME / NETMAKER_PASSWORD",
        )


class Unreachable(NetmakerError):
    """The request never reached Netmaker; the server state did not change."""

    @property
    def retryable(self) -> bool:
        return True


class OutcomeUnknown(NetmakerError):
    """The request was sent but no complete answer came back; a write may or may not be done."""

    @property
    def retryable(self) -> bool:
        return True


class ApiError(NetmakerError):
    """Netmaker answered with an error.

    `status` is the HTTP status; `code` the envelope's `Code` when there was one (it can differ
    from `status`: a 200 can carry `"Code": 500`); `server_message` the envelope's `Message`.
    """

    def __init__(
        self,
        call: str,
        *,
        status: int,
        code: int | None = None,
        server_message: str = "",
        cause: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.status = status
        self.code = code
        self.server_message = one_line(server_message)
        if cause is None:
            inner = f" with Code {code}" if code is not None and code != status else ""
            cause = f"HTTP {status}{inner}: {self.server_message or 'no message'}"
        super().__init__(call, cause, hint)

    @property
    def retryable(self) -> bool:
        return max(self.status, self.code or 0) >= 500


class NotJson(ApiError):
    """Something answered, but not with JSON: a proxy's error page, a dashboard, a wrong URL."""

    def __init__(
        self, call: str, *, status: int, content_type: str, body: str, hint: str | None = None
    ) -> None:
        self.content_type = content_type
        kind = one_line(content_type, 60) or "no Content-Type"
        super().__init__(
            call,
            status=status,
            server_message=body,
            cause=f"HTTP {status} {kind}, not JSON: {body}",
            hint=hint,
        )


class BadResponse(NetmakerError):
    """A successful status whose body we cannot read: empty, truncated, not JSON, wrong shape.

    After a write the change was made (the server said so) but its result is unknown to us.
    """

    def __init__(self, call: str, detail: str, *, status: int) -> None:
        self.status = status
        super().__init__(call, f"HTTP {status} answer unreadable: {detail}")

    @property
    def retryable(self) -> bool:
        return True


class InvalidSettings(ValueError):
    """The client settings cannot work (malformed URL, unreadable CA file); one line, no secret."""

    def __init__(self, message: str) -> None:
        super().__init__(one_line(message, 300))
