"""An emulated Netmaker v1.5.1 CE server for tests, the demo and benchmarks.

It follows ``docs/netmaker-api.md`` (the server's real behaviour, quirks included) over real HTTP on
127.0.0.1, with a direct seeding API, a request log and fault injection. It imports nothing
from kaput-not's own Netmaker client, so it cannot share that client's mistakes; the contract
suite in ``tests/contract`` runs against it and against a real server.

Start here: :class:`NetmakerEmulator`. Run it alone with ``python -m kaput_not_standins.netmaker``.
"""

from .egress import normalize_cidr
from .emulator import NetmakerEmulator
from .errors import ApiError
from .faults import FaultKind, FaultRule, Faults
from .model import ZERO_UUID, HostRecord, NetworkRecord, NodeRecord
from .requestlog import LogEntry, RequestLog
from .state import NetmakerState, Settings

__all__ = [
    "ZERO_UUID",
    "ApiError",
    "FaultKind",
    "FaultRule",
    "Faults",
    "HostRecord",
    "LogEntry",
    "NetmakerEmulator",
    "NetmakerState",
    "NetworkRecord",
    "NodeRecord",
    "RequestLog",
    "Settings",
    "normalize_cidr",
]
