"""How to reach and log in to Netmaker, checked once before any call.

`ClientSettings.validate()` turns every unusable value into one `InvalidSettings` line naming
the environment variable to fix; the password never appears in a message or a repr.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import math
import re
import ssl
import urllib.parse
from dataclasses import dataclass, fields

import httpx2

from kaput_not.netmaker import errors

logger = logging.getLogger("kaput_not.netmaker")

TLS_HINT = (
    "set NETMAKER_CA_FILE to the CA that signed the server certificate, "
    "or NETMAKER_INSECURE_SKIP_TLS_VERIFY=true for a test server"
)
_HOSTNAME = re.compile(r"^\w([\w.-]*\w)?$")
#: NETMAKER_TIMEOUT's default: the deadline of one whole request, its body included.
DEFAULT_TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True, slots=True, repr=False)
class ClientSettings:
    """How to reach and log in to Netmaker. `validate()` before use; the client does it too."""

    api_url: str
    username: str
    password: str
    ca_file: str | None = None
    insecure_skip_tls_verify: bool = False
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
    #: Which replica is calling: the pod name, shown in the User-Agent.
    identity: str = ""
    #: X-Application-Name on login; anything but netclient/netmaker-desktop gets the token
    #: lifetime `jwt_validity_duration` (12 h by default).
    application_name: str = "kaput-not"
    #: Log in again this long before the token's `exp` (at most half its lifetime).
    token_refresh_margin_seconds: float = 60.0

    def validate(self) -> None:
        """Raise `InvalidSettings`, one line naming the setting, unless these can work."""
        problem = url_problem(self.api_url)
        if problem is not None:
            raise errors.InvalidSettings(f"NETMAKER_API_URL {shown_url(self.api_url)!r} {problem}")
        if not self.username:
            raise errors.InvalidSettings("NETMAKER_USERNAME is empty")
        if not self.password:
            raise errors.InvalidSettings("NETMAKER_PASSWORD is empty")
        if self.ca_file is not None and not self.ca_file:
            raise errors.InvalidSettings("NETMAKER_CA_FILE is set but empty")
        if self.ca_file is not None and self.insecure_skip_tls_verify:
            raise errors.InvalidSettings(
                "NETMAKER_CA_FILE and NETMAKER_INSECURE_SKIP_TLS_VERIFY are both set: pick one"
            )
        if not (math.isfinite(self.timeout_seconds) and self.timeout_seconds > 0):
            raise errors.InvalidSettings(f"timeout_seconds must be > 0, not {self.timeout_seconds}")
        margin = self.token_refresh_margin_seconds
        if not (math.isfinite(margin) and margin >= 0):
            raise errors.InvalidSettings(f"token_refresh_margin_seconds must be >= 0, not {margin}")
        for name in ("identity", "application_name"):
            value = getattr(self, name)
            if not value.isprintable():
                raise errors.InvalidSettings(f"{name} {value!r} holds control characters")
        if not self.application_name.strip():
            raise errors.InvalidSettings("application_name is empty")

    def __repr__(self) -> str:
        shown = ", ".join(
            f"{f.name}=<hidden>" if f.name == "password" else f"{f.name}={getattr(self, f.name)!r}"
            for f in fields(self)
        )
        return f"ClientSettings({shown})"


def url_problem(url: str) -> str | None:
    """What is wrong with `url` as the API base URL, or None."""
    if not url:
        return "is empty"
    if any(ch.isspace() or not ch.isprintable() for ch in url):
        return "holds whitespace or control characters"
    if "://" not in url:
        return "has no scheme: write https://host[:port]"
    try:
        parts = urllib.parse.urlsplit(url)
        _ = parts.port  # raises on a port that is not a number in 0-65535
    except ValueError as exc:
        return f"cannot be parsed: {exc}"
    if parts.scheme.lower() not in ("http", "https"):
        return f"has scheme {parts.scheme!r}: only http and https work"
    if parts.username is not None or parts.password is not None:
        return "holds credentials: set NETMAKER_USERNAME / NETMAKER_PASSWORD instead"
    host = parts.hostname or ""
    if not host:
        return "has no host"
    if not _HOSTNAME.match(host):
        try:
            ipaddress.ip_address(host)
        except ValueError:
            return f"has an invalid host {host!r}"
    dns_problem = _dns_name_problem(url, host)
    if dns_problem is not None:
        return dns_problem
    if parts.query or parts.fragment or url.endswith(("?", "#")):
        return "has a query or fragment: give scheme, host, port and an optional path prefix only"
    if "\\" in url:
        return "holds a backslash"
    return None


def _dns_name_problem(url: str, host: str) -> str | None:
    """A host name that parses but cannot be looked up: non-ASCII digits (IDNA refuses them)
    or a label over 63 characters (the resolver refuses it) escaped at the first request."""
    with contextlib.suppress(ValueError):
        ipaddress.ip_address(host)
        return None
    try:
        ascii_host = httpx2.URL(url).raw_host.decode("ascii")
    except (httpx2.InvalidURL, UnicodeDecodeError):
        return f"has a host {host!r} that is not a valid international domain name"
    labels = ascii_host.rstrip(".").split(".")
    if len(ascii_host) > 253 or any(not 1 <= len(label) <= 63 for label in labels):
        return f"has a host {host!r} with a label over 63 characters or an empty one"
    return None


def warn_if_cleartext(url: str) -> None:
    """One WARNING for a plain-http URL off this machine: the login sends the password, and
    every request the token, readable by anyone on the path. Loopback hosts are exempt: the
    bytes never leave the machine (the test suites and the demo use http on 127.0.0.1)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme.lower() != "http":
        return
    host = (parts.hostname or "").lower()
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost" or host.endswith(".localhost")
    if not loopback:
        logger.warning(
            "NETMAKER_API_URL %s is plain http: the Netmaker password and token travel "
            "unencrypted; use https://",
            shown_url(url),
        )


def shown_url(url: str) -> str:
    """`url` fit for a message: any user:password@ part masked, one short line."""
    return errors.one_line(re.sub(r"//[^/@]*@", "//***@", url), 120)


def tls_verify(settings: ClientSettings) -> ssl.SSLContext | bool:
    if settings.insecure_skip_tls_verify:
        logger.warning(
            "TLS certificate verification is OFF (NETMAKER_INSECURE_SKIP_TLS_VERIFY): "
            "anyone on the path can read the Netmaker password; use NETMAKER_CA_FILE instead"
        )
        return False
    if settings.ca_file is None:
        return True
    try:
        return ssl.create_default_context(cafile=settings.ca_file)
    except OSError as exc:  # ssl.SSLError is an OSError too
        raise errors.InvalidSettings(
            f"NETMAKER_CA_FILE {settings.ca_file!r} cannot be used: {exc.strerror or exc}"
        ) from exc
