"""What `kaput-not run` answers on /healthz and /readyz: alive unless the controller stopped on
a fatal error; ready once it can do its work, with what it waits for or what holds it back
(the login, the first node list, the Lease, the guard, a long pass, a Netmaker outage).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from kaput_not.config import Settings, split_address
from kaput_not.controller.circuit import Circuit
from kaput_not.controller.controller import CLUSTER, Controller
from kaput_not.controller.guard import WriteGuard
from kaput_not.controller.metrics import Metrics
from kaput_not.health import HealthServer
from kaput_not.kube.lease import LeaderElector


@dataclass
class Login:
    """Where the start-up login stands, for /readyz while it waits."""

    accepted: bool = False
    problem: str = "not tried yet"


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
        what, bound = "a full pass", settings.reconcile.resync_period_seconds
    else:
        what, bound = (
            f"the pass of node {key}",
            NODE_PASS_TIMEOUTS * settings.netmaker.timeout_seconds,
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


def health_server(
    settings: Settings,
    metrics: Metrics,
    controller: Controller,
    elector: LeaderElector | None,
    login: Login,
    guard: WriteGuard,
) -> HealthServer:
    host, port = split_address(settings.output.metrics_address)

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
