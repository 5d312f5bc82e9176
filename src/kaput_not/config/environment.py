"""Settings for `kaput-not run`, read once from the environment and checked before anything starts.

The Go version's variable names come first so a deployment can switch by changing the image;
ours add what a production controller needs. Every problem is one line that names the
variable and says what is expected (`ConfigError`); the CLI prints it and exits 2.

In-cluster detection follows the Go version: the service-account namespace file exists.
In-cluster, leader election is on and its namespace is the pod's; locally it is off and the
namespace is kube-system.

A variable left unset takes its subject's default (tree.py), read here from a default instance.
"""

from __future__ import annotations

import os
import re
import socket
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path

from kaput_not.config.parse import ConfigError, Reader, split_address
from kaput_not.config.tree import (
    Kubernetes,
    LeaderElection,
    Netmaker,
    Output,
    Reconcile,
    Safety,
    Settings,
)
from kaput_not.core.egress import InvalidCidr, check_cluster_name, normalize_cidr
from kaput_not.core.labels import InvalidSelector, check_selector
from kaput_not.netmaker.settings import shown_url, url_problem

SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")

_NETMAKER = Netmaker(api_url="", username="", password="")
_KUBERNETES = Kubernetes()
_ELECTION = LeaderElection(enabled=False, namespace="")
_SAFETY = Safety()
_RECONCILE = Reconcile()
_OUTPUT = Output()


def load(
    env: Mapping[str, str] | None = None,
    *,
    namespace_file: Path = SERVICE_ACCOUNT_NAMESPACE,
    hostname: Callable[[], str] = socket.gethostname,
) -> Settings:
    """Settings from `env` (default: os.environ); raises ConfigError on the first problem."""
    r = Reader(os.environ if env is None else env)
    url = r.required(
        "NETMAKER_API_URL", "set it to the Netmaker API URL, e.g. https://api.netmaker.example.com"
    )
    problem = url_problem(url)
    if problem is not None:
        raise ConfigError(f"NETMAKER_API_URL {shown_url(url)!r} {problem}")
    username = r.required("NETMAKER_USERNAME", "set it to the Netmaker user kaput-not logs in as")
    password = _password(r)
    in_cluster, pod_namespace = _in_cluster(r, namespace_file)
    cluster = r.text("K8S_CLUSTER_NAME")
    if cluster is not None:
        try:
            check_cluster_name(cluster)
        except ValueError as exc:
            raise ConfigError(f"K8S_CLUSTER_NAME: {exc}") from None
    election = _leader_election(r, in_cluster, pod_namespace, hostname)
    log_level = (r.text("LOG_LEVEL", _OUTPUT.log_level) or _OUTPUT.log_level).upper()
    if log_level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
        raise ConfigError(f"LOG_LEVEL={log_level.lower()!r} must be debug, info, warning or error")
    log_format = (r.text("LOG_FORMAT") or ("json" if in_cluster else "text")).lower()
    if log_format not in {"json", "text"}:
        raise ConfigError(f"LOG_FORMAT={log_format!r} must be json or text")
    metrics_address = r.text("METRICS_ADDRESS") or _OUTPUT.metrics_address
    split_address(metrics_address)
    ca_file = r.text("NETMAKER_CA_FILE")
    if ca_file is not None and not Path(ca_file).is_file():
        raise ConfigError(f"NETMAKER_CA_FILE={ca_file!r} is not a readable file")
    # Read in the order the variables were always read, so the first problem reported among
    # several stays the same.
    kubeconfig = r.text("KUBECONFIG")
    netmaker = Netmaker(
        api_url=url,
        username=username,
        password=password,
        ca_file=ca_file,
        insecure_skip_tls_verify=r.flag(
            "NETMAKER_INSECURE_SKIP_TLS_VERIFY", _NETMAKER.insecure_skip_tls_verify
        ),
        timeout_seconds=r.seconds("NETMAKER_TIMEOUT", _NETMAKER.timeout_seconds),
        concurrency=r.integer("NETMAKER_CONCURRENCY", _NETMAKER.concurrency, low=1, high=64),
        cache_ttl_seconds=r.seconds("CACHE_TTL", _NETMAKER.cache_ttl_seconds, zero=True),
    )
    reconcile = Reconcile(
        resync_period_seconds=r.seconds(
            "RESYNC_PERIOD", _RECONCILE.resync_period_seconds, minimum=1
        ),
        delete_grace_seconds=r.seconds("DELETE_GRACE", _RECONCILE.delete_grace_seconds, zero=True),
        workers=r.integer("WORKERS", _RECONCILE.workers, low=1, high=64),
        egress_metric=r.integer("EGRESS_METRIC", _RECONCILE.egress_metric, low=1, high=65535),
    )
    safety = Safety(
        max_delete_fraction=r.fraction("MAX_DELETE_FRACTION", _SAFETY.max_delete_fraction),
        max_delete_floor=r.integer(
            "MAX_DELETE_MIN", _SAFETY.max_delete_floor, low=0, high=1_000_000
        ),
        allow_mass_delete=r.flag("ALLOW_MASS_DELETE", _SAFETY.allow_mass_delete),
        budget_window_seconds=r.seconds("BUDGET_WINDOW", _SAFETY.budget_window_seconds, minimum=1),
        dry_run=r.flag("DRY_RUN", _SAFETY.dry_run),
    )
    output = Output(
        metrics_address=metrics_address,
        log_level=log_level,
        log_format=log_format,
        events=r.flag("EVENTS_ENABLED", _OUTPUT.events),
    )
    kubernetes = Kubernetes(
        kubeconfig=kubeconfig,
        in_cluster=in_cluster,
        cluster_name=cluster,
        host_annotation=r.flag("HOST_ANNOTATION_ENABLED", _KUBERNETES.host_annotation),
        host_annotation_hosts=_pattern(r, "HOST_ANNOTATION_HOSTS"),
        cluster_pod_cidrs=_cidrs(r, "CLUSTER_POD_CIDRS"),
        node_selector=_selector(r, "NODE_SELECTOR"),
    )
    return Settings(
        netmaker=netmaker,
        leader_election=election,
        kubernetes=kubernetes,
        safety=safety,
        reconcile=reconcile,
        output=output,
    )


def _selector(r: Reader, name: str) -> str:
    raw = r.text(name)
    if raw is None:
        return ""
    try:
        return check_selector(raw)
    except InvalidSelector as exc:
        raise ConfigError(
            f"{name}={raw!r} is not a label selector: {exc}; use e.g. "
            "!node-role.kubernetes.io/control-plane,kubernetes.io/os=linux"
        ) from None


def _pattern(r: Reader, name: str) -> re.Pattern[str] | None:
    raw = r.text(name)
    if raw is None:
        return None
    try:
        return re.compile(raw)
    except re.error as exc:
        raise ConfigError(f"{name}={raw!r} is not a valid regular expression: {exc}") from None


def _cidrs(r: Reader, name: str) -> tuple[str, ...]:
    raw = r.text(name)
    if raw is None:
        return ()
    found: list[str] = []
    for item in (part.strip() for part in raw.split(",")):
        if not item:
            continue
        try:
            found.append(normalize_cidr(item))
        except InvalidCidr as exc:
            raise ConfigError(f"{name}: {exc}; use e.g. 10.244.0.0/16,fd00:10:244::/56") from None
    return tuple(found)


#: The Go chart's values.yaml ships this as netmaker.password; a release switched to this chart
#: with that values file would otherwise log in with it and fail with a bare 401.
PLACEHOLDER_PASSWORD = "REPLACE-WITH-ACTUAL-PASSWORD"


def _password(r: Reader) -> str:
    secret = _password_as_given(r)
    if secret.strip() == PLACEHOLDER_PASSWORD:
        raise ConfigError(
            f"the Netmaker password is the Go chart's placeholder {PLACEHOLDER_PASSWORD}: set "
            "the real one (chart: netmaker.password or netmaker.existingSecret)"
        )
    return secret


def _password_as_given(r: Reader) -> str:
    inline = r.raw("NETMAKER_PASSWORD")
    path = r.text("NETMAKER_PASSWORD_FILE")
    if inline and path:
        raise ConfigError("NETMAKER_PASSWORD and NETMAKER_PASSWORD_FILE are both set: use one")
    if path is not None:
        try:
            secret = Path(path).read_text(encoding="utf-8").strip("\r\n")
        except OSError as exc:
            raise ConfigError(
                f"NETMAKER_PASSWORD_FILE={path!r} cannot be read: {exc.strerror}"
            ) from None
        except UnicodeDecodeError:
            raise ConfigError(
                f"NETMAKER_PASSWORD_FILE={path!r} is not UTF-8 text: write the password as UTF-8"
            ) from None
        if not secret:
            raise ConfigError(f"NETMAKER_PASSWORD_FILE={path!r} is empty")
        return secret
    if not inline:
        raise ConfigError(
            "NETMAKER_PASSWORD is not set: set it, or NETMAKER_PASSWORD_FILE to a file holding it"
        )
    return inline


def _in_cluster(r: Reader, namespace_file: Path) -> tuple[bool, str | None]:
    try:
        namespace = namespace_file.read_text(encoding="utf-8").strip() or None
    except OSError:
        return False, r.text("POD_NAMESPACE")
    return True, r.text("POD_NAMESPACE", namespace)


def _leader_election(
    r: Reader, in_cluster: bool, pod_namespace: str | None, hostname: Callable[[], str]
) -> LeaderElection:
    enabled = r.flag("LEADER_ELECTION_ENABLED", in_cluster)
    namespace = r.text("LEADER_ELECTION_NAMESPACE") or (pod_namespace if in_cluster else None)
    lease = r.seconds("LEADER_ELECTION_LEASE_DURATION", _ELECTION.lease_seconds)
    renew = r.seconds("LEADER_ELECTION_RENEW_DEADLINE", _ELECTION.renew_deadline_seconds)
    retry = r.seconds("LEADER_ELECTION_RETRY_PERIOD", _ELECTION.retry_period_seconds)
    if not lease > renew > retry:
        raise ConfigError(
            "LEADER_ELECTION_LEASE_DURATION > LEADER_ELECTION_RENEW_DEADLINE > "
            f"LEADER_ELECTION_RETRY_PERIOD must hold, got {lease:g}s, {renew:g}s, {retry:g}s"
        )
    if lease != int(lease):
        # The Lease carries whole seconds: rounded down, it could fall below the renew deadline.
        raise ConfigError(
            f"LEADER_ELECTION_LEASE_DURATION={lease:g}s must be a whole number of seconds "
            "(the Lease carries whole seconds), e.g. 15s"
        )
    identity = r.text("POD_NAME") or f"{hostname()}_{uuid.uuid4().hex[:8]}"
    # It goes into HTTP headers (User-Agent) and the Lease's holderIdentity: ASCII only.
    if not (identity.isascii() and identity.isprintable()) or any(c.isspace() for c in identity):
        raise ConfigError(
            f"POD_NAME={identity!r} must be printable ASCII without spaces, like a pod name "
            "(set it from the downward API: metadata.name)"
        )
    return LeaderElection(
        enabled=enabled,
        namespace=namespace or "kube-system",
        name=r.text("LEADER_ELECTION_ID") or _ELECTION.name,
        identity=identity,
        lease_seconds=lease,
        renew_deadline_seconds=renew,
        retry_period_seconds=retry,
    )
