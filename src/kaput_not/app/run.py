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
from contextlib import AsyncExitStack

from kaput_not import __revision__, __version__, ratelimit
from kaput_not.app.clients import StartupError, clients, run_elector, state_store
from kaput_not.app.pipeline import controller_options, write_pipeline
from kaput_not.app.readiness import Login, health_server
from kaput_not.config import Settings
from kaput_not.controller.controller import Controller
from kaput_not.controller.metrics import LEASE_FORBIDDEN, NODES_FORBIDDEN, Metrics
from kaput_not.kube.events import EventRecorder
from kaput_not.kube.lease import LeaderElector
from kaput_not.netmaker import errors
from kaput_not.netmaker.client import NetmakerClient

log = logging.getLogger("kaput_not.app")

EXIT_OK = 0
EXIT_FAILED = 1


#: The key of the start-up login in its backoff.
LOGIN = "login"


async def run(settings: Settings, stop: asyncio.Event, resync: asyncio.Event | None = None) -> int:
    """Run until `stop` is set; each time `resync` is set (SIGHUP), a full pass is queued."""
    metrics = Metrics()
    async with AsyncExitStack() as stack:
        client, kube = clients(settings, metrics, stack)
        elector = run_elector(settings, kube)
        may_write = elector.is_leader if elector else (lambda: True)
        pipeline = write_pipeline(
            settings, client, store=state_store(settings, kube, elector), may_write=may_write
        )
        guard = pipeline.guard
        recorder = None
        if settings.output.events:
            recorder = EventRecorder(
                kube,
                instance=settings.leader_election.identity,
                on_dropped=metrics.events_dropped.inc,
            )
            stack.push_async_callback(recorder.aclose)
        controller = Controller(
            kube=kube,
            netmaker=pipeline.cache,
            reconciler=pipeline.reconciler,
            metrics=metrics,
            options=controller_options(settings, freeze_after_first_sync=True),
            emit=recorder.emit if recorder is not None else None,
        )
        pipeline.executor.health = controller.circuit  # a server failure mid-pass holds the rest
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
        login = Login()
        health = health_server(settings, metrics, controller, elector, login, guard)
        try:
            await health.start()
        except OSError as exc:
            raise StartupError(
                f"METRICS_ADDRESS={settings.output.metrics_address!r}: cannot listen there: "
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


async def _check_credentials(client: NetmakerClient, stop: asyncio.Event, login: Login) -> bool:
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
