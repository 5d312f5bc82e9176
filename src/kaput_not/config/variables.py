"""Every environment variable `run` reads, documented once: the README table, `run --help`
and the chart are checked against this list by tests."""

from __future__ import annotations

#: Every variable `run` reads: (name, default shown in docs, meaning). The README table is
#: checked against this list by a test, so the two cannot drift.
VARIABLES: tuple[tuple[str, str, str], ...] = (
    (
        "NETMAKER_API_URL",
        "(required)",
        "Netmaker API base URL, e.g. https://api.netmaker.example.com",
    ),
    ("NETMAKER_USERNAME", "(required)", "Netmaker user the controller logs in as (no MFA)"),
    ("NETMAKER_PASSWORD", "(required*)", "its password (*or NETMAKER_PASSWORD_FILE)"),
    ("NETMAKER_PASSWORD_FILE", "", "file holding the password, e.g. a mounted Secret"),
    ("NETMAKER_CA_FILE", "", "CA bundle that signed the Netmaker server certificate"),
    ("NETMAKER_INSECURE_SKIP_TLS_VERIFY", "false", "skip TLS verification (test servers only)"),
    ("NETMAKER_TIMEOUT", "10s", "deadline of one whole Netmaker request, its body included"),
    (
        "NETMAKER_CONCURRENCY",
        "4",
        "Netmaker writes in flight at once (the real server gains nothing beyond 4)",
    ),
    (
        "KUBECONFIG",
        "(auto)",
        "kubeconfig file or path list (a:b, merged as kubectl does); unset: the in-cluster "
        "service account, else ~/.kube/config",
    ),
    ("K8S_CLUSTER_NAME", "", "cluster name for multi-cluster scoping of rules"),
    ("LEADER_ELECTION_ENABLED", "(auto)", "true in-cluster, false locally"),
    ("LEADER_ELECTION_NAMESPACE", "(auto)", "pod namespace in-cluster, kube-system locally"),
    ("LEADER_ELECTION_ID", "kaput-not", "name of the Lease"),
    (
        "LEADER_ELECTION_LEASE_DURATION",
        "15s",
        "how long a lease is valid without renewal (whole seconds)",
    ),
    ("LEADER_ELECTION_RENEW_DEADLINE", "10s", "the leader gives up if it cannot renew in time"),
    ("LEADER_ELECTION_RETRY_PERIOD", "2s", "how often candidates try and the leader renews"),
    ("POD_NAME", "(hostname)", "replica identity (downward API)"),
    ("POD_NAMESPACE", "", "pod namespace (downward API), used for the Lease in-cluster"),
    ("CACHE_TTL", "30s", "how long Netmaker lists are reused"),
    ("RESYNC_PERIOD", "10m", "full reconcile of every node and orphan clean-up"),
    (
        "DELETE_GRACE",
        "15s",
        "a deleted node's rules (or a node's without pod CIDRs) wait this long",
    ),
    ("WORKERS", "4", "nodes reconciled in parallel"),
    ("EGRESS_METRIC", "500", "route metric put in each rule's nodes map"),
    (
        "MAX_DELETE_FRACTION",
        "0.5",
        "delete budget: largest share of our rules lost against their high-water mark",
    ),
    ("MAX_DELETE_MIN", "5", "delete budget: rules that may always be lost"),
    (
        "BUDGET_WINDOW",
        "24h",
        "how long the high-water mark of our rules and the deletes spent are remembered",
    ),
    ("ALLOW_MASS_DELETE", "false", "turn the delete and re-create budgets off"),
    ("METRICS_ADDRESS", ":8080", "listen address of /healthz, /readyz and /metrics"),
    ("LOG_LEVEL", "info", "debug, info, warning or error"),
    ("LOG_FORMAT", "(auto)", "json or text; json in-cluster, text locally"),
    ("DRY_RUN", "false", "plan and log, never write to Netmaker"),
    ("EVENTS_ENABLED", "true", "Kubernetes Events on Nodes that get no rule or got rules written"),
    (
        "HOST_ANNOTATION_ENABLED",
        "true",
        "honour the kaput-not.io/netmaker-host Node annotation (any Node patcher can set it)",
    ),
    (
        "HOST_ANNOTATION_HOSTS",
        "(any)",
        "regular expression the whole host name an annotation names must match",
    ),
    (
        "CLUSTER_POD_CIDRS",
        "",
        "comma-separated pod ranges of the cluster; a pod CIDR outside them is refused",
    ),
    (
        "NODE_SELECTOR",
        "(all nodes)",
        "label selector of the nodes that get rules, e.g. !node-role.kubernetes.io/control-plane; "
        "a node left out (or annotated kaput-not.io/ignore=true) is treated as gone",
    ),
)
