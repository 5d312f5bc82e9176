"""The settings tree: one dataclass per subject, each holding its own defaults.

`environment.load` builds it once from the environment; the wiring (`kaput_not.app`) builds the
objects the components take (ClientSettings, PlanSettings, BudgetSettings, LeaseConfig,
ControllerOptions) from it, so a default lives here and nowhere else.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields

from kaput_not.netmaker.settings import DEFAULT_TIMEOUT_SECONDS, shown_url


@dataclass(frozen=True, slots=True, repr=False)
class Netmaker:
    """How to reach Netmaker, and how hard to use it."""

    api_url: str
    username: str
    password: str
    ca_file: str | None = None
    insecure_skip_tls_verify: bool = False
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
    #: Writes in flight at once.
    concurrency: int = 4
    #: How long Netmaker lists are reused.
    cache_ttl_seconds: float = 30.0

    def __repr__(self) -> str:
        shown = ", ".join(
            f"{f.name}=<hidden>" if f.name == "password" else f"{f.name}={getattr(self, f.name)!r}"
            for f in fields(self)
        )
        return f"Netmaker({shown})"


@dataclass(frozen=True, slots=True)
class Kubernetes:
    """Which cluster, which of its nodes, and how their Netmaker hosts are found."""

    #: KUBECONFIG as set: one file or a path list (merged as kubectl does).
    kubeconfig: str | None = None
    #: `plan`/`status --kubeconfig FILE` and `--context NAME` (no variable: kubectl has none).
    kubeconfig_flag: str | None = None
    context: str | None = None
    in_cluster: bool = False
    #: K8S_CLUSTER_NAME: scopes our rules when several clusters share a Netmaker.
    cluster_name: str | None = None
    #: NODE_SELECTOR, normalised: the label selector of the nodes that get rules ("" all).
    node_selector: str = ""
    host_annotation: bool = True
    #: The host names the annotation may name (the whole name must match); None: any.
    host_annotation_hosts: re.Pattern[str] | None = None
    #: The cluster's pod ranges, normalised; empty: no check.
    cluster_pod_cidrs: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class LeaderElection:
    enabled: bool
    namespace: str
    name: str = "kaput-not"
    identity: str = ""
    lease_seconds: float = 15.0
    renew_deadline_seconds: float = 10.0
    retry_period_seconds: float = 2.0


@dataclass(frozen=True, slots=True)
class Safety:
    """The delete budget and the operator's switches over writing."""

    max_delete_fraction: float = 0.5
    max_delete_floor: int = 5
    budget_window_seconds: float = 86400.0
    allow_mass_delete: bool = False
    dry_run: bool = False


@dataclass(frozen=True, slots=True)
class Reconcile:
    """How the loop runs and what the rules it writes carry."""

    workers: int = 4
    resync_period_seconds: float = 600.0
    #: A deleted node's rules (or a node's without pod CIDRs) wait this long.
    delete_grace_seconds: float = 15.0
    #: The route metric put in each rule's nodes map.
    egress_metric: int = 500


@dataclass(frozen=True, slots=True)
class Output:
    """What the process tells: logs, metrics and health, Kubernetes Events."""

    log_level: str = "INFO"
    log_format: str = "json"
    metrics_address: str = ":8080"
    events: bool = True


@dataclass(frozen=True, slots=True)
class Settings:
    netmaker: Netmaker
    leader_election: LeaderElection
    kubernetes: Kubernetes = field(default_factory=Kubernetes)
    safety: Safety = field(default_factory=Safety)
    reconcile: Reconcile = field(default_factory=Reconcile)
    output: Output = field(default_factory=Output)

    def as_fields(self) -> dict[str, object]:
        """Every effective setting as a log field (JSON types), under the flat names the
        start-up line has always used; the password is left out and the URL's
        user:password@ part masked."""
        out: dict[str, object] = {}
        for subject in fields(self):
            value = getattr(self, subject.name)
            for inner in fields(value):
                name = _LOGGED_AS.get((subject.name, inner.name))
                if name is None:
                    prefix = _PREFIX.get(subject.name, "")
                    name = f"{prefix}{inner.name}"
                if name == "netmaker_password":
                    continue
                out[name] = _json(getattr(value, inner.name))
        out["netmaker_api_url"] = shown_url(self.netmaker.api_url)
        return out


#: The subjects whose fields are logged with a prefix, and the fields logged under another name.
_PREFIX = {"netmaker": "netmaker_", "leader_election": "leader_election_"}
_LOGGED_AS = {
    ("netmaker", "cache_ttl_seconds"): "cache_ttl_seconds",
    ("kubernetes", "context"): "kube_context",
}


def _json(value: object) -> object:
    if isinstance(value, re.Pattern):
        return value.pattern
    if isinstance(value, tuple):
        return list(value)
    return value
