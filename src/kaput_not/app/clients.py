"""The clients every entry point starts from, built from the settings tree: Netmaker's, the
Kubernetes API's, the leader elector and the guard's state on the Lease."""

from __future__ import annotations

from contextlib import AsyncExitStack

from kaput_not.config import Settings
from kaput_not.controller.guard_state import LeaseStore
from kaput_not.controller.metrics import Metrics
from kaput_not.kube.api import KubeApi, KubeConfigError, connect
from kaput_not.kube.lease import LeaderElector, LeaseConfig
from kaput_not.netmaker import errors
from kaput_not.netmaker.client import NetmakerClient
from kaput_not.netmaker.settings import ClientSettings


class StartupError(Exception):
    """Configuration that only shows itself when used: one line, exit code 2."""


def clients(
    settings: Settings, metrics: Metrics, stack: AsyncExitStack
) -> tuple[NetmakerClient, KubeApi]:
    """The Netmaker client and the Kubernetes API client, closed with `stack`."""
    client = netmaker_client(settings, metrics)
    stack.push_async_callback(client.aclose)
    k8s = settings.kubernetes
    try:
        http, source = connect(
            k8s.kubeconfig,
            identity=settings.leader_election.identity,
            explicit=k8s.kubeconfig_flag,
            context=k8s.context,
        )
    except KubeConfigError as exc:
        raise StartupError(str(exc)) from exc
    kube = KubeApi(http, source, on_request=metrics.on_kube_request)
    stack.push_async_callback(kube.aclose)
    return client, kube


def client_settings(settings: Settings) -> ClientSettings:
    nm = settings.netmaker
    return ClientSettings(
        api_url=nm.api_url,
        username=nm.username,
        password=nm.password,
        ca_file=nm.ca_file,
        insecure_skip_tls_verify=nm.insecure_skip_tls_verify,
        timeout_seconds=nm.timeout_seconds,
        identity=settings.leader_election.identity,
    )


def netmaker_client(settings: Settings, metrics: Metrics | None = None) -> NetmakerClient:
    on_request = metrics.on_netmaker_request if metrics is not None else None
    try:
        return NetmakerClient(client_settings(settings), on_request=on_request)
    except errors.InvalidSettings as exc:
        raise StartupError(str(exc)) from exc


def lease_config(settings: Settings, *, suffix: str = "") -> LeaseConfig:
    """The Lease to lead with; `suffix` is added to the identity (`plan --apply` uses one)."""
    le = settings.leader_election
    return LeaseConfig(
        namespace=le.namespace,
        name=le.name,
        identity=f"{le.identity}{suffix}",
        lease_seconds=le.lease_seconds,
        renew_deadline_seconds=le.renew_deadline_seconds,
        retry_period_seconds=le.retry_period_seconds,
    )


def leader_elector(settings: Settings, kube: KubeApi, *, suffix: str = "") -> LeaderElector:
    try:
        return LeaderElector(kube, lease_config(settings, suffix=suffix))
    except ValueError as exc:
        raise StartupError(str(exc)) from exc


def run_elector(settings: Settings, kube: KubeApi) -> LeaderElector | None:
    """`run`'s elector, or None when leader election is off."""
    return leader_elector(settings, kube) if settings.leader_election.enabled else None


def state_store(settings: Settings, kube: KubeApi, elector: LeaderElector | None) -> LeaseStore:
    """The guard's state on the leader-election Lease (written without holding it when leader
    election is off)."""
    le = settings.leader_election
    return LeaseStore(kube, le.namespace, le.name, elector)
