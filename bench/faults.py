"""Fault soak: the real `kaput-not run` under node churn and a flaky Netmaker, judged from outside.

What it does. The Netmaker emulator and the Kubernetes API stand-in run in this process, on
loopback ports, each on its own thread, so this script can seed them, change them and inject
faults through their Python APIs. It seeds two networks (``mesh`` 100.64.0.0/16 and
``backup``), N Netmaker hosts ``n<i>`` (nearly all in mesh, about 20% also in backup, a few in
backup only) and N Kubernetes nodes ``n<i>``, about half dual-stack (``10.<i//256>.<i%256>.0/24``
and ``fd00:<i:x>::/64``), plus foreign rules that must never be touched: 20 hand-made egresses
(``office vpn ...``, names that look like ours, damaged markers such as ``index=abc``,
``index=0 extra``, ``clusterx=a index=0``, an orphan-looking one with ``nodes: {}``) and 10 rules
of another cluster (``cluster=red index=0``) routed through real node ids. It then starts the
real controller as a child process (``python -m kaput_not run``, configured by environment
variables only: leader election off, CACHE_TTL=1s, RESYNC_PERIOD=5s, DELETE_GRACE=1s,
NETMAKER_TIMEOUT=2s, JSON logs) and waits for the first convergence.

Then, for ``--seconds``, it soaks. Node events flow at ``--event-rate`` per second (Poisson):
new nodes with their hosts (sometimes the Kubernetes node first and the host seconds later,
sometimes the node without pod CIDRs and the CIDRs seconds later), deleted nodes (the host
removed at once, later, or never), rebuilt nodes (deleted and created again under the same name
with new CIDRs: at once, 0.1-0.6 s later (within DELETE_GRACE), or without CIDRs first and the
CIDRs seconds later), hosts joining or leaving ``backup``. Meanwhile
each Netmaker request (logins included) fails with probability ``--fault-rate``: a random mix of
HTTP 500/502/503 error envelopes, timeouts (no answer), connection resets, nginx HTML 502 pages,
``Code: 500`` under HTTP 200 and truncated JSON, half of them *after* the request was processed
(the write happened, the answer is lost). Every ~10 s every token is revoked; every ~7 s the
Kubernetes watches are cut or get a 410 ERROR event, sometimes with the next node list failing
with 500. In one window of ``--outage-seconds`` (default 8) Netmaker is wholly unavailable
(every request gets 503), and the requests per second the emulator sees then are measured.
Finally every fault stops, delayed node changes are applied at once, and the time until the
rules equal the desired set is measured; the state must then still hold one RESYNC_PERIOD later.

How faults hit an exact fraction: the emulator's fault book is consulted synchronously for
every request (``before`` when the request is read, ``after`` right after it is processed, with
no await in between when no ``before`` fault struck), so a subclass of its ``Faults`` decides per
request, with probability ``--fault-rate``, to return a fault of its own. Rules added to the
book (the outage) take precedence. How deletes are judged: the emulator's egress table is
replaced, before seeding, by a subclass that inspects every delete that really removes a rule,
at that moment and under the emulator's lock, against the live Kubernetes and Netmaker state.

Usage:
    .venv/bin/python bench/faults.py --nodes 500 --fault-rate 0.2 [--seconds 60] [--seed S]
        [--event-rate 3] [--outage-seconds 8] [--converge-timeout 120]
        [--initial-timeout 300] [--artifacts DIR] [--log-level info] [--json]

Output (one JSON object with ``--json``, else one ``key: value`` per line):

- ``converged``: after the faults stopped, the rules equalled the desired set within
  ``--converge-timeout``: for each Kubernetes node with pod CIDRs and exactly one host of that
  name, for each of the host's Netmaker nodes, one rule per CIDR index with the contract fields
  (name ``<node> pods (<i+1>/<n>)``, description ``Managed by kaput-not (DO NOT EDIT): index=<i>``,
  the normalised range, nat false, status true, nodes ``{node_id: 500}``), no other rule of ours,
  and every foreign rule unchanged. ``seconds_to_converge`` counts from the moment faults stopped;
  ``stayed_converged``: still so one RESYNC_PERIOD (+1 s) later.
- ``foreign_touched``: foreign or other-cluster rules written (PUT or DELETE) at any time during
  the run, or different from their seeded JSON at the end (count of distinct rules).
- ``duplicates_left``: rules of ours beyond the first for one slot (network, index, routing node)
  at the end. ``duplicate_creates``: creates that made such a duplicate during the run (expected
  when a POST's answer is lost; the controller must clean them up).
- ``wrong_deletes``: deletes of a rule that was desired at that moment: its description is ours,
  its routing Netmaker node and that node's host existed (not pending delete, same network), the
  Kubernetes node of the host's name existed with pod CIDRs, its index was below the number of
  CIDRs, and no other rule of ours served the same slot. ``deletes_by_reason`` classifies every
  delete the same way; ``grace_violations`` counts deletes of a rule whose Kubernetes node had
  been gone or without CIDRs for less than 0.9 x DELETE_GRACE (the README promises the wait;
  reported, not part of the exit code, as the brief's definition of a wrong delete excludes it).
- ``outage_peak_requests_per_second``: the most requests the emulator saw in one 1 s bucket of
  the outage (``outage_requests_per_second`` lists every bucket, ``outage_mean_requests_per_second``
  their mean, ``pre_outage_requests_per_second`` the mean rate of the soak before it).
- ``requests_total``: Netmaker requests during the soak; ``failed_requests_fraction``: the share
  of them that failed (faults struck, random or outage, plus 401 answers after a token
  revocation); ``random_fault_fraction``: random faults over requests outside the outage (the
  ``--fault-rate`` actually applied); ``faults_by_kind`` the mix.
- ``node_events``: node changes made during the soak (``node_events_by_kind``), and
  ``kube_faults`` the Kubernetes faults injected.
- ``controller_alive_at_end`` and ``controller_exit_code``: the controller must still run at the
  end; it is then stopped with SIGTERM and its code reported (0 expected).
- also: ``puts_without_id``, ``controller_log_levels``, ``controller_top_warnings``,
  ``controller_metrics`` (from /metrics at the end), ``readyz``, ``artifacts`` (directory kept
  with the controller's log, both request logs, the event timeline and every audited delete).

Exit code 0 only if converged, stayed converged, foreign_touched == 0, duplicates_left == 0,
wrong_deletes == 0, and the controller was still running and exited 0 on SIGTERM; 1 otherwise,
2 on bad flags.
"""

# ruff: noqa: S311  (random drives a simulation, not security)

from __future__ import annotations

import argparse
import collections
import dataclasses
import heapq
import ipaddress
import json
import math
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, TextIO

import httpx2
from scale import free_port

from kaput_not.testing.http.faultbook import When
from kaput_not.testing.kube import LIST_NODES, KubeApiServer, KubeState, kubeconfig_text
from kaput_not.testing.netmaker import (
    FaultKind,
    FaultRule,
    Faults,
    NetmakerEmulator,
    NetmakerState,
)
from kaput_not.testing.netmaker.egress import EgressRecord, EgressRequest, EgressTable

USER, PASSWORD = "kaput-not", "fault-soak-password"
METRIC = 500
DESCRIPTION = "Managed by kaput-not (DO NOT EDIT): index={index}"
# Our own reading of the contract (not the product's parser): the whole description, no cluster.
OURS = re.compile(r"Managed by kaput-not \(DO NOT EDIT\): index=([0-9]{1,6})")
CONTROLLER_ENV = {
    "LEADER_ELECTION_ENABLED": "false",
    "CACHE_TTL": "1s",
    "RESYNC_PERIOD": "5s",
    "DELETE_GRACE": "1s",
    "LOG_FORMAT": "json",
    "NETMAKER_TIMEOUT": "2s",
    "POD_NAME": "fault-soak",
}
RESYNC_SECONDS = 5.0
GRACE_SECONDS = 1.0
RESERVED = 30  # hosts n0..n29 route foreign rules: never removed, never leave a network


def our_index(description: object) -> int | None:
    found = OURS.fullmatch(str(description))
    return int(found.group(1)) if found else None


def normalized(cidr: str) -> str:
    return ipaddress.ip_network(cidr, strict=False).compressed


def cidr_block(block: int, *, dual: bool) -> tuple[str, ...]:
    v4 = f"10.{block // 256}.{block % 256}.0/24"
    return (v4, f"fd00:{block:x}::/64") if dual else (v4,)


# -- fault injection -------------------------------------------------------------------------


@dataclass
class Strike:
    at: float
    kind: str
    when: str
    route: str
    random: bool


class RandomFaults(Faults):
    """The emulator's fault book, plus a fault of our own for a ``rate`` share of requests.

    Book rules (the outage) win. For a random ``after`` fault, the decision is made at the
    ``before`` call and handed over at the ``after`` call of the same request: the emulator makes
    both without awaiting in between when no ``before`` fault struck.
    """

    KINDS = (
        "status_500",
        "status_502",
        "status_503",
        "timeout",
        "reset",
        "html_502",
        "code_mismatch",
        "truncated_json",
    )

    def __init__(self, *, revoke_tokens: Callable[[], None], seed: int) -> None:
        super().__init__(revoke_tokens=revoke_tokens)
        self.rate = 0.0
        self._rng = random.Random(seed)
        self._armed: tuple[str, FaultRule] | None = None
        self._strikes_lock = threading.Lock()
        self.strikes: list[Strike] = []

    def take(self, route_key: str, when: When) -> FaultRule | None:
        rule = super().take(route_key, when)
        if when == "before":
            self._armed = None
            if rule is not None:
                self._note(rule, route_key, random_=False)
                return rule
            if self.rate > 0 and self._rng.random() < self.rate:
                made = self._random_rule(route_key)
                if made.when == "before":
                    self._note(made, route_key, random_=True)
                    return made
                self._armed = (route_key, made)
            return None
        armed, self._armed = self._armed, None
        if rule is not None:
            self._note(rule, route_key, random_=False)
            return rule
        if armed is not None and armed[0] == route_key:
            self._note(armed[1], route_key, random_=True)
            return armed[1]
        return None

    def _random_rule(self, route_key: str) -> FaultRule:
        name = self._rng.choice(self.KINDS)
        when: When = "after" if self._rng.random() < 0.5 else "before"
        message = "injected fault"
        if name.startswith("status_"):
            code = int(name.removeprefix("status_"))
            return FaultRule(route_key, FaultKind.STATUS, when, 1, status=code, message=message)
        kind = FaultKind(name)
        return FaultRule(route_key, kind, when, 1, message=message)

    def _note(self, rule: FaultRule, route_key: str, *, random_: bool) -> None:
        kind = rule.kind.value
        if rule.kind is FaultKind.STATUS:
            kind = f"status_{rule.status}"
        with self._strikes_lock:
            self.strikes.append(Strike(time.time(), kind, rule.when, route_key, random_))

    def snapshot(self) -> list[Strike]:
        with self._strikes_lock:
            return list(self.strikes)


# -- auditing every write to the egress table -------------------------------------------------


class Auditor:
    """Judges each egress write against the live state, at the moment it happens.

    Called from the emulator's thread under its state lock; it reads the Kubernetes stand-in's
    state (its own lock; nothing takes the two locks in the other order).
    """

    def __init__(self, kube: KubeState) -> None:
        self.kube = kube
        self.nm: NetmakerState | None = None
        self.lock = threading.Lock()
        self.foreign: dict[str, dict[str, object]] = {}
        self.undesired_since: dict[str, float] = {}  # node name -> when it lost node or CIDRs
        self.deletes: list[dict[str, object]] = []
        self.reasons: collections.Counter[str] = collections.Counter()
        self.wrong: list[dict[str, object]] = []
        self.grace_violations: list[dict[str, object]] = []
        self.foreign_writes: list[dict[str, object]] = []
        self.duplicate_creates: list[dict[str, object]] = []
        self.puts_without_id = 0
        self.creates = 0
        self.updates = 0

    def mark_undesired(self, name: str) -> None:
        with self.lock:
            self.undesired_since[name] = time.time()

    def mark_desired(self, name: str) -> None:
        with self.lock:
            self.undesired_since.pop(name, None)

    def classify(self, record: EgressRecord, table: EgressTable) -> tuple[str, str | None]:
        """Why this rule may go (or ``"desired"``), and the node name it serves if known."""
        assert self.nm is not None
        index = our_index(record.description)
        if index is None:
            return "foreign", None
        if not record.nodes:
            return "nodes-empty", None
        if len(record.nodes) != 1:
            return "several-routers", None
        node_id = next(iter(record.nodes))
        node = self.nm.node(node_id)
        if node is None:
            return "netmaker-node-gone", None
        if node.pending_delete:
            return "netmaker-node-pending-delete", None
        if node.network != record.network:
            return "wrong-network", None
        host = self.nm.host(node.host_id)
        if host is None:
            return "host-gone", None
        name = host.name
        if sum(1 for h in self.nm.hosts() if h.name == name) > 1:
            return "ambiguous-host-name", name
        kube_node = self.kube.node(name)
        if kube_node is None:
            return "kube-node-gone", name
        if not kube_node.pod_cidrs:
            return "no-pod-cidrs", name
        if index >= len(kube_node.pod_cidrs):
            return "index-beyond-cidrs", name
        for other in table.records(record.network):
            if (
                other.id != record.id
                and our_index(other.description) == index
                and node_id in other.nodes
            ):
                return "duplicate", name
        return "desired", name

    def on_delete(self, record: EgressRecord, table: EgressTable) -> None:
        now = time.time()
        reason, name = self.classify(record, table)
        entry: dict[str, object] = {
            "at": now,
            "reason": reason,
            "node": name,
            "egress": record.to_api(),
        }
        if name is not None:
            kube_node = self.kube.node(name)
            entry["kube_pod_cidrs"] = list(kube_node.pod_cidrs) if kube_node else None
        with self.lock:
            self.reasons[reason] += 1
            self.deletes.append(entry)
            if reason == "desired":
                self.wrong.append(entry)
            if record.id in self.foreign:
                self.foreign_writes.append({"at": now, "write": "DELETE", "id": record.id})
            if reason in ("kube-node-gone", "no-pod-cidrs") and name is not None:
                since = self.undesired_since.get(name)
                if since is not None and now - since < 0.9 * GRACE_SECONDS:
                    self.grace_violations.append({**entry, "undesired_for": now - since})

    def on_update(self, request_id: str, record: EgressRecord) -> None:
        with self.lock:
            self.updates += 1
            if not request_id:
                self.puts_without_id += 1
            if record.id in self.foreign:
                self.foreign_writes.append({"at": time.time(), "write": "PUT", "id": record.id})

    def on_create(self, record: EgressRecord, table: EgressTable) -> None:
        index = our_index(record.description)
        twins = []
        if index is not None and record.nodes:
            twins = [
                other.id
                for other in table.records(record.network)
                if other.id != record.id
                and our_index(other.description) == index
                and set(other.nodes) & set(record.nodes)
            ]
        with self.lock:
            self.creates += 1
            if twins:
                self.duplicate_creates.append(
                    {"at": time.time(), "egress": record.to_api(), "twins": twins}
                )


class AuditedEgressTable(EgressTable):
    """The emulator's egress table, reporting every create, update and delete to an auditor."""

    def __init__(
        self,
        auditor: Auditor,
        *,
        clock: Callable[[], float],
        network_exists: Callable[[str], bool],
        node_exists: Callable[[str], bool],
    ) -> None:
        super().__init__(clock=clock, network_exists=network_exists, node_exists=node_exists)
        self._auditor = auditor

    def create(self, request: EgressRequest, *, caller: str) -> EgressRecord:
        record = super().create(request, caller=caller)
        self._auditor.on_create(record, self)
        return record

    def update(self, request: EgressRequest) -> EgressRecord:
        record = super().update(request)
        self._auditor.on_update(request.id, record)
        return record

    def delete(self, egress_id: str) -> None:
        record = self.get(egress_id)
        if record is not None:
            self._auditor.on_delete(record, self)
        super().delete(egress_id)


# -- convergence ------------------------------------------------------------------------------

RuleKey = tuple[str, str, str, str, bool, bool, tuple[tuple[str, int], ...]]


@dataclass
class Verdict:
    converged: bool
    missing: list[RuleKey]
    extra: list[RuleKey]
    duplicates: int
    foreign_changed: list[str]
    ours: int


def verdict(nm: NetmakerState, kube: KubeState, foreign: dict[str, dict[str, object]]) -> Verdict:
    cidrs_by_name = {n.name: n.pod_cidrs for n in kube.nodes() if n.pod_cidrs}
    desired: collections.Counter[RuleKey] = collections.Counter()
    actual: collections.Counter[RuleKey] = collections.Counter()
    slots: collections.Counter[tuple[str, int, tuple[str, ...]]] = collections.Counter()
    with nm.lock:
        hosts = nm.hosts()
        nodes = {n.id: n for n in nm.nodes()}
        names = collections.Counter(h.name for h in hosts)
        for host in hosts:
            cidrs = cidrs_by_name.get(host.name)
            if not cidrs or names[host.name] > 1:
                continue
            for node_id in host.node_ids:
                node = nodes.get(node_id)
                if node is None or node.pending_delete:
                    continue
                for i, cidr in enumerate(cidrs):
                    name = f"{host.name} pods ({i + 1}/{len(cidrs)})"
                    desc = DESCRIPTION.format(index=i)
                    key = (node.network, desc, name, normalized(cidr), False, True)
                    desired[(*key, ((node_id, METRIC),))] += 1
        egresses = nm.egresses()
    current = {str(e["id"]): e for e in egresses}
    for e in egresses:
        index = our_index(e["description"])
        if index is None:
            continue
        routers = e["nodes"]
        assert isinstance(routers, dict)
        pairs = tuple(sorted((str(k), int(v)) for k, v in routers.items()))
        key = (
            str(e["network"]),
            str(e["description"]),
            str(e["name"]),
            str(e["range"]),
            e["nat"] is True,
            e["status"] is True,
        )
        actual[(*key, pairs)] += 1
        slots[(str(e["network"]), index, tuple(k for k, _ in pairs))] += 1
    duplicates = sum(count - 1 for count in slots.values() if count > 1)
    changed = [fid for fid, seeded in foreign.items() if current.get(fid) != seeded]
    missing = list((desired - actual).elements())
    extra = list((actual - desired).elements())
    return Verdict(
        converged=not missing and not extra and not changed and duplicates == 0,
        missing=missing,
        extra=extra,
        duplicates=duplicates,
        foreign_changed=changed,
        ours=sum(actual.values()),
    )


# -- the simulated cluster --------------------------------------------------------------------


@dataclass
class SimNode:
    name: str
    reserved: bool = False
    host_id: str | None = None
    in_kube: bool = False


@dataclass(order=True)
class Pending:
    due: float
    seq: int
    what: str = field(compare=False)
    action: Callable[[], None] = field(compare=False)


class Driver:
    """Seeds both stand-ins and makes every change to them; one thread (the caller's) only."""

    def __init__(
        self,
        nm: NetmakerEmulator,
        kube: KubeApiServer,
        auditor: Auditor,
        rng: random.Random,
        timeline: TextIO,
    ) -> None:
        self.nm = nm
        self.kube = kube
        self.auditor = auditor
        self.rng = rng
        self.timeline = timeline
        self.nodes: dict[str, SimNode] = {}
        self.busy: set[str] = set()
        self.pending: list[Pending] = []
        self.seq = 0
        self.next_index = 0
        self.next_block = 0
        self.counts: collections.Counter[str] = collections.Counter()

    def note(self, kind: str, **details: object) -> None:
        self.timeline.write(json.dumps({"at": time.time(), "kind": kind, **details}) + "\n")

    # seeding

    def seed(self, count: int) -> dict[str, dict[str, object]]:
        state = self.nm.state
        state.add_network("mesh", "100.64.0.0/16")
        state.add_network("backup")
        self.next_block = count
        self.next_index = count
        for i in range(count):
            name = f"n{i}"
            draw = self.rng.random()
            reserved = i < RESERVED
            if draw < 0.03 and not reserved:
                networks = ["backup"]
            elif draw < 0.23:
                networks = ["mesh", "backup"]
            else:
                networks = ["mesh"]
            sim = SimNode(name, reserved=reserved)
            sim.host_id = state.add_host(name, networks).id
            self.kube.state.create_node(name, pod_cidrs=cidr_block(i, dual=self.rng.random() < 0.5))
            sim.in_kube = True
            self.nodes[name] = sim
        gateways = [state.add_host(f"gw-{k}", ["mesh", "backup"]) for k in range(2)]
        return self._seed_foreign(count, gateways[0].nodes_by_network, gateways[1].nodes_by_network)

    def _seed_foreign(
        self, count: int, gw_a: dict[str, str], gw_b: dict[str, str]
    ) -> dict[str, dict[str, object]]:
        state = self.nm.state
        reserved = [self.nodes[f"n{i}"] for i in range(min(RESERVED, count))]

        def mesh_node(k: int) -> tuple[str, str]:
            sim = reserved[k % len(reserved)]
            assert sim.host_id is not None
            host = state.host(sim.host_id)
            assert host is not None
            return sim.name, host.nodes_by_network["mesh"]

        seeded: list[dict[str, object]] = []
        for k in range(20):
            variant = k % 5
            name, node_id = mesh_node(k)
            if variant == 0:
                seeded.append(
                    state.add_egress(
                        network="mesh" if k % 2 else "backup",
                        cidr=f"192.168.{k}.0/24",
                        nodes={(gw_a if k % 2 else gw_b)["mesh" if k % 2 else "backup"]: 100},
                        name=f"office-{k}",
                        description=f"office vpn {k}",
                        nat=True,
                    )
                )
            elif variant == 1:
                seeded.append(
                    state.add_egress(
                        network="mesh",
                        cidr=f"10.250.{k}.0/24",
                        nodes={node_id: METRIC},
                        name=f"{name} pods (1/1)",
                        description="Managed by kaput-not (DO NOT EDIT): index=abc",
                    )
                )
            elif variant == 2:
                seeded.append(
                    state.add_egress(
                        network="mesh",
                        cidr=f"10.251.{k}.0/24",
                        nodes={node_id: METRIC},
                        name=f"{name} pods (1/2)",
                        description="Managed by kaput-not (DO NOT EDIT): index=0 extra",
                    )
                )
            elif variant == 3:
                seeded.append(
                    state.add_egress(
                        network="mesh",
                        cidr=f"172.20.{k}.0/24",
                        nodes={},
                        name=f"{name} pods (1/1)",
                        description=f"office vpn {k} (router decommissioned)",
                    )
                )
            else:
                seeded.append(
                    state.add_egress(
                        network="backup",
                        cidr=f"10.252.{k}.0/24",
                        nodes={gw_b["backup"]: METRIC},
                        name=f"{name} pods (1/1)",
                        description="Managed by kaput-not (DO NOT EDIT): clusterx=a index=0",
                    )
                )
        for k in range(10):
            name, node_id = mesh_node(k)
            kube_node = self.kube.state.node(name)
            assert kube_node is not None
            # Half use the very range our own rule for that node has: only the scope differs.
            cidr = kube_node.pod_cidrs[0] if k % 2 == 0 else f"10.253.{k}.0/24"
            seeded.append(
                state.add_egress(
                    network="mesh",
                    cidr=normalized(cidr),
                    nodes={node_id: METRIC},
                    name=f"{name} pods (1/1)",
                    description="Managed by kaput-not (DO NOT EDIT): cluster=red index=0",
                )
            )
        return {str(e["id"]): e for e in seeded}

    # primitives

    def _networks(self) -> list[str]:
        draw = self.rng.random()
        if draw < 0.03:
            return ["backup"]
        return ["mesh", "backup"] if draw < 0.23 else ["mesh"]

    def _cidrs(self) -> tuple[str, ...]:
        block = self.next_block
        self.next_block += 1
        return cidr_block(block, dual=self.rng.random() < 0.5)

    def _later(self, low: float, high: float, what: str, action: Callable[[], None]) -> None:
        self.seq += 1
        due = time.time() + self.rng.uniform(low, high)
        heapq.heappush(self.pending, Pending(due, self.seq, what, action))

    def _add_host(self, sim: SimNode, networks: list[str]) -> None:
        sim.host_id = self.nm.state.add_host(sim.name, networks).id
        self.note("host-added", node=sim.name, networks=networks)

    def _remove_host(self, sim: SimNode) -> None:
        if sim.host_id is not None:
            self.nm.state.remove_host(sim.host_id)
            sim.host_id = None
            self.note("host-removed", node=sim.name)

    def _kube_create(self, sim: SimNode, cidrs: tuple[str, ...]) -> None:
        if not cidrs:
            self.auditor.mark_undesired(sim.name)
        self.kube.state.create_node(sim.name, pod_cidrs=cidrs)
        sim.in_kube = True
        if cidrs:
            self.auditor.mark_desired(sim.name)
        self.note("kube-created", node=sim.name, cidrs=list(cidrs))

    def _kube_assign(self, sim: SimNode, cidrs: tuple[str, ...]) -> None:
        self.kube.state.update_node(sim.name, pod_cidrs=cidrs)
        self.auditor.mark_desired(sim.name)
        self.note("kube-cidrs-assigned", node=sim.name, cidrs=list(cidrs))

    def _kube_delete(self, sim: SimNode) -> None:
        self.auditor.mark_undesired(sim.name)
        self.kube.state.delete_node(sim.name)
        sim.in_kube = False
        self.note("kube-deleted", node=sim.name)

    def _done(self, name: str) -> Callable[[], None]:
        return lambda: self.busy.discard(name)

    def _then(self, *steps: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            for step in steps:
                step()

        return run

    def _pick(self, ok: Callable[[SimNode], bool]) -> SimNode | None:
        candidates = [s for s in self.nodes.values() if s.name not in self.busy and ok(s)]
        return self.rng.choice(candidates) if candidates else None

    # events

    def random_event(self) -> None:
        kinds = ("create", "delete", "rebuild", "join", "leave")
        weights = (0.24, 0.22, 0.34, 0.10, 0.10)
        kind = self.rng.choices(kinds, weights)[0]
        done = {
            "create": self.ev_create,
            "delete": self.ev_delete,
            "rebuild": self.ev_rebuild,
            "join": self.ev_join,
            "leave": self.ev_leave,
        }[kind]()
        if done is not None:
            self.counts[done] += 1

    def ev_create(self) -> str:
        sim = SimNode(f"n{self.next_index}")
        self.next_index += 1
        self.nodes[sim.name] = sim
        networks, cidrs = self._networks(), self._cidrs()
        draw = self.rng.random()
        if draw < 0.7:
            self._add_host(sim, networks)
            self._kube_create(sim, cidrs)
            return "create"
        self.busy.add(sim.name)
        if draw < 0.85:
            self._kube_create(sim, cidrs)
            add = self._then(lambda: self._add_host(sim, networks), self._done(sim.name))
            self._later(0.5, 3.0, "host-added", add)
            return "create-host-later"
        self._add_host(sim, networks)
        self._kube_create(sim, ())
        assign = self._then(lambda: self._kube_assign(sim, cidrs), self._done(sim.name))
        self._later(0.3, 3.0, "kube-cidrs-assigned", assign)
        return "create-cidrs-later"

    def ev_delete(self) -> str | None:
        sim = self._pick(lambda s: s.in_kube and not s.reserved)
        if sim is None:
            return None
        self._kube_delete(sim)
        del self.nodes[sim.name]
        draw = self.rng.random()
        if draw < 0.5:
            self._remove_host(sim)
            return "delete-with-host"
        if draw < 0.75:
            self._later(0.5, 3.0, "host-removed", lambda: self._remove_host(sim))
            return "delete-host-later"
        return "delete-host-stays"

    def ev_rebuild(self) -> str | None:
        sim = self._pick(lambda s: s.in_kube and s.host_id is not None)
        if sim is None:
            return None
        cidrs = self._cidrs()
        self._kube_delete(sim)
        draw = self.rng.random()
        if draw < 0.4:
            self._kube_create(sim, cidrs)
            return "rebuild"
        self.busy.add(sim.name)
        if draw < 0.7:
            # Registers again a moment later, well within DELETE_GRACE: rules must stay.
            create = self._then(lambda: self._kube_create(sim, cidrs), self._done(sim.name))
            self._later(0.1, 0.6, "kube-created", create)
            return "rebuild-with-gap"
        self._kube_create(sim, ())
        assign = self._then(lambda: self._kube_assign(sim, cidrs), self._done(sim.name))
        self._later(0.2, 2.0, "kube-cidrs-assigned", assign)
        return "rebuild-cidrs-later"

    def _host_networks(self, sim: SimNode) -> list[str]:
        if sim.host_id is None:
            return []
        host = self.nm.state.host(sim.host_id)
        return list(host.nodes_by_network) if host is not None else []

    def ev_join(self) -> str | None:
        sim = self._pick(lambda s: s.host_id is not None and "backup" not in self._host_networks(s))
        if sim is None or sim.host_id is None:
            return None
        self.nm.state.join_network(sim.host_id, "backup")
        self.note("host-joined", node=sim.name, network="backup")
        return "join-backup"

    def ev_leave(self) -> str | None:
        sim = self._pick(
            lambda s: (
                not s.reserved
                and s.host_id is not None
                and len(self._host_networks(s)) > 1
                and "backup" in self._host_networks(s)
            )
        )
        if sim is None or sim.host_id is None:
            return None
        host = self.nm.state.host(sim.host_id)
        assert host is not None
        self.nm.state.remove_node(host.nodes_by_network["backup"])
        self.note("host-left", node=sim.name, network="backup")
        return "leave-backup"

    def run_due(self, now: float) -> None:
        while self.pending and self.pending[0].due <= now:
            heapq.heappop(self.pending).action()

    def flush(self) -> int:
        """Apply every delayed change now; how many there were."""
        done = 0
        while self.pending:
            heapq.heappop(self.pending).action()
            done += 1
        return done


# -- the controller process -------------------------------------------------------------------


def start_controller(
    nm: NetmakerEmulator, kubeconfig: Path, port: int, log_level: str, log_file: IO[bytes]
) -> subprocess.Popen[bytes]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "NETMAKER_API_URL": nm.base_url,
        "NETMAKER_USERNAME": USER,
        "NETMAKER_PASSWORD": PASSWORD,
        "KUBECONFIG": str(kubeconfig),
        "METRICS_ADDRESS": f"127.0.0.1:{port}",
        "LOG_LEVEL": log_level,
        **CONTROLLER_ENV,
    }
    return subprocess.Popen(
        [sys.executable, "-m", "kaput_not", "run"],
        stdout=log_file,
        stderr=subprocess.STDOUT,
        env=env,
    )


def scrape(port: int) -> tuple[dict[str, float], str]:
    """Metric sums per name (kaput_not_*, histogram buckets left out) and the /readyz text."""
    sums: dict[str, float] = collections.defaultdict(float)
    readyz = ""
    try:
        with httpx2.Client(timeout=5) as client:
            text = client.get(f"http://127.0.0.1:{port}/metrics").text
            ready = client.get(f"http://127.0.0.1:{port}/readyz")
            readyz = f"{ready.status_code} {ready.text.strip()}"
    except httpx2.HTTPError as exc:
        return {}, f"unreachable: {exc}"
    for line in text.splitlines():
        if not line.startswith("kaput_not_"):
            continue
        name_labels, _, value = line.rpartition(" ")
        name = name_labels.split("{", 1)[0]
        if name.endswith(("_bucket", "_created")):
            continue
        if "{" in name_labels and name == "kaput_not_reconciles_total":
            name = name_labels
        try:
            sums[name] += float(value)
        except ValueError:
            continue
    return dict(sums), readyz


_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_NUMBER = re.compile(r"\d+(\.\d+)?")


def read_controller_log(path: Path) -> tuple[dict[str, int], list[tuple[str, int]], list[str]]:
    """Lines per level, the commonest warning/error shapes, and lines that are not JSON."""
    levels: collections.Counter[str] = collections.Counter()
    shapes: collections.Counter[str] = collections.Counter()
    other: list[str] = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            other.append(line)
            continue
        if not isinstance(entry, dict):
            other.append(line)
            continue
        level = str(entry.get("level", "?"))
        levels[level] += 1
        if level in ("warning", "error", "critical"):
            shape = _NUMBER.sub("<n>", _ID.sub("<id>", str(entry.get("message", ""))))
            shapes[f"{level}: {shape[:160]}"] += 1
    return dict(levels), shapes.most_common(12), other[:20]


# -- the run ----------------------------------------------------------------------------------


@dataclass
class Options:
    nodes: int
    fault_rate: float
    seconds: float
    seed: int
    event_rate: float
    outage_seconds: float
    converge_timeout: float
    initial_timeout: float
    artifacts: Path
    log_level: str
    json: bool = False


def wait_converged(
    nm: NetmakerEmulator,
    kube: KubeApiServer,
    foreign: dict[str, dict[str, object]],
    controller: subprocess.Popen[bytes],
    timeout: float,
) -> tuple[Verdict, float | None]:
    started = time.time()
    while True:
        result = verdict(nm.state, kube.state, foreign)
        if result.converged:
            return result, time.time() - started
        if time.time() - started > timeout or controller.poll() is not None:
            return result, None
        time.sleep(0.25)


def request_stats(
    nm: NetmakerEmulator,
    faults: RandomFaults,
    soak: tuple[float, float],
    outage: tuple[float, float],
) -> dict[str, object]:
    entries = nm.log.entries
    in_soak = [e for e in entries if soak[0] <= e.at < soak[1]]
    in_outage = [e for e in entries if outage[0] <= e.at < outage[1]]
    buckets = [0] * max(1, round(outage[1] - outage[0]))
    for entry in in_outage:
        buckets[min(len(buckets) - 1, int(entry.at - outage[0]))] += 1
    before = [e for e in in_soak if e.at < outage[0]]
    after = [e for e in in_soak if outage[1] <= e.at < outage[1] + 5]
    strikes = [s for s in faults.snapshot() if soak[0] <= s.at < soak[1]]
    random_strikes = [s for s in strikes if s.random]
    outside = [e for e in in_soak if not outage[0] <= e.at < outage[1]]
    unauthorized = sum(1 for e in in_soak if e.status == 401)
    bad_status = sum(1 for e in in_soak if e.status is None or e.status >= 400)
    total = len(in_soak)
    by_kind = collections.Counter(s.kind for s in strikes)
    by_when = collections.Counter(f"{s.when}" for s in random_strikes)
    return {
        "requests_total": total,
        "requests_whole_run": len(entries),
        "requests_by_route_in_soak": dict(collections.Counter(e.route for e in in_soak)),
        "failed_requests_fraction": round((len(strikes) + unauthorized) / total, 4)
        if total
        else 0.0,
        "failed_by_status_fraction": round(bad_status / total, 4) if total else 0.0,
        "random_fault_fraction": round(len(random_strikes) / len(outside), 4) if outside else 0.0,
        "faults_injected": len(strikes),
        "faults_by_kind": dict(by_kind),
        "random_faults_by_phase": dict(by_when),
        "unauthorized_401": unauthorized,
        "outage_seconds": round(outage[1] - outage[0], 2),
        "outage_requests": len(in_outage),
        "outage_mean_requests_per_second": round(len(in_outage) / (outage[1] - outage[0]), 1)
        if outage[1] > outage[0]
        else 0.0,
        "outage_peak_requests_per_second": max(buckets),
        "outage_requests_per_second": buckets,
        "pre_outage_requests_per_second": round(len(before) / (outage[0] - soak[0]), 1)
        if outage[0] > soak[0]
        else None,
        "post_outage_5s_requests_per_second": round(len(after) / 5, 1),
    }


def write_jsonl(path: Path, rows: Iterable[object]) -> None:
    with path.open("w") as out:
        for row in rows:
            out.write(json.dumps(row, default=str) + "\n")


def soak(
    opts: Options,
    kube: KubeApiServer,
    faults: RandomFaults,
    driver: Driver,
    rng: random.Random,
) -> tuple[tuple[float, float], tuple[float, float], collections.Counter[str]]:
    """Events and faults for ``opts.seconds``; returns the soak and outage windows."""
    kube_faults: collections.Counter[str] = collections.Counter()
    start = time.time()
    end = start + opts.seconds
    outage_length = min(opts.outage_seconds, opts.seconds * 0.4)
    outage_start = start + opts.seconds * 0.4
    outage_end = outage_start + outage_length
    in_outage = False
    outage_done = outage_length <= 0
    next_event = start + rng.expovariate(opts.event_rate) if opts.event_rate > 0 else math.inf
    next_revoke = start + rng.uniform(9, 11)
    next_kube = start + rng.uniform(6, 8)
    faults.rate = opts.fault_rate
    driver.note("faults-started", rate=opts.fault_rate)
    while (now := time.time()) < end:
        driver.run_due(now)
        while next_event <= now:
            driver.random_event()
            next_event += rng.expovariate(opts.event_rate)
        if not outage_done and not in_outage and now >= outage_start:
            faults.status("*", 503, "service unavailable", times=None)
            in_outage, outage_start = True, now
            driver.note("outage-started")
        if in_outage and now >= outage_end:
            faults.clear()
            in_outage, outage_done, outage_end = False, True, now
            driver.note("outage-ended")
        if now >= next_revoke:
            faults.revoke_tokens()
            kube_faults["netmaker-tokens-revoked"] += 1
            driver.note("tokens-revoked")
            next_revoke = now + rng.uniform(9, 11)
        if now >= next_kube:
            draw = rng.random()
            if draw < 0.4:
                kind = "drop-watches"
                kube.faults.drop_watches()
            elif draw < 0.8:
                kind = "watch-error-410"
                kube.faults.inject_watch_error(410)
            else:
                kind = "list-500-then-drop-watches"
                kube.faults.fail(LIST_NODES, 500, times=1)
                kube.faults.drop_watches()
            kube_faults[kind] += 1
            driver.note("kube-fault", fault=kind)
            next_kube = now + rng.uniform(6, 8)
        time.sleep(0.02)
    if in_outage:
        outage_end = time.time()
    faults.rate = 0.0
    faults.clear()
    kube.faults.clear()
    if not kube.faults.reachable:
        kube.faults.set_reachable(True)
    flushed = driver.flush()
    soak_end = time.time()
    driver.note("faults-stopped", flushed=flushed)
    window = (outage_start, outage_end) if outage_done or in_outage else (soak_end, soak_end)
    return (start, soak_end), window, kube_faults


def run(opts: Options) -> dict[str, Any]:
    opts.artifacts.mkdir(parents=True, exist_ok=True)
    rng = random.Random(opts.seed)
    result: dict[str, Any] = {
        "nodes": opts.nodes,
        "fault_rate": opts.fault_rate,
        "seconds": opts.seconds,
        "seed": opts.seed,
        "event_rate": opts.event_rate,
        "artifacts": str(opts.artifacts),
    }
    kube_server = KubeApiServer(bookmark_interval=1.0)
    auditor = Auditor(kube_server.state)
    emulator = NetmakerEmulator(username=USER, password=PASSWORD)
    state = emulator.state
    state.egress = AuditedEgressTable(
        auditor,
        clock=state.clock,
        network_exists=lambda netid: state.network(netid) is not None,
        node_exists=lambda node_id: state.node(node_id) is not None,
    )
    auditor.nm = state
    faults = RandomFaults(revoke_tokens=state.rotate_jwt_secret, seed=opts.seed + 1)
    emulator.faults = faults
    port = free_port()
    log_path = opts.artifacts / "controller.log"
    with (
        kube_server.run_in_thread() as kube,
        emulator.run_in_thread() as nm,
        (opts.artifacts / "events.jsonl").open("w") as timeline,
        log_path.open("wb") as log_file,
    ):
        driver = Driver(nm, kube, auditor, rng, timeline)
        seeded_at = time.time()
        foreign = driver.seed(opts.nodes)
        auditor.foreign = foreign
        result["seed_seconds"] = round(time.time() - seeded_at, 2)
        result["foreign_rules"] = len(foreign)
        (opts.artifacts / "foreign-seeded.json").write_text(json.dumps(foreign, indent=1))
        kubeconfig = opts.artifacts / "kubeconfig"
        kubeconfig.write_text(kubeconfig_text(kube.base_url))
        controller = start_controller(nm, kubeconfig, port, opts.log_level, log_file)
        try:
            result.update(_drive(opts, nm, kube, faults, driver, rng, controller, foreign, port))
        finally:
            if controller.poll() is None:
                controller.kill()
                controller.wait(10)
        write_jsonl(
            opts.artifacts / "netmaker-requests.jsonl", map(dataclasses.asdict, nm.log.entries)
        )
        write_jsonl(
            opts.artifacts / "kube-requests.jsonl", map(dataclasses.asdict, kube.log.entries)
        )
        write_jsonl(opts.artifacts / "strikes.jsonl", map(dataclasses.asdict, faults.snapshot()))
        write_jsonl(opts.artifacts / "deletes.jsonl", auditor.deletes)
        (opts.artifacts / "egress-final.json").write_text(json.dumps(nm.state.egresses(), indent=1))
    levels, top, not_json = read_controller_log(log_path)
    result["controller_log_levels"] = levels
    result["controller_top_warnings"] = top
    if not_json:
        result["controller_non_json_lines"] = not_json
    with auditor.lock:
        result["wrong_deletes"] = len(auditor.wrong)
        result["wrong_delete_examples"] = auditor.wrong[:5]
        result["grace_violations"] = len(auditor.grace_violations)
        result["grace_violation_examples"] = auditor.grace_violations[:3]
        result["deletes_by_reason"] = dict(auditor.reasons)
        result["creates"] = auditor.creates
        result["updates"] = auditor.updates
        result["duplicate_creates"] = len(auditor.duplicate_creates)
        result["puts_without_id"] = auditor.puts_without_id
        written = {str(w["id"]) for w in auditor.foreign_writes}
        result["foreign_writes"] = auditor.foreign_writes[:10]
    changed = set(result.pop("_foreign_changed", []))
    result["foreign_touched"] = len(written | changed)
    (opts.artifacts / "result.json").write_text(json.dumps(result, indent=1, default=str))
    return result


def _drive(
    opts: Options,
    nm: NetmakerEmulator,
    kube: KubeApiServer,
    faults: RandomFaults,
    driver: Driver,
    rng: random.Random,
    controller: subprocess.Popen[bytes],
    foreign: dict[str, dict[str, object]],
    port: int,
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    first, took = wait_converged(nm, kube, foreign, controller, opts.initial_timeout)
    out["initial_converged"] = took is not None
    out["initial_converge_seconds"] = round(took, 2) if took is not None else None
    out["initial_rules"] = first.ours
    if took is None:
        out.update(_not_converged(first))
        out.update(converged=False, seconds_to_converge=None, stayed_converged=False)
        out["_foreign_changed"] = first.foreign_changed
        return out | _stop(controller, port)
    windows = soak(opts, kube, faults, driver, rng)
    (soak_start, soak_end), outage, kube_faults = windows
    out["node_events"] = sum(driver.counts.values())
    out["node_events_by_kind"] = dict(driver.counts)
    out["kube_faults"] = dict(kube_faults)
    final, took = wait_converged(nm, kube, foreign, controller, opts.converge_timeout)
    out["converged"] = took is not None
    out["seconds_to_converge"] = round(took, 2) if took is not None else None
    stayed = False
    if took is not None:
        time.sleep(RESYNC_SECONDS + 1)
        later = verdict(nm.state, kube.state, foreign)
        stayed = later.converged
        if not stayed:
            out["after_resync"] = _not_converged(later)
        final = later
    out["stayed_converged"] = stayed
    if took is None:
        out.update(_not_converged(final))
    out["duplicates_left"] = final.duplicates
    out["rules_final"] = final.ours
    out["kube_nodes_final"] = len(kube.state.nodes())
    out["_foreign_changed"] = final.foreign_changed
    out.update(request_stats(nm, faults, (soak_start, soak_end), outage))
    return out | _stop(controller, port)


def _not_converged(v: Verdict) -> dict[str, object]:
    return {
        "missing_rules": len(v.missing),
        "extra_rules": len(v.extra),
        "missing_examples": v.missing[:5],
        "extra_examples": v.extra[:5],
        "foreign_changed_ids": v.foreign_changed[:10],
        "duplicates": v.duplicates,
    }


def _stop(controller: subprocess.Popen[bytes], port: int) -> dict[str, object]:
    alive = controller.poll() is None
    out: dict[str, object] = {"controller_alive_at_end": alive}
    if alive:
        metrics, readyz = scrape(port)
        out["controller_metrics"] = metrics
        out["readyz"] = readyz
        controller.send_signal(signal.SIGTERM)
        try:
            out["controller_exit_code"] = controller.wait(20)
        except subprocess.TimeoutExpired:
            controller.kill()
            out["controller_exit_code"] = controller.wait(10)
            out["controller_stop_timed_out"] = True
    else:
        out["controller_exit_code"] = controller.returncode
    return out


def passed(result: dict[str, Any]) -> bool:
    return bool(
        result.get("converged")
        and result.get("stayed_converged")
        and result.get("foreign_touched") == 0
        and result.get("duplicates_left") == 0
        and result.get("wrong_deletes") == 0
        and result.get("controller_alive_at_end")
        and result.get("controller_exit_code") == 0
    )


def parse(argv: list[str]) -> Options:
    parser = argparse.ArgumentParser(
        prog="bench/faults.py", description="Fault soak of `kaput-not run`."
    )
    parser.add_argument("--nodes", type=int, default=500)
    parser.add_argument("--fault-rate", type=float, default=0.2)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--event-rate", type=float, default=3.0, help="node events per second")
    parser.add_argument("--outage-seconds", type=float, default=8.0)
    parser.add_argument("--converge-timeout", type=float, default=120.0)
    parser.add_argument("--initial-timeout", type=float, default=300.0)
    parser.add_argument("--artifacts", type=Path, default=None)
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning"])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    if not RESERVED <= args.nodes <= 30000:
        parser.error(f"--nodes must be between {RESERVED} and 30000")
    if not 0.0 <= args.fault_rate <= 1.0:
        parser.error("--fault-rate must be between 0 and 1")
    if args.seconds <= 0 or args.event_rate < 0 or args.outage_seconds < 0:
        parser.error("--seconds must be positive; --event-rate and --outage-seconds not negative")
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**31)
    artifacts = args.artifacts or Path(tempfile.mkdtemp(prefix="kaput-not-faults-"))
    return Options(
        nodes=args.nodes,
        fault_rate=args.fault_rate,
        seconds=args.seconds,
        seed=seed,
        event_rate=args.event_rate,
        outage_seconds=args.outage_seconds,
        converge_timeout=args.converge_timeout,
        initial_timeout=args.initial_timeout,
        artifacts=artifacts,
        log_level=args.log_level,
        json=args.json,
    )


def main(argv: list[str]) -> int:
    opts = parse(argv)
    result = run(opts)
    result["passed"] = passed(result)
    if opts.json:
        print(json.dumps(result, default=str))
    else:
        for key, value in result.items():
            print(f"{key}: {json.dumps(value, default=str)}")
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
