"""`kaput-not run`: build the controller from settings, run it until told to stop, shut down.

Order of start: health and metrics first, so liveness holds while Netmaker is still
unreachable (a pod waiting for Netmaker must not be restarted into a crash loop; /readyz says
what it waits for); then the Netmaker credentials (a rejected password is a clear failure and
exit 2, not a loop), the informer, leader election and, once leading, the controller proper.
A standby runs the informer too, so it is warm and ready when it takes over.

Exit codes returned: 0 after a graceful stop (SIGTERM/SIGINT), 1 when leadership was lost or
a fatal error stopped the controller (Kubernetes restarts the pod as a standby), 2 for
configuration errors found at start-up (raised as `StartupError`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from contextlib import AsyncExitStack
from dataclasses import dataclass

from kaput_not import __revision__, __version__, ratelimit
from kaput_not.config import Settings, split_address
from kaput_not.controller.circuit import Circuit
from kaput_not.controller.controller import CLUSTER, Controller, ControllerOptions
from kaput_not.controller.executor import Executor
from kaput_not.controller.guard import BudgetSettings, WriteGuard
from kaput_not.controller.guard_state import LeaseStore
from kaput_not.controller.metrics import LEASE_FORBIDDEN, NODES_FORBIDDEN, Metrics
from kaput_not.controller.reconciler import Reconciler
from kaput_not.core.planner import PlanSettings
from kaput_not.health import HealthServer
from kaput_not.kube.api import KubeApi, KubeConfigError, connect
from kaput_not.kube.events import EventRecorder
from kaput_not.kube.lease import LeaderElector, LeaseConfig
from kaput_not.netmaker import errors
from kaput_not.netmaker.cache import CachedNetmaker
from kaput_not.netmaker.client import NetmakerClient
from kaput_not.netmaker.settings import ClientSettings

log = logging.getLogger("kaput_not.app")

EXIT_OK = 0
EXIT_FAILED = 1


#: The key of the start-up login in its backoff.
LOGIN = "login"


class StartupError(Exception):
    """Configuration that only shows itself when used: one line, exit code 2."""


@dataclass
class _Login:
    """Where the start-up login stands, for /readyz while it waits."""

    accepted: bool = False
    problem: str = "not tried yet"


async def run(settings: Settings, stop: asyncio.Event, resync: asyncio.Event | None = None) -> int:
    """Run until `stop` is set; each time `resync` is set (SIGHUP), a full pass is queued."""
    metrics = Metrics()
    async with AsyncExitStack() as stack:
        client, kube = clients(settings, metrics, stack)
        elector = _elector(settings, kube)
        may_write = elector.is_leader if elector else (lambda: True)
        cache = CachedNetmaker(client, ttl=settings.cache_ttl_seconds)
        executor = Executor(
            cache,
            concurrency=settings.netmaker_concurrency,
            may_write=may_write,
            dry_run=settings.dry_run,
        )
        guard = WriteGuard(
            budget_settings(settings),
            store=state_store(settings, kube, elector),
        )
        reconciler = Reconciler(cache, executor, plan_settings(settings), guard)
        recorder = None
        if settings.events:
            recorder = EventRecorder(
                kube,
                instance=settings.leader_election.identity,
                on_dropped=metrics.events_dropped.inc,
            )
            stack.push_async_callback(recorder.aclose)
        controller = Controller(
            kube=kube,
            netmaker=cache,
            reconciler=reconciler,
            metrics=metrics,
            options=ControllerOptions(
                workers=settings.workers,
                resync_period_seconds=settings.resync_period_seconds,
                delete_grace_seconds=settings.delete_grace_seconds,
                netmaker_poll_seconds=max(settings.cache_ttl_seconds, 1.0),
                dry_run=settings.dry_run,
                freeze_after_first_sync=True,
                node_selector=settings.node_selector,
            ),
            emit=recorder.emit if recorder is not None else None,
        )
        executor.health = controller.circuit  # a server failure mid-pass holds the rest
        metrics.watch(
            queue_depth=lambda: float(len(controller.queue)),
            leader=lambda: controller.leading and may_write(),
            nodes=lambda: float(len(controller.informer)),
            holding=lambda: guard.holding is not None,
            lease=settings.leader_election.name,
            running=controller.passes_running,
            blocked={
                LEASE_FORBIDDEN: lambda: elector is not None and elector.denied is not None,
                NODES_FORBIDDEN: lambda: controller.informer.denied,
            },
        )
        login = _Login()
        health = _health(settings, metrics, controller, elector, login, guard)
        try:
            await health.start()
        except OSError as exc:
            raise StartupError(
                f"METRICS_ADDRESS={settings.metrics_address!r}: cannot listen there: "
                f"{exc.strerror or exc}; choose a free port or an address of this host"
            ) from exc
        stack.push_async_callback(health.stop)
        if not await _check_credentials(client, stop, login):
            log.info("stopping: signal received while starting, before the Netmaker login")
            return EXIT_OK
        # The version and every effective setting, once: after the login, so a refused
        # password stays one line (the password itself shows as <hidden>).
        log.info(
            "kaput-not %s (revision %s) started, health on port %d, Kubernetes API: %s",
            __version__,
            __revision__,
            health.port,
            kube.source,
            extra={
                "fields": {
                    "version": __version__,
                    "revision": __revision__,
                    "kubernetes_api": kube.source,
                    "settings": settings.as_fields(),
                }
            },
        )
        if elector is None:
            # Nothing fences this process: say so where the operator looks first.
            log.warning(
                "leader election is off (LEADER_ELECTION_ENABLED=false, chart value "
                "leaderElection.enabled): this process writes to Netmaker without holding the "
                "Lease; run it alone, never beside a running leader or a second `kaput-not run`"
            )
        # The node count the cluster last had: the first node list is checked against it.
        remembered = await guard.peek()
        controller.informer.remembered = remembered.nodes if remembered is not None else None
        if elector is not None:
            elector.on_annotations = controller.on_lease_annotations
        return await _supervise(controller, elector, stop, resync)


async def _resyncs(controller: Controller, resync: asyncio.Event) -> None:
    while True:
        await resync.wait()
        resync.clear()
        controller.request_full_pass("SIGHUP")


async def _supervise(
    controller: Controller,
    elector: LeaderElector | None,
    stop: asyncio.Event,
    resync: asyncio.Event | None = None,
) -> int:
    """Run until stop, lost leadership or a fatal error; then shut down in the right order."""
    tasks: dict[str, asyncio.Task[object]] = {
        "informer": asyncio.create_task(controller.informer.run()),
        "stop": asyncio.create_task(stop.wait()),
        "fatal": asyncio.create_task(controller.wait_fatal()),
    }
    if resync is not None:
        tasks["resync"] = asyncio.create_task(_resyncs(controller, resync))
    leader_work: asyncio.Task[None] | None = None

    def lead() -> None:
        nonlocal leader_work
        leader_work = asyncio.create_task(controller.run_leader())
        leader_work.add_done_callback(_leader_ended)

    def _leader_ended(task: asyncio.Task[None]) -> None:
        # The leader's work only ends by cancellation; anything else is a bug to stop on.
        if not task.cancelled() and task.exception() is not None:
            controller.fail(task.exception() or RuntimeError("leader work ended"))

    if elector is None:
        lead()
    else:
        tasks["election"] = asyncio.create_task(elector.run(lead))
    code = EXIT_OK
    try:
        done, _ = await asyncio.wait(tasks.values(), return_when=asyncio.FIRST_COMPLETED)
        finished = next(name for name, task in tasks.items() if task in done)
        if finished == "election":
            log.error("leadership lost: stopping writes and exiting so a standby takes over")
            code = EXIT_FAILED
        elif finished == "fatal":
            code = EXIT_FAILED
        elif finished == "informer":
            # The informer retries API errors forever; ending means a bug. Say it, exit 1.
            log.error("the node informer stopped: %r", tasks["informer"].exception())
            code = EXIT_FAILED
        else:
            log.info("stopping: signal received")
    finally:
        await controller.stop()
        for task in [*tasks.values(), *([leader_work] if leader_work else [])]:
            task.cancel()
        await asyncio.gather(*tasks.values(), return_exceptions=True)
        if leader_work is not None:
            await asyncio.gather(leader_work, return_exceptions=True)
        if elector is not None:
            await elector.release()
    return code


def clients(
    settings: Settings, metrics: Metrics, stack: AsyncExitStack
) -> tuple[NetmakerClient, KubeApi]:
    """The Netmaker client and the Kubernetes API client, closed with `stack`."""
    client = netmaker_client(settings, metrics)
    stack.push_async_callback(client.aclose)
    try:
        http, source = connect(
            settings.kubeconfig,
            identity=settings.leader_election.identity,
            explicit=settings.kubeconfig_flag,
            context=settings.kube_context,
        )
    except KubeConfigError as exc:
        raise StartupError(str(exc)) from exc
    kube = KubeApi(http, source, on_request=metrics.on_kube_request)
    stack.push_async_callback(kube.aclose)
    return client, kube


def netmaker_client(settings: Settings, metrics: Metrics) -> NetmakerClient:
    client_settings = ClientSettings(
        api_url=settings.netmaker_api_url,
        username=settings.netmaker_username,
        password=settings.netmaker_password,
        ca_file=settings.netmaker_ca_file,
        insecure_skip_tls_verify=settings.netmaker_insecure_skip_tls_verify,
        timeout_seconds=settings.netmaker_timeout_seconds,
        identity=settings.leader_election.identity,
    )
    try:
        return NetmakerClient(client_settings, on_request=metrics.on_netmaker_request)
    except errors.InvalidSettings as exc:
        raise StartupError(str(exc)) from exc


async def _check_credentials(client: NetmakerClient, stop: asyncio.Event, login: _Login) -> bool:
    """Log in once. Rejected: StartupError. Unreachable: retry with backoff until stop."""
    backoff: ratelimit.ExponentialBackoff[str] = ratelimit.ExponentialBackoff(
        base=1.0, cap=30.0, jitter=0.5
    )
    while not stop.is_set():
        try:
            await client.login()
        except errors.CredentialsRejected as exc:
            raise StartupError(str(exc)) from exc
        except errors.NetmakerError as exc:
            login.problem = str(exc)
            delay = backoff.when(LOGIN)
            log.warning("cannot log in to Netmaker yet (%s); retrying in %.1fs", exc, delay)
        else:
            login.accepted = True
            log.info("Netmaker credentials accepted")
            return True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), delay)
    return False


def _elector(settings: Settings, kube: KubeApi) -> LeaderElector | None:
    le = settings.leader_election
    if not le.enabled:
        return None
    config = LeaseConfig(
        namespace=le.namespace,
        name=le.name,
        identity=le.identity,
        lease_seconds=le.lease_seconds,
        renew_deadline_seconds=le.renew_deadline_seconds,
        retry_period_seconds=le.retry_period_seconds,
    )
    try:
        return LeaderElector(kube, config)
    except ValueError as exc:
        raise StartupError(str(exc)) from exc


def state_store(settings: Settings, kube: KubeApi, elector: LeaderElector | None) -> LeaseStore:
    """The guard's state on the leader-election Lease (written without holding it when leader
    election is off)."""
    le = settings.leader_election
    return LeaseStore(kube, le.namespace, le.name, elector)


def budget_settings(settings: Settings) -> BudgetSettings:
    return BudgetSettings(window_seconds=settings.budget_window_seconds)


def plan_settings(settings: Settings) -> PlanSettings:
    return PlanSettings(
        cluster=settings.cluster_name,
        metric=settings.egress_metric,
        max_delete_fraction=settings.max_delete_fraction,
        max_delete_floor=settings.max_delete_floor,
        allow_mass_delete=settings.allow_mass_delete,
        host_annotation=settings.host_annotation,
        host_annotation_hosts=settings.host_annotation_hosts,
        cluster_pod_cidrs=settings.cluster_pod_cidrs,
    )


#: A node pass makes a handful of Netmaker requests in turn (the lists it plans on, its writes,
#: a login and its one retry after a 401), each cut at NETMAKER_TIMEOUT: one that has run this
#: many timeouts is stuck, not slow.
NODE_PASS_TIMEOUTS = 6
#: Shown in readiness from this long on; shorter passes are ordinary.
PASS_SHOWN_AFTER_SECONDS = 1.0


def pass_overrun(longest: tuple[str, float] | None, settings: Settings) -> tuple[bool, str] | None:
    """What readiness says of the longest pass in flight: None when there is none worth
    naming, else (past its bound, the words). A full pass writes for the whole cluster, so
    its bound is the resync period: one that outlasts the time between full passes is stuck.
    Never liveness: a restart would only start the same pass again."""
    if longest is None or longest[1] < PASS_SHOWN_AFTER_SECONDS:
        return None
    key, seconds = longest
    if key == CLUSTER:
        what, bound = "a full pass", settings.resync_period_seconds
    else:
        what, bound = (
            f"the pass of node {key}",
            NODE_PASS_TIMEOUTS * settings.netmaker_timeout_seconds,
        )
    said = f"{what} has been running for {seconds:.0f}s"
    if seconds > bound:
        return True, f"{said}, over the {bound:g}s bound: is Netmaker answering?"
    return False, said


#: Netmaker unavailable for this long fails readiness; shorter outages (a restart, an upgrade
#: of a few seconds) are only said, so one error or a quick restart does not flap it.
NETMAKER_DOWN_UNREADY_SECONDS = 60.0


def netmaker_down(circuit: Circuit) -> tuple[bool, str] | None:
    """What readiness says while the Netmaker circuit is open: None when it is closed, else
    (open long enough to fail readiness, the words). Never liveness: a restart cannot bring
    the server back, and the held work would be lost for a full pass anyway."""
    if not circuit.is_open or circuit.opened_wall is None:
        return None
    seconds = circuit.open_for()
    since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(circuit.opened_wall))
    said = (
        f"Netmaker unavailable since {since} ({seconds:.0f}s): {circuit.cause}; "
        f"{len(circuit.waiting)} nodes waiting"
    )
    return seconds >= NETMAKER_DOWN_UNREADY_SECONDS, said


def _health(
    settings: Settings,
    metrics: Metrics,
    controller: Controller,
    elector: LeaderElector | None,
    login: _Login,
    guard: WriteGuard,
) -> HealthServer:
    host, port = split_address(settings.metrics_address)

    def alive() -> tuple[bool, str]:
        if controller.fatal is not None:
            return False, str(controller.fatal)
        return True, "running"

    def ready() -> tuple[bool, str]:
        ok, detail = _readiness()
        if guard.holding:
            detail += f"; holding writes back: {guard.holding}"
        overrun = pass_overrun(controller.longest_pass(), settings)
        if overrun is not None:
            too_long, said = overrun
            ok, detail = ok and not too_long, f"{detail}; {said}"
        if guard.problem and guard.problem not in (guard.holding or ""):
            detail += f"; {guard.problem}"
        down = netmaker_down(controller.circuit)
        if down is not None:
            too_long, said = down
            ok, detail = ok and not too_long, f"{detail}; {said}"
        return ok, detail

    def _readiness() -> tuple[bool, str]:
        if not login.accepted:
            return False, f"waiting for Netmaker: {login.problem}"
        informer = controller.informer
        if not informer.synced.is_set():
            waiting = "waiting for the first complete list of Kubernetes nodes"
            return False, f"{waiting}: {informer.problem}" if informer.problem else waiting
        if informer.denied:  # the store can no longer follow the cluster: RBAC
            return False, f"cannot follow the Kubernetes nodes: {informer.problem}"
        if not controller.leading:
            # A standby that may not read or write the Lease can never take over.
            if elector is not None and elector.denied:
                return False, f"standby that can never lead: {elector.denied}"
            return True, "standby"
        if not controller.first_sync_done.is_set():
            return False, "leader: first full sync not done yet"
        return True, "leader" if elector else "running"

    return HealthServer(host=host, port=port, registry=metrics.registry, alive=alive, ready=ready)
