"""Adapter over the Netmaker REST API (httpx2 + msgspec).

`NetmakerClient` logs in, keeps its token fresh and speaks the endpoints kaput-not needs, in core
types (`Host`, `NmNode`, `Egress`). Every failure is one of the errors below, each naming its
call in one line; `wire` holds the JSON shapes and stays internal.
"""

from kaput_not.netmaker.client import NetmakerClient, OnRequest
from kaput_not.netmaker.errors import (
    ApiError,
    BadResponse,
    CredentialsRejected,
    InvalidSettings,
    NetmakerError,
    NotJson,
    OutcomeUnknown,
    Unreachable,
)
from kaput_not.netmaker.settings import ClientSettings

__all__ = [
    "ApiError",
    "BadResponse",
    "ClientSettings",
    "CredentialsRejected",
    "InvalidSettings",
    "NetmakerClient",
    "NetmakerError",
    "NotJson",
    "OnRequest",
    "OutcomeUnknown",
    "Unreachable",
]
