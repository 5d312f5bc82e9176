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
real controller as child processes (``python -m kaput_not run``, configured by environment
variables only: CACHE_TTL=1s, RESYNC_PERIOD=5s, DELETE_GRACE=1s, NETMAKER_TIMEOUT=2s,
MAX_DELETE_FRACTION=0.5, MAX_DELETE_MIN=5, JSON logs, each process its own log and metrics
port) and waits for the first convergence. Without ``--restarts`` and ``--replicas`` that is
one process with leader election off, as before; with either, ``--replicas`` processes (2 by
default when ``--restarts`` is given, else 1) with leader election on, against the stand-in's
Lease ``kube-system/kaput-not`` (distinct POD_NAMEs, lease 3s, renew deadline 2s, retry 0.5s).

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
With ``--restarts N``, N times during the soak (one random moment, from the seed, in each of N
equal parts of it) a controller process is stopped and a new one started: half by SIGKILL (an
OOM kill: nothing flushed; the container starts again in the same pod, so under the same
POD_NAME, once the old process is gone), half by SIGTERM (a rollout: a new pod, a new
POD_NAME, that may start while the old one is still stopping, as with a surge); the new process
starts at once or after a pause of 0.5-5 s (half each). Three restarts in four are aimed at the
Lease's holder, the others at a standby (the other kind when the wanted one is not running; a
process is signalled only once it is 3 s old, when its signal handlers are surely set). A
process that exits on its own is started again 1 s later, as the kubelet would. Leader changes
are counted from outside: a thread reads the Lease's ``holderIdentity`` in the stand-in's state
every 50 ms. Finally every fault stops, delayed node changes are applied at once, pending
starts are made, and the time until the rules equal the desired set is measured; the state
must then still hold one RESYNC_PERIOD later.

How faults hit an exact fraction: the emulator's fault book is consulted synchronously for
every request (``before`` when the request is read, ``after`` right after it is processed, with
no await in between when no ``before`` fault struck), so a subclass of its ``Faults`` decides per
request, with probability ``--fault-rate``, to return a fault of its own. Rules added to the
book (the outage) take precedence. How deletes are judged: the emulator's egress table is
replaced, before seeding, by a subclass that inspects every delete that really removes a rule,
at that moment and under the emulator's lock, against the live Kubernetes and Netmaker state;
the same table counts our rules (descriptions that are exactly ours) after every insert, removal
or rewrite that changes the count, under the same lock, for the loss against the high water.

Usage:
    .venv/bin/python bench/faults.py --nodes 500 --fault-rate 0.2 [--seconds 60] [--seed S]
        [--event-rate 3] [--outage-seconds 8] [--converge-timeout 120]
        [--initial-timeout 300] [--restarts N] [--replicas R] [--loss-window SECONDS]
        [--artifacts DIR] [--log-level info] [--json]
    .venv/bin/python bench/faults.py --nodes 500 --fault-rate 0.2 --restarts 5 --json

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
- ``most_lost_against_high_water``: the largest drop of the number of our rules in the emulator
  below its high-water mark, over the whole run from the controllers' start (or a sliding
  ``--loss-window``), judged at every change of the count; ``most_lost_fraction`` is that drop
  over the mark, ``most_lost_high_water`` the mark, ``most_lost_at_seconds`` when (seconds since
  the controllers started), ``loss_budget`` the budget then: MAX_DELETE_FRACTION of the mark, at
  least MAX_DELETE_MIN, as the controller is configured (``loss_budget_rule``);
  ``within_budget``: no moment of the run was over its budget (``loss_over_budget_moments``
  counts those that were); ``rules_high_water`` the highest count. The figure is simply the
  measured drop, the legitimate loss of the churn included (rules of deleted nodes, of nodes
  that went single-stack, of hosts that left a network or were removed), as the controller's
  own guard counts it. The churn creates rules about as fast as it removes them, but in bursts
  (deletes pile up behind the outage and a restart), so on a small cluster the drop can be a
  large share of the mark; ``wrong_deletes`` and ``deletes_by_reason`` say whether any delete
  was not explained by the churn.
- ``restarts`` (of ``restarts_requested``; ``restarts_not_done`` were still waiting for a process
  to signal at the end), ``restarts_by_signal``, ``restarts_of_leader``, ``restart_log`` (when,
  in seconds since the controllers started, as every time below; signal, pause, pod, aimed at
  and was the leader; for the leader, ``handover_seconds`` until the Lease showed another
  holder, None when the same pod took it back); ``leader_changes``: times the Lease went to a
  holder other than the last one (an emptied Lease, a graceful release, is not a holder; the
  first holder is no change), ``lease_transitions`` the Lease's own count as the replicas kept
  it, ``lease_holders`` the holders seen (seconds since start; ``""`` for released);
  ``lease_release_failures``: processes that logged that a graceful stop could not release
  the Lease (a standby then waits the lease out: a slower handover, not two leaders).
- ``controller_exit_codes``: every process (pod, start and end, ``stopped_by`` SIGKILL /
  SIGTERM / end / itself, ``exit_code``, ``lost_lease``, ``release_failed``); ``bad_exits``
  those that did not end as expected: -9 on SIGKILL, 0 on SIGTERM (within 20 s), and on its own
  only the designed exit 1 after losing the Lease (``lost_lease_exits``; ``unplanned_exits``
  counts every exit on its own).
- ``controller_alive_at_end`` and ``controller_exit_code``: every replica must still run at the
  end; each is then stopped with SIGTERM and the first non-zero code reported (0 expected).
- also: ``puts_without_id``, ``controller_log_levels``, ``controller_top_warnings`` (over every
  process's log), ``controller_metrics`` and ``readyz`` (from the leader at the end: its
  counters start at its own start), ``readyz_by_pod``, ``leader_at_end``, ``artifacts``
  (directory kept with each process's log ``controller-<serial>-<pod>.log``, both request
  logs, the event timeline, every audited delete, ``rule-count.jsonl`` (when, our rules) and
  ``lease-holders.jsonl``).

Exit code 0 only if converged, stayed converged, foreign_touched == 0, duplicates_left == 0,
wrong_deletes == 0, within_budget, every requested restart was made, no bad exit, and every
replica was still running and exited 0 on SIGTERM; 1 otherwise, 2 on bad flags.
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

from kaput_not_standins.http.faultbook import When
from kaput_not_standins.kube import LIST_NODES, KubeApiServer, KubeState, kubeconfig_text
from kaput_not_standins.netmaker import (
    FaultKind,
    FaultRule,
    Faults,
    NetmakerEmulator,
    NetmakerState,
)
from kaput_not_standins.netmaker.egress import EgressRecord, EgressRequest, EgressTable

USER, PASSWORD = "kaput-not", "fault-soak-password"
METRIC = 500
DESCRIPTION = "Managed by kaput-not (DO NOT EDIT): index={index}"
# Our own reading of the contract (not the product's parser): the whole description, no cluster.
OURS = re.compile(r"Managed by kaput-not \(DO NOT EDIT\): index=([0-9]{1,6})")
CONTROLLER_ENV = {
    "CACHE_TTL": "1s",
    "RESYNC_PERIOD": "5s",
    "DELETE_GRACE": "1s",
    "LOG_FORMAT": "json",
    "NETMAKER_TIMEOUT": "2s",
    "MAX_DELETE_FRACTION": "0.5",
    "MAX_DELETE_MIN": "5",
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
        self.ours = 0  # rules of ours in the emulator right now
        self.ours_series: list[tuple[float, int]] = []  # (when, count) after every change

    def count_ours(self, change: int) -> None:
        """Called under the emulator's lock by every insert, remove or rewrite that changes it."""
        with self.lock:
            self.ours += change
            self.ours_series.append((time.time(), self.ours))

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

    def delete(self, egress_id: str) -> None:
        record = self.get(egress_id)
        if record is not None:
            self._auditor.on_delete(record, self)
        super().delete(egress_id)

    # The count of our rules follows the table's own primitives, so every path (API writes,
    # seeding, raw edits) is seen; an update may turn a rule into ours or out of ours.

    def insert(self, record: EgressRecord) -> None:
        super().insert(record)
        if our_index(record.description) is not None:
            self._auditor.count_ours(+1)

    def remove(self, egress_id: str) -> None:
        record = self.get(egress_id)
        super().remove(egress_id)
        if record is not None and our_index(record.description) is not None:
            self._auditor.count_ours(-1)

    def update(self, request: EgressRequest) -> EgressRecord:
        # The record the server will load (without an id: the lowest one), read before it
        # is rewritten; the error, if any, is left to the server's own order of checks.
        before = self.get(request.id if request.id else min(self._by_id, default=""))
        was_ours = before is not None and our_index(before.description) is not None
        record = super().update(request)
        self._auditor.on_update(request.id, record)
        is_ours = our_index(record.description) is not None
        if was_ours != is_ours:
            self._auditor.count_ours(+1 if is_ours else -1)
        return record


def loss_against_high_water(
    series: list[tuple[float, int]], window: float, origin: float
) -> dict[str, object]:
    """The largest drop of our rule count below its high-water mark of the last ``window``
    seconds, judged at every change against the budget the controller is configured with."""
    fraction = float(CONTROLLER_ENV["MAX_DELETE_FRACTION"])
    floor = int(CONTROLLER_ENV["MAX_DELETE_MIN"])
    # Counts that may still be the window's high water: [in force until, count], counts falling.
    marks: collections.deque[list[float]] = collections.deque()
    worst: tuple[int, int, int, float] = (0, 0, floor, origin)  # lost, high water, budget, when
    high_water = over = 0
    for at, count in series:
        if marks:
            marks[-1][0] = at
        while marks and marks[-1][1] <= count:
            marks.pop()
        marks.append([math.inf, count])
        while marks[0][0] <= at - window:
            marks.popleft()
        mark = int(marks[0][1])
        high_water = max(high_water, count)
        budget = max(floor, int(mark * fraction))
        lost = mark - count
        over += lost > budget
        if lost > worst[0]:
            worst = (lost, mark, budget, at)
    lost, mark, budget, at = worst
    return {
        "most_lost_against_high_water": lost,
        "most_lost_fraction": round(lost / mark, 4) if mark else 0.0,
        "most_lost_high_water": mark,
        "most_lost_at_seconds": round(at - origin, 2),
        "loss_budget": budget,
        "loss_budget_rule": f"max(MAX_DELETE_MIN={floor}, int(MAX_DELETE_FRACTION={fraction:g}"
        " x high water))",
        "loss_window_seconds": None if math.isinf(window) else window,
        "loss_over_budget_moments": over,
        "within_budget": over == 0,
        "rules_high_water": high_water,
        "rule_count_changes": len(series),
    }


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


# -- the controller processes -----------------------------------------------------------------

LEASE_NAMESPACE = "kube-system"
LEASE_NAME = "kaput-not"
# Short timing so that a killed leader is replaced within seconds; the lease duration in whole
# seconds, as the Lease carries it.
LEADER_ENV = {
    "LEADER_ELECTION_ENABLED": "true",
    "LEADER_ELECTION_NAMESPACE": LEASE_NAMESPACE,
    "LEADER_ELECTION_ID": LEASE_NAME,
    "LEADER_ELECTION_LEASE_DURATION": "3s",
    "LEADER_ELECTION_RENEW_DEADLINE": "2s",
    "LEADER_ELECTION_RETRY_PERIOD": "0.5s",
}
KUBELET_BACKOFF = 1.0  # a process that exited on its own starts again this much later
STOP_TIMEOUT = 20.0  # a SIGTERM may take this long before the process is killed
CRASH_LOOP = 3  # unplanned exits of one replica after which waiting for convergence stops
MIN_AGE = 3.0  # a process is signalled only once this old: its signal handlers are set by then
LOST_LEASE = ("leadership lost", "lost leadership")  # the log line of the designed exit 1
RELEASE_FAILED = "could not release the lease"  # a graceful stop left the Lease to expire
EXPECTED_EXIT = {"SIGKILL": -signal.SIGKILL, "SIGTERM": 0, "end": 0}


@dataclass
class Proc:
    """One controller process (a container of a replica's pod)."""

    serial: int
    replica: int
    pod: str
    popen: subprocess.Popen[bytes]
    port: int
    log_path: Path
    log_file: IO[bytes]
    started: float
    stopped_by: str | None = None  # "SIGKILL" or "SIGTERM" (a restart), "end"; None: on its own
    signalled: float | None = None
    exit_code: int | None = None
    ended: float | None = None
    killed_after_timeout: bool = False

    def alive(self) -> bool:
        return self.exit_code is None and self.popen.poll() is None

    def said(self, *phrases: str) -> bool:
        text = self.log_path.read_text(errors="replace")
        return any(phrase in text for phrase in phrases)

    def lost_lease(self) -> bool:
        """It exited on its own, saying it lost the Lease (exit 1 by design)."""
        return self.stopped_by is None and self.exit_code == 1 and self.said(*LOST_LEASE)


@dataclass
class Replica:
    base: str
    pod: str
    rollouts: int = 0
    current: Proc | None = None
    start_at: float | None = None  # a start is due (after a pause or the kubelet's back-off)
    unplanned: int = 0


class Fleet:
    """The controller's replicas as child processes, restarted as a cluster would restart them.

    Used from one thread (the caller's). A SIGKILL is an OOM kill: the container starts again
    in the same pod (same POD_NAME) once the old process is gone. A SIGTERM is a rollout: a new
    pod (a new POD_NAME) that may start while the old one is still stopping, as with a surge.
    A process that exits on its own is started again after KUBELET_BACKOFF and reported.
    Each process logs to its own file and serves /metrics on its own port.
    """

    def __init__(
        self,
        nm: NetmakerEmulator,
        kubeconfig: Path,
        artifacts: Path,
        log_level: str,
        *,
        replicas: int,
        leader_election: bool,
        note: Callable[..., None],
    ) -> None:
        self.nm = nm
        self.kubeconfig = kubeconfig
        self.artifacts = artifacts
        self.log_level = log_level
        self.leader_election = leader_election
        self.note = note
        self.procs: list[Proc] = []
        names = ["fault-soak"] if replicas == 1 else [f"fault-soak-{i}" for i in range(replicas)]
        self.replicas = [Replica(name, name) for name in names]

    def _env(self, pod: str, port: int) -> dict[str, str]:
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "NETMAKER_API_URL": self.nm.base_url,
            "NETMAKER_USERNAME": USER,
            "NETMAKER_PASSWORD": PASSWORD,
            "KUBECONFIG": str(self.kubeconfig),
            "METRICS_ADDRESS": f"127.0.0.1:{port}",
            "LOG_LEVEL": self.log_level,
            **CONTROLLER_ENV,
            **(LEADER_ENV if self.leader_election else {"LEADER_ELECTION_ENABLED": "false"}),
            "POD_NAME": pod,
        }

    def start(self, index: int) -> Proc:
        replica = self.replicas[index]
        port = free_port()
        serial = len(self.procs)
        log_path = self.artifacts / f"controller-{serial}-{replica.pod}.log"
        log_file = log_path.open("wb")
        popen = subprocess.Popen(
            [sys.executable, "-m", "kaput_not", "run"],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env=self._env(replica.pod, port),
        )
        proc = Proc(serial, index, replica.pod, popen, port, log_path, log_file, time.time())
        self.procs.append(proc)
        replica.current, replica.start_at = proc, None
        self.note("controller-started", replica=index, pod=replica.pod, serial=serial)
        return proc

    def start_all(self) -> None:
        for index in range(len(self.replicas)):
            self.start(index)

    def poll(self, now: float) -> None:
        """Reap exits, kill a SIGTERM that overran, start what is due."""
        for proc in self.procs:
            if proc.exit_code is not None:
                continue
            if proc.popen.poll() is not None:
                self._ended(proc, now)
            elif (
                proc.signalled is not None
                and not proc.killed_after_timeout
                and now - proc.signalled > STOP_TIMEOUT
            ):
                proc.popen.kill()
                proc.killed_after_timeout = True
        for index, replica in enumerate(self.replicas):
            if replica.current is None and replica.start_at is not None and now >= replica.start_at:
                self.start(index)

    def _ended(self, proc: Proc, now: float) -> None:
        proc.exit_code, proc.ended = proc.popen.returncode, now
        proc.log_file.close()
        self.note("controller-exited", pod=proc.pod, serial=proc.serial, code=proc.exit_code)
        replica = self.replicas[proc.replica]
        if proc.stopped_by is None:
            replica.unplanned += 1
            if replica.current is proc:
                replica.current, replica.start_at = None, now + KUBELET_BACKOFF

    def start_pending(self) -> None:
        """Start every replica whose start is still due (the end of the soak)."""
        for index, replica in enumerate(self.replicas):
            if replica.current is None:
                self.start(index)

    def crash_looping(self) -> bool:
        return any(replica.unplanned >= CRASH_LOOP for replica in self.replicas)

    def running(self) -> list[Proc]:
        return [r.current for r in self.replicas if r.current is not None and r.current.alive()]

    def target(self, *, leader: bool, holder: str, now: float) -> Proc | None:
        """The process to restart: the Lease's holder (or else a standby) among those old
        enough; the other kind when the wanted one is not there; None when none is."""
        ready = [p for p in self.running() if now - p.started >= MIN_AGE]
        wanted = [p for p in ready if (p.pod == holder) == leader]
        pool = wanted or ready
        return pool[0] if pool else None

    def restart(self, proc: Proc, how: str, pause: float, now: float) -> None:
        replica = self.replicas[proc.replica]
        proc.stopped_by, proc.signalled = how, now
        replica.current, replica.start_at = None, now + pause
        if how == "SIGKILL":
            proc.popen.kill()
            proc.popen.wait(10)
            self._ended(proc, time.time())
        else:
            proc.popen.send_signal(signal.SIGTERM)
            replica.rollouts += 1
            replica.pod = f"{replica.base}-r{replica.rollouts}"
        self.note("controller-restart", pod=proc.pod, serial=proc.serial, signal=how, pause=pause)

    def stop_all(self) -> None:
        """SIGTERM every process still running and wait for each (killed after STOP_TIMEOUT)."""
        now = time.time()
        for proc in self.procs:
            if proc.exit_code is None and proc.popen.poll() is None and proc.stopped_by is None:
                proc.stopped_by, proc.signalled = "end", now
                proc.popen.send_signal(signal.SIGTERM)
        for proc in self.procs:
            if proc.exit_code is not None:
                continue
            assert proc.signalled is not None or proc.popen.poll() is not None
            left = STOP_TIMEOUT - (time.time() - (proc.signalled or now))
            try:
                proc.popen.wait(max(left, 0.1))
            except subprocess.TimeoutExpired:
                proc.popen.kill()
                proc.killed_after_timeout = True
                proc.popen.wait(10)
            self._ended(proc, time.time())

    def kill_all(self) -> None:
        """The run failed on the way: leave no process behind."""
        for proc in self.procs:
            if proc.exit_code is None:
                if proc.popen.poll() is None:
                    proc.popen.kill()
                    proc.popen.wait(10)
                self._ended(proc, time.time())

    def exits(self, origin: float) -> list[dict[str, object]]:
        return [
            {
                "serial": p.serial,
                "pod": p.pod,
                "started_at": round(p.started - origin, 2),
                "ended_at": round(p.ended - origin, 2) if p.ended is not None else None,
                "stopped_by": p.stopped_by or "itself",
                "exit_code": p.exit_code,
                "lost_lease": p.lost_lease(),
                "release_failed": p.said(RELEASE_FAILED),
                "killed_after_stop_timeout": p.killed_after_timeout,
            }
            for p in self.procs
        ]


def bad_exit(entry: dict[str, object]) -> bool:
    """An exit other than the one expected: a restart's signal, 0 on SIGTERM, or the designed
    exit 1 on a lost Lease (restarted as the kubelet would; reported, not a failure)."""
    if entry["killed_after_stop_timeout"]:
        return True
    how = str(entry["stopped_by"])
    if how == "itself":
        return not entry["lost_lease"]
    return entry["exit_code"] != EXPECTED_EXIT[how]


class LeaseWatcher:
    """Follows the Lease's holderIdentity in the stand-in's state, from a thread of its own."""

    def __init__(self, kube: KubeState, period: float = 0.05) -> None:
        self.kube = kube
        self.period = period
        self._lock = threading.Lock()
        self._holders: list[tuple[float, str]] = []  # (when, holder) at every change
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lease-watcher", daemon=True)

    def __enter__(self) -> LeaseWatcher:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        last = ""
        while not self._stop.wait(self.period):
            holder = self.holder_now()
            if holder != last:
                with self._lock:
                    self._holders.append((time.time(), holder))
                last = holder

    def holder_now(self) -> str:
        lease = self.kube.lease(LEASE_NAMESPACE, LEASE_NAME)
        spec = lease.get("spec", {}) if lease else {}
        return str(spec.get("holderIdentity") or "")

    def transitions_recorded(self) -> int | None:
        """The Lease's own count of holder changes (leaseTransitions), as the replicas kept it."""
        lease = self.kube.lease(LEASE_NAMESPACE, LEASE_NAME)
        value = lease.get("spec", {}).get("leaseTransitions") if lease else None
        return int(value) if isinstance(value, int) else None

    def history(self) -> list[tuple[float, str]]:
        with self._lock:
            return list(self._holders)

    def leader_changes(self) -> int:
        return leader_changes(holder for _, holder in self.history())

    def handover_seconds(self, at: float, pod: str) -> float | None:
        return handover_seconds(self.history(), at, pod)


def leader_changes(holders: Iterable[str]) -> int:
    """Times the Lease went to a holder other than the last one (an empty holder, a released
    Lease, is not a holder; the first holder is not a change)."""
    changes, last = 0, ""
    for holder in holders:
        if holder and holder != last:
            changes += 1 if last else 0
            last = holder
    return changes


def handover_seconds(history: Iterable[tuple[float, str]], at: float, pod: str) -> float | None:
    """Seconds from ``at`` until the Lease showed a holder other than ``pod``; None if it never
    did (the same pod, restarted, took its own Lease back)."""
    for seen, holder in history:
        if seen > at and holder and holder != pod:
            return round(seen - at, 2)
    return None


@dataclass
class PlannedRestart:
    at: float
    how: str  # "SIGKILL" or "SIGTERM"
    pause: float  # seconds before the new process starts (0: at once)
    leader: bool  # aimed at the Lease's holder (else at a standby)


def plan_restarts(
    count: int, start: float, seconds: float, rng: random.Random
) -> list[PlannedRestart]:
    """``count`` restarts at random moments, one in each of ``count`` equal parts of the soak."""
    part = seconds / count if count else 0.0
    plan = []
    for i in range(count):
        at = start + part * (i + rng.uniform(0.1, 0.9))
        how = "SIGKILL" if rng.random() < 0.5 else "SIGTERM"
        pause = 0.0 if rng.random() < 0.5 else round(rng.uniform(0.5, 5.0), 2)
        plan.append(PlannedRestart(at, how, pause, leader=rng.random() < 0.75))
    return plan


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


def read_controller_logs(
    paths: list[Path],
) -> tuple[dict[str, int], list[tuple[str, int]], list[str]]:
    """Lines per level, the commonest warning/error shapes, and lines that are not JSON, over
    the logs of every controller process."""
    levels: collections.Counter[str] = collections.Counter()
    shapes: collections.Counter[str] = collections.Counter()
    other: list[str] = []
    lines = (line for path in paths for line in path.read_text(errors="replace").splitlines())
    for line in lines:
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
            shape = _NUMBER.sub("<n>", _ID.sub("<id>", str(entry.get("msg", ""))))
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
    restarts: int = 0
    replicas: int = 1
    loss_window: float = math.inf
    json: bool = False

    @property
    def leader_election(self) -> bool:
        return self.replicas > 1 or self.restarts > 0


def wait_converged(
    nm: NetmakerEmulator,
    kube: KubeApiServer,
    foreign: dict[str, dict[str, object]],
    fleet: Fleet,
    timeout: float,
) -> tuple[Verdict, float | None]:
    started = time.time()
    while True:
        fleet.poll(time.time())
        result = verdict(nm.state, kube.state, foreign)
        if result.converged:
            return result, time.time() - started
        if time.time() - started > timeout or fleet.crash_looping():
            return result, None
        time.sleep(0.25)


def idle(fleet: Fleet, seconds: float) -> None:
    """Wait, reaping and restarting processes as the kubelet would."""
    end = time.time() + seconds
    while (now := time.time()) < end:
        fleet.poll(now)
        time.sleep(min(0.25, end - now))


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


@dataclass
class Restarter:
    """Carries out the planned restarts when due, on the process the plan aims at."""

    fleet: Fleet
    lease: LeaseWatcher
    plan: list[PlannedRestart]
    origin: float  # the controllers' start, from which times are reported
    done: list[dict[str, object]] = field(default_factory=list)

    def run_due(self, now: float) -> None:
        if not self.plan or self.plan[0].at > now:
            return
        planned = self.plan[0]
        holder = self.lease.holder_now()
        proc = self.fleet.target(leader=planned.leader, holder=holder, now=now)
        if proc is None:  # nothing old enough runs: try again shortly
            planned.at = now + 0.25
            return
        self.plan.pop(0)
        self.done.append(
            {
                "at": round(now - self.origin, 2),
                "signal": planned.how,
                "pause": planned.pause,
                "pod": proc.pod,
                "aimed_at": "leader" if planned.leader else "standby",
                "was_leader": proc.pod == holder,
            }
        )
        self.fleet.restart(proc, planned.how, planned.pause, now)


def soak(
    opts: Options,
    kube: KubeApiServer,
    faults: RandomFaults,
    driver: Driver,
    rng: random.Random,
    restarter: Restarter,
) -> tuple[tuple[float, float], tuple[float, float], collections.Counter[str]]:
    """Events, faults and restarts for ``opts.seconds``; returns the soak and outage windows."""
    kube_faults: collections.Counter[str] = collections.Counter()
    start = time.time()
    restarter.plan = plan_restarts(opts.restarts, start, opts.seconds, random.Random(opts.seed + 2))
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
        restarter.fleet.poll(now)
        restarter.run_due(now)
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
    restarter.fleet.start_pending()
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
        "restarts_requested": opts.restarts,
        "replicas": opts.replicas,
        "leader_election": opts.leader_election,
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
    with (
        kube_server.run_in_thread() as kube,
        emulator.run_in_thread() as nm,
        (opts.artifacts / "events.jsonl").open("w") as timeline,
        LeaseWatcher(kube.state) as lease,
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
        fleet = Fleet(
            nm,
            kubeconfig,
            opts.artifacts,
            opts.log_level,
            replicas=opts.replicas,
            leader_election=opts.leader_election,
            note=driver.note,
        )
        origin = time.time()
        restarter = Restarter(fleet, lease, [], origin)
        fleet.start_all()
        try:
            result.update(_drive(opts, nm, kube, faults, driver, rng, restarter, foreign))
        finally:
            fleet.kill_all()
        write_jsonl(
            opts.artifacts / "netmaker-requests.jsonl", map(dataclasses.asdict, nm.log.entries)
        )
        write_jsonl(
            opts.artifacts / "kube-requests.jsonl", map(dataclasses.asdict, kube.log.entries)
        )
        write_jsonl(opts.artifacts / "strikes.jsonl", map(dataclasses.asdict, faults.snapshot()))
        write_jsonl(opts.artifacts / "deletes.jsonl", auditor.deletes)
        (opts.artifacts / "egress-final.json").write_text(json.dumps(nm.state.egresses(), indent=1))
        result.update(_restarts_and_leaders(fleet, restarter, lease, origin))
        write_jsonl(opts.artifacts / "lease-holders.jsonl", lease.history())
    levels, top, not_json = read_controller_logs([p.log_path for p in fleet.procs])
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
        series = list(auditor.ours_series)
    result.update(loss_against_high_water(series, opts.loss_window, origin))
    write_jsonl(opts.artifacts / "rule-count.jsonl", series)
    changed = set(result.pop("_foreign_changed", []))
    result["foreign_touched"] = len(written | changed)
    (opts.artifacts / "result.json").write_text(json.dumps(result, indent=1, default=str))
    return result


def _restarts_and_leaders(
    fleet: Fleet, restarter: Restarter, lease: LeaseWatcher, origin: float
) -> dict[str, object]:
    exits = fleet.exits(origin)
    unplanned = [e for e in exits if e["stopped_by"] == "itself"]
    for done in restarter.done:
        if done["was_leader"]:
            at = origin + float(str(done["at"]))
            done["handover_seconds"] = lease.handover_seconds(at, str(done["pod"]))
    return {
        "restarts": len(restarter.done),
        "restarts_by_signal": dict(collections.Counter(str(r["signal"]) for r in restarter.done)),
        "restarts_of_leader": sum(1 for r in restarter.done if r["was_leader"]),
        "restart_log": restarter.done,
        "leader_changes": lease.leader_changes(),
        "lease_transitions": lease.transitions_recorded(),
        "lease_holders": [(round(at - origin, 2), holder) for at, holder in lease.history()][:40],
        "controller_processes": len(exits),
        "controller_exit_codes": exits,
        "unplanned_exits": len(unplanned),
        "lost_lease_exits": sum(1 for e in unplanned if e["lost_lease"]),
        "lease_release_failures": sum(1 for e in exits if e["release_failed"]),
        "bad_exits": [e for e in exits if bad_exit(e)],
    }


def _drive(
    opts: Options,
    nm: NetmakerEmulator,
    kube: KubeApiServer,
    faults: RandomFaults,
    driver: Driver,
    rng: random.Random,
    restarter: Restarter,
    foreign: dict[str, dict[str, object]],
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    fleet = restarter.fleet
    first, took = wait_converged(nm, kube, foreign, fleet, opts.initial_timeout)
    out["initial_converged"] = took is not None
    out["initial_converge_seconds"] = round(took, 2) if took is not None else None
    out["initial_rules"] = first.ours
    if took is None:
        out.update(_not_converged(first))
        out.update(converged=False, seconds_to_converge=None, stayed_converged=False)
        out["_foreign_changed"] = first.foreign_changed
        return out | _stop(fleet, restarter.lease)
    windows = soak(opts, kube, faults, driver, rng, restarter)
    (soak_start, soak_end), outage, kube_faults = windows
    out["restarts_not_done"] = len(restarter.plan)
    out["node_events"] = sum(driver.counts.values())
    out["node_events_by_kind"] = dict(driver.counts)
    out["kube_faults"] = dict(kube_faults)
    final, took = wait_converged(nm, kube, foreign, fleet, opts.converge_timeout)
    out["converged"] = took is not None
    out["seconds_to_converge"] = round(took, 2) if took is not None else None
    stayed = False
    if took is not None:
        idle(fleet, RESYNC_SECONDS + 1)
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
    return out | _stop(fleet, restarter.lease)


def _not_converged(v: Verdict) -> dict[str, object]:
    return {
        "missing_rules": len(v.missing),
        "extra_rules": len(v.extra),
        "missing_examples": v.missing[:5],
        "extra_examples": v.extra[:5],
        "foreign_changed_ids": v.foreign_changed[:10],
        "duplicates": v.duplicates,
    }


def _stop(fleet: Fleet, lease: LeaseWatcher) -> dict[str, object]:
    fleet.poll(time.time())
    running = fleet.running()
    alive = len(running) == len(fleet.replicas)
    out: dict[str, object] = {"controller_alive_at_end": alive}
    holder = lease.holder_now() if fleet.leader_election else ""
    out["leader_at_end"] = holder or None
    readyz_by_pod = {}
    for proc in running:
        metrics, readyz = scrape(proc.port)
        readyz_by_pod[proc.pod] = readyz
        # The leader's figures (the only replica that writes); since its own start.
        if proc.pod == holder or not fleet.leader_election:
            out["controller_metrics"] = metrics
            out["readyz"] = readyz
    out["readyz_by_pod"] = readyz_by_pod
    last = {p.serial for p in running}
    fleet.stop_all()
    final = [p for p in fleet.procs if p.serial in last]
    codes = [p.exit_code for p in final]
    if not final and fleet.procs:
        codes = [fleet.procs[-1].exit_code]
    out["controller_exit_code"] = next((c for c in codes if c != 0), 0 if codes else None)
    if any(p.killed_after_timeout for p in final):
        out["controller_stop_timed_out"] = True
    return out


def passed(result: dict[str, Any]) -> bool:
    return bool(
        result.get("converged")
        and result.get("stayed_converged")
        and result.get("foreign_touched") == 0
        and result.get("duplicates_left") == 0
        and result.get("wrong_deletes") == 0
        and result.get("within_budget") is True
        and result.get("controller_alive_at_end")
        and result.get("controller_exit_code") == 0
        and result.get("restarts") == result.get("restarts_requested")
        and not result.get("bad_exits")
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
    parser.add_argument(
        "--restarts", type=int, default=0, help="controller restarts spread over the soak"
    )
    parser.add_argument(
        "--replicas",
        type=int,
        default=None,
        help="controller processes with leader election (default 2 with --restarts, else 1)",
    )
    parser.add_argument(
        "--loss-window",
        type=float,
        default=0.0,
        help="seconds of the high-water window for the rules lost (0: the whole run)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    if not RESERVED <= args.nodes <= 30000:
        parser.error(f"--nodes must be between {RESERVED} and 30000")
    if not 0.0 <= args.fault_rate <= 1.0:
        parser.error("--fault-rate must be between 0 and 1")
    replicas = args.replicas if args.replicas is not None else (2 if args.restarts > 0 else 1)
    if not 0 <= args.restarts <= 1000 or not 1 <= replicas <= 5:
        parser.error("--restarts must be between 0 and 1000, --replicas between 1 and 5")
    if args.loss_window < 0:
        parser.error("--loss-window must not be negative (0: the whole run)")
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
        restarts=args.restarts,
        replicas=replicas,
        loss_window=args.loss_window or math.inf,
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
