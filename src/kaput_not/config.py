"""Settings for `kaput-not run`, read once from the environment and checked before anything starts.

The Go version's variable names come first so a deployment can switch by changing the image;
ours add what a production controller needs. Every problem is one line that names the
variable and says what is expected (`ConfigError`); the CLI prints it and exits 2.

In-cluster detection follows the Go version: the service-account namespace file exists.
In-cluster, leader election is on and its namespace is the pod's; locally it is off and the
namespace is kube-system.
"""

from __future__ import annotations

import os
import re
import socket
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path

from kaput_not.core.egress import InvalidCidr, check_cluster_name, normalize_cidr
from kaput_not.core.labels import InvalidSelector, check_selector
from kaput_not.netmaker.settings import shown_url, url_problem

SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


class ConfigError(ValueError):
    """A setting that cannot work; the message is one line naming the variable."""


@dataclass(frozen=True, slots=True)
class LeaderElection:
    enabled: bool
    namespace: str
    name: str = "kaput-not"
    identity: str = ""
    lease_seconds: float = 15.0
    renew_deadline_seconds: float = 10.0
    retry_period_seconds: float = 2.0


@dataclass(frozen=True, slots=True, repr=False)
class Settings:
    netmaker_api_url: str
    netmaker_username: str
    netmaker_password: str
    leader_election: LeaderElection
    #: KUBECONFIG as set: one file or a path list (merged as kubectl does).
    kubeconfig: str | None = None
    #: `plan`/`status --kubeconfig FILE` and `--context NAME` (no variable: kubectl has none).
    kubeconfig_flag: str | None = None
    kube_context: str | None = None
    in_cluster: bool = False
    cluster_name: str | None = None
    netmaker_ca_file: str | None = None
    netmaker_insecure_skip_tls_verify: bool = False
    netmaker_timeout_seconds: float = 10.0
    netmaker_concurrency: int = 4
    cache_ttl_seconds: float = 30.0
    resync_period_seconds: float = 600.0
    delete_grace_seconds: float = 15.0
    workers: int = 4
    egress_metric: int = 500
    max_delete_fraction: float = 0.5
    max_delete_floor: int = 5
    budget_window_seconds: float = 86400.0
    allow_mass_delete: bool = False
    metrics_address: str = ":8080"
    log_level: str = "INFO"
    log_format: str = "json"
    dry_run: bool = False
    events: bool = True
    host_annotation: bool = True
    #: The host names the annotation may name (the whole name must match); None: any.
    host_annotation_hosts: re.Pattern[str] | None = None
    #: The cluster's pod ranges, normalised; empty: no check.
    cluster_pod_cidrs: tuple[str, ...] = ()
    #: NODE_SELECTOR, normalised: the label selector of the nodes that get rules ("" all).
    node_selector: str = ""

    def as_fields(self) -> dict[str, object]:
        """Every effective setting as a log field (JSON types), by its field name; the
        password is left out and the URL's user:password@ part masked."""
        out: dict[str, object] = {}
        for f in fields(self):
            if f.name == "netmaker_password":
                continue
            value = getattr(self, f.name)
            if f.name == "netmaker_api_url":
                value = shown_url(value)
            if isinstance(value, LeaderElection):
                for inner in fields(value):
                    out[f"leader_election_{inner.name}"] = getattr(value, inner.name)
                continue
            if isinstance(value, re.Pattern):
                value = value.pattern
            elif isinstance(value, tuple):
                value = list(value)
            out[f.name] = value
        return out

    def __repr__(self) -> str:
        shown = ", ".join(
            f"{f.name}=<hidden>"
            if f.name == "netmaker_password"
            else f"{f.name}={getattr(self, f.name)!r}"
            for f in fields(self)
        )
        return f"Settings({shown})"


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

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_SECONDS = re.compile(r"\d+(?:\.\d+)?")
#: Longer durations are mistakes (and overflow the event loop's timers): a year is plenty.
_LONGEST = 365 * 24 * 3600.0


def parse_bool(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigError(f"{name}={raw!r} is not a boolean: use true or false")


def parse_duration(name: str, raw: str) -> float:
    """Seconds from `30`, `30s`, `1.5m`, `10m`, `1h30m` or `500ms` (Go's ParseDuration style).

    Only digits: `nan`, `inf`, `1e3` or `-5` are refused (float() would take them, and a NaN
    grace period once made the work queue spin forever).
    """
    text = raw.strip()
    if _SECONDS.fullmatch(text):
        return _at_most_a_year(name, raw, float(text))
    total, pos = 0.0, 0
    scale = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
    for match in _DURATION.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * scale[match.group(2)]
        pos = match.end()
    if not text or pos != len(text):
        raise ConfigError(f"{name}={raw!r} is not a duration: use e.g. 30s, 10m or 1h30m")
    return _at_most_a_year(name, raw, total)


def _at_most_a_year(name: str, raw: str, seconds: float) -> float:
    if not seconds <= _LONGEST:
        raise ConfigError(f"{name}={raw!r} is longer than a year: use e.g. 30s, 10m or 1h30m")
    return seconds


class _Reader:
    """Reads variables from one environment mapping and turns each failure into a ConfigError."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env

    def text(self, name: str, default: str | None = None) -> str | None:
        value = self.raw(name)
        if value is None or value.strip() == "":
            return default
        return value.strip()

    def raw(self, name: str) -> str | None:
        """The value as set; bytes that are not UTF-8 (surrogate escapes) are refused."""
        value = self.env.get(name)
        if value is not None:
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise ConfigError(
                    f"{name} is not valid UTF-8: set it again as UTF-8 text"
                ) from None
        return value

    def required(self, name: str, what: str) -> str:
        value = self.text(name)
        if value is None:
            raise ConfigError(f"{name} is not set: {what}")
        return value

    def flag(self, name: str, default: bool) -> bool:
        raw = self.text(name)
        return default if raw is None else parse_bool(name, raw)

    def seconds(
        self, name: str, default: float, *, minimum: float = 0.0, zero: bool = False
    ) -> float:
        """A duration above `minimum` seconds (or exactly 0 when `zero` is allowed)."""
        raw = self.text(name)
        value = default if raw is None else parse_duration(name, raw)
        if zero and value == 0:
            return value
        if value <= minimum:
            raise ConfigError(f"{name}={raw!r} must be longer than {minimum:g}s")
        return value

    def integer(self, name: str, default: int, *, low: int, high: int) -> int:
        raw = self.text(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise ConfigError(f"{name}={raw!r} is not a whole number") from None
        if not low <= value <= high:
            raise ConfigError(f"{name}={raw!r} must be between {low} and {high}")
        return value

    def fraction(self, name: str, default: float) -> float:
        raw = self.text(name)
        if raw is None:
            return default
        try:
            value = float(raw)
        except ValueError:
            raise ConfigError(f"{name}={raw!r} is not a number") from None
        if not 0.0 < value <= 1.0:
            raise ConfigError(f"{name}={raw!r} must be a fraction above 0 and at most 1")
        return value


def load(
    env: Mapping[str, str] | None = None,
    *,
    namespace_file: Path = SERVICE_ACCOUNT_NAMESPACE,
    hostname: Callable[[], str] = socket.gethostname,
) -> Settings:
    """Settings from `env` (default: os.environ); raises ConfigError on the first problem."""
    r = _Reader(os.environ if env is None else env)
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
    log_level = (r.text("LOG_LEVEL", "info") or "info").upper()
    if log_level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
        raise ConfigError(f"LOG_LEVEL={log_level.lower()!r} must be debug, info, warning or error")
    log_format = (r.text("LOG_FORMAT") or ("json" if in_cluster else "text")).lower()
    if log_format not in {"json", "text"}:
        raise ConfigError(f"LOG_FORMAT={log_format!r} must be json or text")
    metrics_address = r.text("METRICS_ADDRESS", ":8080") or ":8080"
    split_address(metrics_address)
    ca_file = r.text("NETMAKER_CA_FILE")
    if ca_file is not None and not Path(ca_file).is_file():
        raise ConfigError(f"NETMAKER_CA_FILE={ca_file!r} is not a readable file")
    return Settings(
        netmaker_api_url=url,
        netmaker_username=username,
        netmaker_password=password,
        leader_election=election,
        kubeconfig=r.text("KUBECONFIG"),
        in_cluster=in_cluster,
        cluster_name=cluster,
        netmaker_ca_file=ca_file,
        netmaker_insecure_skip_tls_verify=r.flag("NETMAKER_INSECURE_SKIP_TLS_VERIFY", False),
        netmaker_timeout_seconds=r.seconds("NETMAKER_TIMEOUT", 10.0),
        netmaker_concurrency=r.integer("NETMAKER_CONCURRENCY", 4, low=1, high=64),
        cache_ttl_seconds=r.seconds("CACHE_TTL", 30.0, zero=True),
        resync_period_seconds=r.seconds("RESYNC_PERIOD", 600.0, minimum=1),
        delete_grace_seconds=r.seconds("DELETE_GRACE", 15.0, zero=True),
        workers=r.integer("WORKERS", 4, low=1, high=64),
        egress_metric=r.integer("EGRESS_METRIC", 500, low=1, high=65535),
        max_delete_fraction=r.fraction("MAX_DELETE_FRACTION", 0.5),
        max_delete_floor=r.integer("MAX_DELETE_MIN", 5, low=0, high=1_000_000),
        allow_mass_delete=r.flag("ALLOW_MASS_DELETE", False),
        budget_window_seconds=r.seconds("BUDGET_WINDOW", 86400.0, minimum=1),
        metrics_address=metrics_address,
        log_level=log_level,
        log_format=log_format,
        dry_run=r.flag("DRY_RUN", False),
        events=r.flag("EVENTS_ENABLED", True),
        host_annotation=r.flag("HOST_ANNOTATION_ENABLED", True),
        host_annotation_hosts=_pattern(r, "HOST_ANNOTATION_HOSTS"),
        cluster_pod_cidrs=_cidrs(r, "CLUSTER_POD_CIDRS"),
        node_selector=_selector(r, "NODE_SELECTOR"),
    )


def _selector(r: _Reader, name: str) -> str:
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


def _pattern(r: _Reader, name: str) -> re.Pattern[str] | None:
    raw = r.text(name)
    if raw is None:
        return None
    try:
        return re.compile(raw)
    except re.error as exc:
        raise ConfigError(f"{name}={raw!r} is not a valid regular expression: {exc}") from None


def _cidrs(r: _Reader, name: str) -> tuple[str, ...]:
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


def _password(r: _Reader) -> str:
    secret = _password_as_given(r)
    if secret.strip() == PLACEHOLDER_PASSWORD:
        raise ConfigError(
            f"the Netmaker password is the Go chart's placeholder {PLACEHOLDER_PASSWORD}: set "
            "the real one (chart: netmaker.password or netmaker.existingSecret)"
        )
    return secret


def _password_as_given(r: _Reader) -> str:
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


def _in_cluster(r: _Reader, namespace_file: Path) -> tuple[bool, str | None]:
    try:
        namespace = namespace_file.read_text(encoding="utf-8").strip() or None
    except OSError:
        return False, r.text("POD_NAMESPACE")
    return True, r.text("POD_NAMESPACE", namespace)


def _leader_election(
    r: _Reader, in_cluster: bool, pod_namespace: str | None, hostname: Callable[[], str]
) -> LeaderElection:
    enabled = r.flag("LEADER_ELECTION_ENABLED", in_cluster)
    namespace = r.text("LEADER_ELECTION_NAMESPACE") or (pod_namespace if in_cluster else None)
    lease = r.seconds("LEADER_ELECTION_LEASE_DURATION", 15.0)
    renew = r.seconds("LEADER_ELECTION_RENEW_DEADLINE", 10.0)
    retry = r.seconds("LEADER_ELECTION_RETRY_PERIOD", 2.0)
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
        name=r.text("LEADER_ELECTION_ID", "kaput-not") or "kaput-not",
        identity=identity,
        lease_seconds=lease,
        renew_deadline_seconds=renew,
        retry_period_seconds=retry,
    )


def split_address(address: str) -> tuple[str, int]:
    """`host:port` or `:port` to (host, port); the empty host means every interface."""
    host, sep, port = address.rpartition(":")
    if not sep or not (port.isascii() and port.isdigit()) or not 0 <= int(port) <= 65535:
        raise ConfigError(f"METRICS_ADDRESS={address!r} must be host:port or :port")
    return host.strip("[]") or "0.0.0.0", int(port)
