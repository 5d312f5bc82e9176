"""A Kubernetes API server stand-in for tests, the demo and benchmarks: nodes and Leases.

It serves, over real HTTP on 127.0.0.1, what kaput-not's client uses, the way a real
kube-apiserver answers it (plain JSON; see each module for the exact rules):

- ``GET /api/v1/nodes``: paged lists from a consistent snapshot, continue tokens, 410 Expired
  for a token older than the retained history (:mod:`.paging`);
- ``GET /api/v1/nodes?watch=1``: chunked watch streams with replay from a resourceVersion,
  bookmarks, ``timeoutSeconds``, 410 Expired as an ERROR event or an HTTP 410 (:mod:`.watch`);
- ``GET /api/v1/nodes/{name}``;
- ``coordination.k8s.io/v1`` Leases: get, list, create, replace with optimistic concurrency
  (:mod:`.leases`);
- every failure as a ``Status`` object (:mod:`.status`), one global resourceVersion counter
  (:mod:`.state`), realistic Node objects of about 4 KB (:mod:`.nodes`);

plus a direct, thread-safe seeding API (``kube.state``), fault injection (``kube.faults``) and a
request log (``kube.log``). It imports nothing from kaput-not's own Kubernetes client, so it
cannot share that client's mistakes.

What it does not model: TLS and client certificates; authentication beyond one bearer token,
RBAC (no 403), impersonation; label and field selectors (400), ``resourceVersionMatch``,
``sendInitialEvents``; server-side apply, PATCH, DELETE, dry-run, managedFields; every resource
but nodes (read-only over HTTP) and Leases; namespace lifecycle beyond "exists"; finalizers,
graceful deletion, garbage collection; admission webhooks; API Priority and Fairness (inject a
429 instead); protobuf, YAML and table output; two separate history windows (the real watch
cache and etcd compaction are one history here); HTTP/2.

Start here: :class:`KubeApiServer`.
"""

from .apiserver import KubeApiServer, kubeconfig_text
from .faults import FaultKind, FaultRule, Faults
from .nodes import NodeRecord
from .requestlog import LogEntry, RequestLog
from .routes import (
    CREATE_LEASE,
    GET_LEASE,
    GET_NODE,
    LIST_ALL_LEASES,
    LIST_LEASES,
    LIST_NODES,
    UPDATE_LEASE,
    WATCH_NODES,
)
from .state import KubeState
from .status import StatusError

__all__ = [
    "CREATE_LEASE",
    "GET_LEASE",
    "GET_NODE",
    "LIST_ALL_LEASES",
    "LIST_LEASES",
    "LIST_NODES",
    "UPDATE_LEASE",
    "WATCH_NODES",
    "FaultKind",
    "FaultRule",
    "Faults",
    "KubeApiServer",
    "KubeState",
    "LogEntry",
    "NodeRecord",
    "RequestLog",
    "StatusError",
    "kubeconfig_text",
]
