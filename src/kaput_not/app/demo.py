"""`kaput-not demo`: one full sync against the built-in Netmaker emulator, no cluster needed.

It runs the real client, cache, planner, guard and executor, built as `run` builds them, over
HTTP against an in-process emulator seeded with simulated hosts, then checks convergence
independently: a fresh client lists everything again and the planner must find nothing left
to do. Request counts come from the emulator's own log, not from the client, so they show what
a real server would have served.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field

from kaput_not.app.clients import netmaker_client
from kaput_not.app.pipeline import plan_settings, write_pipeline
from kaput_not.config import LeaderElection, Netmaker, Settings
from kaput_not.controller.reconciler import PassReport
from kaput_not.core.model import ActionKind, KubeNode
from kaput_not.core.ownership import Ownership
from kaput_not.core.planner import plan
from kaput_not.netmaker.cache import CachedNetmaker
from kaput_not.netmaker.client import NetmakerClient

FOREIGN_DESCRIPTION = "office VPN (managed by hand)"


@dataclass(frozen=True, slots=True)
class DemoOptions:
    nodes: int = 20
    networks: int = 1
    dual_stack: bool = False
    concurrency: int = 8

    def validate(self) -> None:
        if not 1 <= self.nodes <= 65_536:
            raise ValueError(f"--nodes must be between 1 and 65536, got {self.nodes}")
        if not 1 <= self.networks <= 16:
            raise ValueError(f"--networks must be between 1 and 16, got {self.networks}")
        if not 1 <= self.concurrency <= 64:
            raise ValueError(f"--concurrency must be between 1 and 64, got {self.concurrency}")


@dataclass(slots=True)
class DemoResult:
    options: DemoOptions
    report: PassReport
    converged: bool
    egress_total: int
    foreign_untouched: bool
    requests: dict[str, int]
    reads: int
    writes: int
    seconds: float
    sample: list[dict[str, str]] = field(default_factory=list)

    def as_json(self) -> dict[str, object]:
        result = self.report.result
        return {
            "converged": self.converged,
            "nodes": self.options.nodes,
            "networks": self.options.networks,
            "dual_stack": self.options.dual_stack,
            "egress_total": self.egress_total,
            "created": result.created,
            "updated": result.updated,
            "deleted": result.deleted,
            "failures": len(result.failures),
            "foreign_untouched": self.foreign_untouched,
            "requests": self.requests,
            "reads": self.reads,
            "writes": self.writes,
            "seconds": round(self.seconds, 3),
        }


def pod_cidrs(index: int, dual_stack: bool) -> tuple[str, ...]:
    """Node `index`'s pod CIDRs, as a cluster allocator would hand them out."""
    v4 = f"10.{64 + index // 256}.{index % 256}.0/24"
    return (v4, f"fd00:10:244:{index:x}::/64") if dual_stack else (v4,)


class DemoUnavailable(Exception):
    """This installation has no Netmaker emulator (the image leaves the stand-ins out)."""


async def run_demo(options: DemoOptions) -> DemoResult:
    options.validate()
    try:  # here, not at the top: the product runs without the stand-ins
        from kaput_not_standins.netmaker import NetmakerEmulator
    except ImportError as exc:
        raise DemoUnavailable(
            "the demo needs the built-in Netmaker emulator (the stand-ins, kaput-not-standins), "
            "which this installation leaves out (the container image does): install the demo "
            "extra from a checkout, pip install '.[demo]' ./standins, or run bash scripts/demo"
        ) from exc
    password = secrets.token_urlsafe(18)
    async with NetmakerEmulator(username="kaput-not", password=password) as emulator:
        networks = [f"mesh-{k}" for k in range(options.networks)]
        for k, network in enumerate(networks):
            emulator.state.add_network(network, f"100.{64 + k}.0.0/16")
        hosts = [emulator.state.add_host(f"node-{i:05d}", networks) for i in range(options.nodes)]
        kube = [
            KubeNode(name=host.name, pod_cidrs=pod_cidrs(i, options.dual_stack))
            for i, host in enumerate(hosts)
        ]
        foreign = emulator.state.add_egress(
            network=networks[0],
            name="office",
            description=FOREIGN_DESCRIPTION,
            cidr="192.168.0.0/16",
            nodes={hosts[0].node_id(networks[0]): 100},
        )
        emulator.log.reset()
        started = time.perf_counter()
        settings = Settings(
            netmaker=Netmaker(
                api_url=emulator.base_url,
                username="kaput-not",
                password=password,
                concurrency=options.concurrency,
            ),
            leader_election=LeaderElection(enabled=False, namespace="", identity="demo"),
        )
        async with netmaker_client(settings) as client:
            report = await _sync(settings, client, kube)
        seconds = time.perf_counter() - started
        requests = dict(sorted(emulator.log.counts().items()))
        reads, writes = emulator.log.reads(), emulator.log.writes()
        converged = await _converged(settings, kube)
        stored = emulator.state.egresses()
        ours = [e for e in stored if Ownership().marker(str(e["description"])) is not None]
        after = next((e for e in stored if e["id"] == foreign["id"]), None)
    return DemoResult(
        options=options,
        report=report,
        converged=converged,
        egress_total=len(ours),
        foreign_untouched=after == foreign,
        requests=requests,
        reads=reads,
        writes=writes,
        seconds=seconds,
        sample=[
            {"name": str(e["name"]), "network": str(e["network"]), "range": str(e["range"])}
            for e in sorted(ours, key=lambda e: (str(e["name"]), str(e["network"])))[:8]
        ],
    )


async def _sync(settings: Settings, client: NetmakerClient, kube: list[KubeNode]) -> PassReport:
    """One full pass, through `run`'s pipeline, as the controller runs it at start-up; the
    guard's memory stays in this process (there is no Lease)."""
    pipeline = write_pipeline(settings, client, store=None, may_write=lambda: True)
    return await pipeline.reconciler.reconcile(kube)


async def _converged(settings: Settings, kube: list[KubeNode]) -> bool:
    """A fresh client reads everything again; the planner must find nothing to do."""
    async with netmaker_client(settings) as client:
        view = await CachedNetmaker(client).view()
    again = plan(kube, view, plan_settings(settings))
    return again.empty and not again.withheld


def render(result: DemoResult) -> str:
    """The human-readable summary."""
    r = result.report
    o = result.options
    lines = [
        f"kaput-not demo: {o.nodes} Kubernetes nodes, {o.networks} Netmaker network(s), "
        f"{'dual-stack' if o.dual_stack else 'IPv4'} pod CIDRs (built-in Netmaker emulator)",
        "",
        f"  planned   {r.plan.count(ActionKind.CREATE)} create, {r.plan.count(ActionKind.UPDATE)}"
        f" update, {r.plan.count(ActionKind.DELETE)} delete",
        f"  applied   {r.result.created} created, {r.result.updated} updated, "
        f"{r.result.deleted} deleted, {len(r.result.failures)} failed in {result.seconds:.2f} s",
        f"  rules     {result.egress_total} kaput-not egress rules in Netmaker",
        f"  foreign   hand-made rule {'untouched' if result.foreign_untouched else 'CHANGED'}",
        f"  converged {'yes' if result.converged else 'NO'} (a fresh read plans nothing more)",
        "",
        f"  {'rule name':<28} {'network':<10} range",
    ]
    lines += [f"  {s['name']:<28} {s['network']:<10} {s['range']}" for s in result.sample]
    if result.egress_total > len(result.sample):
        lines.append(f"  ... and {result.egress_total - len(result.sample)} more")
    lines += [
        "",
        f"  Netmaker requests (counted by the emulator): {result.reads} reads, "
        f"{result.writes} writes",
    ]
    lines += [f"    {count:>6}  {endpoint}" for endpoint, count in result.requests.items()]
    return "\n".join(lines)
