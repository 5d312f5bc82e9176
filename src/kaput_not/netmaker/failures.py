"""A request that got no complete answer, as one clear error: Unreachable when nothing reached
the server (so retrying is safe), OutcomeUnknown when a change may have landed, with a hint for
a failed TLS handshake (the CA settings, or the URL's scheme)."""

from __future__ import annotations

import ssl

import httpcore2
import httpx2

from kaput_not.netmaker import errors
from kaput_not.netmaker.progress import Progress
from kaput_not.netmaker.redact import Redactor
from kaput_not.netmaker.settings import TLS_HINT, ClientSettings, shown_url

#: What a request that got no complete answer can raise, from either way of sending.
NO_ANSWER_ERRORS = (
    httpx2.HTTPError,
    httpx2.InvalidURL,
    httpcore2.TimeoutException,
    httpcore2.NetworkError,
    httpcore2.ProtocolError,
    httpcore2.UnsupportedProtocol,
    httpcore2.ProxyError,
)

_UNSENDABLE = (
    httpx2.InvalidURL,
    httpx2.UnsupportedProtocol,
    httpx2.ProxyError,
    httpcore2.UnsupportedProtocol,
    httpcore2.ProxyError,
)
_NO_ANSWER_IN_TIME = (
    httpx2.ReadTimeout,
    httpx2.WriteTimeout,
    httpcore2.ReadTimeout,
    httpcore2.WriteTimeout,
)

#: OpenSSL's words for a TLS handshake answered by something that does not speak TLS: an
#: https:// URL on a plain-HTTP port. A CA file does not help there; the scheme does.
_NOT_TLS = (
    "WRONG_VERSION_NUMBER",
    "RECORD_LAYER_FAILURE",
    "PACKET_LENGTH_TOO_LONG",
    "HTTP_REQUEST",
)
PLAIN_HTTP_HINT = (
    "the server does not answer in TLS there: if it serves plain HTTP, use http:// in "
    "NETMAKER_API_URL"
)
_CHECK_URL = "check NETMAKER_API_URL and that Netmaker is up"
_MAYBE_APPLIED = "the change may or may not have been applied"


class NoAnswer:
    """Names what happened to a request that got no complete answer."""

    __slots__ = ("_redact", "_settings")

    def __init__(self, settings: ClientSettings, redact: Redactor) -> None:
        self._settings = settings
        self._redact = redact

    def error(self, call: str, method: str, exc: Exception) -> errors.NetmakerError:
        """The error for one of `NO_ANSWER_ERRORS`."""
        detail = self._redact(str(exc)) or type(exc).__name__
        where = shown_url(self._settings.api_url)
        limit = f"{self._settings.timeout_seconds:g} s"
        if isinstance(exc, httpx2.PoolTimeout | httpcore2.PoolTimeout):
            return errors.Unreachable(call, f"no free connection within {limit} (pool timeout)")
        if isinstance(exc, httpx2.ConnectTimeout | httpcore2.ConnectTimeout):
            return errors.Unreachable(call, f"connecting to {where} timed out after {limit}")
        if isinstance(exc, httpx2.ConnectError | httpcore2.ConnectError):
            if _is_tls_failure(exc):
                return errors.Unreachable(
                    call, f"TLS with {where} failed: {detail}", _tls_hint(exc)
                )
            return errors.Unreachable(call, f"cannot connect to {where}: {detail}", _CHECK_URL)
        if isinstance(exc, _UNSENDABLE):
            return errors.Unreachable(call, f"cannot send to {where}: {detail}")
        if isinstance(exc, _NO_ANSWER_IN_TIME):
            cause = f"no complete answer within {limit} ({type(exc).__name__})"
        else:
            cause = f"no complete answer ({type(exc).__name__}: {detail})"
        return errors.OutcomeUnknown(call, cause, None if method == "GET" else _MAYBE_APPLIED)

    def deadline(self, call: str, method: str, progress: Progress) -> errors.NetmakerError:
        """The whole-request deadline passed: Unreachable if nothing was sent (as far as the
        trace events tell), else OutcomeUnknown."""
        limit = f"{self._settings.timeout_seconds:g} s"
        where = f"the deadline (NETMAKER_TIMEOUT) passed while {progress.phase}"
        if progress.traced and not progress.sent:
            return errors.Unreachable(call, f"nothing sent within {limit}: {where}", _CHECK_URL)
        maybe = None if method == "GET" else _MAYBE_APPLIED
        return errors.OutcomeUnknown(call, f"no complete answer within {limit}: {where}", maybe)


def _is_tls_failure(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLError):
            return True
        seen = seen.__cause__ or seen.__context__
    return "SSL" in str(exc) or "CERTIFICATE" in str(exc).upper()


def _tls_hint(exc: BaseException) -> str | None:
    """The hint for a failed handshake: the CA settings only for a certificate that could not
    be verified; the scheme for a server that does not speak TLS; none for the rest."""
    texts: list[str] = []
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            return TLS_HINT
        texts.append(str(seen).upper())
        seen = seen.__cause__ or seen.__context__
    text = " ".join(texts)
    if "CERTIFICATE_VERIFY_FAILED" in text or "CERTIFICATE VERIFY FAILED" in text:
        return TLS_HINT
    if any(words in text for words in _NOT_TLS):
        return PLAIN_HTTP_HINT
    return None
