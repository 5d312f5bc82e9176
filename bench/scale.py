"""How `kaput-not run` scales: N nodes, K networks, against the stand-ins in their own processes.

The Netmaker emulator and the Kubernetes API stand-in each run in a child process of this
script (``--peer netmaker`` / ``--peer kube``), driven over a pipe with one JSON object per line,
so the controller's CPU and memory are its own and the two servers do not share its GIL. The
controller is the real ``python -m kaput_not run`` in a third process, configured by environment
variables only (leader election off, JSON logs, CACHE_TTL left at its default, metrics on a free
port). Everything is measured from outside:

- requests per route key, reads (GET) and writes (POST, PUT, DELETE but logins) from the
  emulator's own request log;
- wall time from the controller's start until every network holds exactly the rules wanted
  (one per pod CIDR and network, range = the CIDR, ``nodes`` = the host's Netmaker node there),
  polled in the emulator process every 0.1 s; ``last_request_seconds`` is when the last request
  (of any kind) arrived;
- controller CPU seconds (utime + stime of /proc/<pid>/stat) and peak RSS (VmHWM).

Seeding: K networks ``net-<k>`` with 100.<64+k>.0.0/16, N hosts ``sn-<i>`` joined to every
network, N Nodes ``sn-<i>`` (the stand-in's realistic ~4 KB objects: labels, annotations, four
conditions, node info, nine images) with pod CIDR ``10.<i/256>.<i%256>.0/24`` and, with
``--dual-stack``, ``fd00:<i>::/64``. ``--latency-ms`` delays every emulator answer (all routes,
logins included) by that much, server side.

Scenarios:

- ``initial``: from the controller's start to convergence.
- ``resync``: converge with RESYNC_PERIOD=5s, wait until quiet, then measure one periodic full
  pass with everything in sync: requests, and the controller CPU between the last metrics scrape
  before the pass started and the first one after it ended (``kaput_not_reconciles_total``
  with ``scope="full"`` and ``..._last_full_sync_attempt_timestamp_seconds``, scraped every
  0.25 s; ``resync_window_seconds`` says how long that window was).
- ``outage``: Netmaker goes away mid-sync (issue 19): once ``--outage-at`` of the rules are
  written, every emulator answer is a reset connection (as a killed server's) for
  ``--outage-seconds``, then it answers again. Reported: the rules left to write when it came
  back, the seconds from then to convergence (``recovery_seconds``), the controller's log lines
  and WARNING lines during the outage and the recovery (read from its JSON log by offset), and
  the requests it sent while the server was away.
- ``events``: converge, then rebuild ``--rate`` nodes a second for ``--duration`` seconds: each
  change deletes Node ``sn-<i>`` and creates it again with new pod CIDRs (same host). Latency
  per change: from the moment the stand-in stored the new Node to the moment the emulator read
  the last of the writes carrying the new ranges (p50, p99, max; both clocks are this machine's
  wall clock).

Usage: .venv/bin/python bench/scale.py --nodes N [--networks K] [--dual-stack]
       [--latency-ms MS] [--scenario initial|resync|events|outage] [--rate R] [--duration S]
       [--outage-at FRACTION] [--outage-seconds S]
       [--timeout S] [--profile FILE] [--cache-ttl DURATION] [--json]
``--profile FILE`` runs the controller under cProfile (written when it stops; the CPU figures
then include the profiler's overhead). Exit code 0 when converged, 1 otherwise.
"""

# ruff: noqa: S603  (this benchmark exists to run the servers and the controller)

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from kaput_not import config
from kaput_not_standins.http.messages import Reply, Request
from kaput_not_standins.kube import KubeApiServer, kubeconfig_text
from kaput_not_standins.netmaker import NetmakerEmulator, normalize_cidr

ROOT = Path(__file__).resolve().parents[1]
USERNAME = "kaput-not-scale"
NODE_PREFIX = "sn-"
EGRESS = "/api/v1/egress"
WRITE_METHODS = frozenset({"POST", "PUT", "DELETE"})
LOGIN = "POST /api/users/adm/authenticate"
POLL = 0.1


class BenchError(Exception):
    """The benchmark cannot go on; the message is one line."""


def finish(
    prog: str,
    work: Callable[[], dict[str, Any]],
    render: Callable[[dict[str, Any]], str] | None,
    ok: Callable[[dict[str, Any]], bool],
    errors: tuple[type[Exception], ...] = (BenchError,),
) -> int:
    """A benchmark's end: run `work` (SIGTERM cleans up as ^C does), print its result as JSON
    (`render` None) or rendered, or its error in one line; exit 0 when `ok`, 130 on ^C."""
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        result = work()
    except errors as exc:
        print(f"{prog}: {(str(exc).splitlines() or [type(exc).__name__])[0]}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    print(json.dumps(result) if render is None else render(result))
    return 0 if ok(result) else 1


def node_name(i: int) -> str:
    return f"{NODE_PREFIX}{i}"


def pod_cidrs(i: int, dual_stack: bool) -> list[str]:
    """Pod CIDRs number ``i`` (0..65535), canonical, IPv4 first."""
    v4 = f"10.{(i >> 8) & 255}.{i & 255}.0/24"
    if not dual_stack:
        return [v4]
    return [v4, str(ipaddress.ip_network(f"fd00:{i:x}::/64"))]


def network_names(count: int) -> list[str]:
    return [f"net-{k}" for k in range(1, count + 1)]


# ------------------------------------------------------------------ the peers (child processes)


class RecordingEmulator(NetmakerEmulator):
    """The emulator, noting when the first write naming each egress range arrived."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.range_seen: dict[str, float] = {}

    async def _handle(self, request: Request) -> Reply:
        if request.method in ("POST", "PUT") and request.path == EGRESS:
            arrived = time.time()
            with contextlib.suppress(ValueError, AttributeError, TypeError):
                value = json.loads(request.body).get("range")
                if isinstance(value, str):
                    self.range_seen.setdefault(normalize_cidr(value), arrived)
        return await super()._handle(request)


def _log_stats(entries: list[Any], since: int) -> dict[str, Any]:
    counts: Counter[str] = Counter(entry.route for entry in entries[since:])
    reads = sum(n for key, n in counts.items() if key.startswith("GET "))
    writes = sum(
        n for key, n in counts.items() if key.split(" ", 1)[0] in WRITE_METHODS and key != LOGIN
    )
    first_write = next(
        (
            e.at
            for e in entries[since:]
            if e.route.split(" ", 1)[0] in WRITE_METHODS and e.route != LOGIN
        ),
        None,
    )
    return {
        "requests": dict(sorted(counts.items())),
        "reads": reads,
        "writes": writes,
        "length": len(entries),
        "last_at": entries[-1].at if entries else None,
        "first_write_at": first_write,
    }


def serve_netmaker(commands: IO[str], answers: IO[str], password: str) -> None:
    emulator = RecordingEmulator(username=USERNAME, password=password)
    expected: set[tuple[str, str, str]] = set()
    latency = [0.0]
    with emulator.run_in_thread() as nm:
        state = nm.state

        def handle(command: dict[str, Any]) -> Any:
            op = command["op"]
            if op == "setup":
                for k, net in enumerate(command["networks"]):
                    state.add_network(net, f"100.{64 + k}.0.0/16")
                latency[0] = command["latency_s"]
                if latency[0] > 0:
                    nm.faults.latency("*", latency[0], times=None)
                return None
            if op == "down":  # every answer a reset connection, as from a killed server
                nm.faults.clear()
                nm.faults.reset("*", times=None)
                return len(nm.log.entries)
            if op == "up":
                nm.faults.clear()
                if latency[0] > 0:
                    nm.faults.latency("*", latency[0], times=None)
                return len(nm.log.entries)
            if op == "hosts":  # [name, ...]: hosts joined to every network
                networks = [n.netid for n in state.networks()]
                with state.lock:
                    for name in command["hosts"]:
                        state.add_host(name, networks)
                return None
            if op == "expect":  # {name: [cidr, ...]}, against the hosts seeded
                with state.lock:
                    by_host = {h.id: h.name for h in state.hosts()}
                    wanted = command["expect"]
                    expected.clear()
                    for node in state.nodes():
                        for cidr in wanted.get(by_host.get(node.host_id, ""), []):
                            expected.add((node.network, normalize_cidr(cidr), node.id))
                return len(expected)
            if op == "progress":
                with state.lock:
                    records = state.egress.records()
                    total = len(records)
                    matching = 0
                    if total >= len(expected) or command.get("full"):
                        for r in records:
                            if len(r.nodes) == 1:
                                (node_id,) = r.nodes
                                if (r.network, normalize_cidr(r.range), node_id) in expected:
                                    matching += 1
                return {"rules": total, "matching": matching, "expected": len(expected)}
            if op == "stats":
                return _log_stats(nm.log.entries, command.get("since", 0))
            if op == "seen":
                return {r: nm.range_seen.get(r) for r in command["ranges"]}
            raise BenchError(f"unknown command {op}")

        _serve_commands(nm.base_url, commands, answers, handle)


def serve_kube(commands: IO[str], answers: IO[str]) -> None:
    with KubeApiServer().run_in_thread() as kube:
        state = kube.state

        def handle(command: dict[str, Any]) -> Any:
            op = command["op"]
            if op == "nodes":
                for name, cidrs in command["nodes"].items():
                    state.create_node(name, pod_cidrs=tuple(cidrs))
                return None
            if op == "churn":  # [[name, [cidr, ...]], ...] at ``rate`` a second
                changes = command["changes"]
                rate = float(command["rate"])
                done: list[list[Any]] = []
                start = time.monotonic()
                for j, (name, cidrs) in enumerate(changes):
                    delay = start + j / rate - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                    state.delete_node(name)
                    state.create_node(name, pod_cidrs=tuple(cidrs))
                    done.append([name, cidrs, time.time()])
                return {"changes": done, "seconds": time.monotonic() - start}
            if op == "stats":
                return _log_stats(kube.log.entries, command.get("since", 0))
            raise BenchError(f"unknown command {op}")

        _serve_commands(kube.base_url, commands, answers, handle)


def _serve_commands(
    url: str, commands: IO[str], answers: IO[str], handle: Callable[[dict[str, Any]], Any]
) -> None:
    print(url, file=answers, flush=True)
    for line in commands:
        try:
            reply: dict[str, Any] = {"ok": handle(json.loads(line))}
        except Exception as exc:  # told to the parent, which stops
            reply = {"error": f"{type(exc).__name__}: {exc}"}
        print(json.dumps(reply), file=answers, flush=True)


class Peer:
    """A stand-in in a child process: its URL, and ``call`` for one command."""

    def __init__(self, kind: str, workdir: Path, env: dict[str, str] | None = None) -> None:
        self.kind = kind
        self._stderr = (workdir / f"{kind}.log").open("w")
        self.process = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--peer", kind],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            env={**os.environ, **(env or {})},
        )
        self._lock = threading.Lock()
        self.url = self._line()

    def _line(self) -> str:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise BenchError(f"the {self.kind} peer exited (see its log)")
        return line.strip()

    def call(self, op: str, **args: Any) -> Any:
        assert self.process.stdin is not None
        with self._lock:
            self.process.stdin.write(json.dumps({"op": op, **args}) + "\n")
            self.process.stdin.flush()
            reply = json.loads(self._line())
        if "error" in reply:
            raise BenchError(f"{self.kind} peer: {reply['error']}")
        return reply["ok"]

    def stop(self) -> None:
        if self.process.poll() is None:
            assert self.process.stdin is not None
            with contextlib.suppress(OSError):
                self.process.stdin.close()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._stderr.close()


# ------------------------------------------------------------------ the controller process


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def cpu_seconds(pid: int) -> float:
    """utime + stime of a live process, in seconds (fields 14 and 15 of proc(5))."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


@dataclass
class Controller:
    """A controller under test in a child process, its output in ``log``."""

    argv: list[str]
    env: dict[str, str]
    log: Path
    process: subprocess.Popen[bytes] | None = None
    started: float = 0.0

    def start(self) -> None:
        with self.log.open("wb") as out:
            self.started = time.monotonic()
            self.process = subprocess.Popen(
                self.argv, env=self.env, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT
            )

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> int | None:
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def tail(self, lines: int = 15) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        return ""


def python_controller(
    stack: Stack, *, extra: dict[str, str] | None = None, profile: str | None = None
) -> Controller:
    own = {name for name, _, _ in config.VARIABLES}
    env = {k: v for k, v in os.environ.items() if k not in own}
    env.update(
        NETMAKER_API_URL=stack.netmaker.url,
        NETMAKER_USERNAME=USERNAME,
        NETMAKER_PASSWORD=stack.password,
        KUBECONFIG=str(stack.kubeconfig),
        LEADER_ELECTION_ENABLED="false",
        LOG_FORMAT="json",
        METRICS_ADDRESS=f"127.0.0.1:{stack.metrics_port}",
        **(extra or {}),
    )
    argv = [sys.executable]
    if profile:
        argv += ["-m", "cProfile", "-o", profile]
    argv += ["-m", "kaput_not", "run"]
    return Controller(argv, env, stack.workdir / "controller.log")


# ------------------------------------------------------------------ the stack


@dataclass
class Stack:
    nodes: int
    networks: int
    dual_stack: bool
    latency_ms: float
    workdir: Path
    password: str = field(default_factory=lambda: os.urandom(12).hex())
    metrics_port: int = field(default_factory=free_port)
    netmaker: Peer = field(init=False)
    kube: Peer = field(init=False)
    kubeconfig: Path = field(init=False)

    def start(self) -> None:
        self.netmaker = Peer("netmaker", self.workdir, {"KAPUT_NOT_SCALE_PASSWORD": self.password})
        self.kube = Peer("kube", self.workdir)
        self.kubeconfig = self.workdir / "kubeconfig"
        self.kubeconfig.write_text(kubeconfig_text(self.kube.url))
        wanted = {node_name(i): pod_cidrs(i, self.dual_stack) for i in range(self.nodes)}
        self.netmaker.call(
            "setup", networks=network_names(self.networks), latency_s=self.latency_ms / 1000
        )
        self.netmaker.call("hosts", hosts=list(wanted))
        self.netmaker.call("expect", expect=wanted)
        self.kube.call("nodes", nodes=wanted)

    def stop(self) -> None:
        for peer in ("netmaker", "kube"):
            if peer in self.__dict__:
                getattr(self, peer).stop()

    def progress(self, *, full: bool = False) -> dict[str, int]:
        answer: dict[str, int] = self.netmaker.call("progress", full=full)
        return answer

    def converged(self) -> bool:
        p = self.progress()
        return p["rules"] == p["expected"] == p["matching"]


@contextlib.contextmanager
def stack_of(nodes: int, networks: int, dual_stack: bool, latency_ms: float) -> Iterator[Stack]:
    with tempfile.TemporaryDirectory(prefix="kaput-not-scale-") as tmp:
        stack = Stack(nodes, networks, dual_stack, latency_ms, Path(tmp))
        try:
            stack.start()
            yield stack
        finally:
            stack.stop()


def wait_converged(stack: Stack, controller: Controller, timeout: float) -> tuple[bool, float]:
    """(converged, seconds since the controller started) once converged, exited or timed out."""
    deadline = controller.started + timeout
    while time.monotonic() < deadline:
        if stack.converged():
            return True, time.monotonic() - controller.started
        if not controller.alive():
            return False, time.monotonic() - controller.started
        time.sleep(POLL)
    return False, time.monotonic() - controller.started


def measure_initial(
    stack: Stack, controller: Controller, timeout: float, origin_wall: float
) -> dict[str, Any]:
    """Convergence from the controller's start, and the costs of getting there."""
    converged, took = wait_converged(stack, controller, timeout)
    alive = controller.alive()
    cpu = cpu_seconds(controller.pid) if alive else None
    rss = peak_rss_mb(controller.pid) if alive else None
    stats = stack.netmaker.call("stats")
    progress = stack.progress(full=True)
    writes = stats["writes"]
    last_at = stats["last_at"]
    return {
        "nodes": stack.nodes,
        "networks": stack.networks,
        "dual_stack": stack.dual_stack,
        "latency_ms": stack.latency_ms,
        "converged": converged,
        "wall_seconds": round(took, 2),
        "last_request_seconds": None if last_at is None else round(last_at - origin_wall, 2),
        "rules_expected": progress["expected"],
        "rules_matching": progress["matching"],
        "reads": stats["reads"],
        "writes": writes,
        "requests": stats["requests"],
        "requests_total": sum(stats["requests"].values()),
        "controller_cpu_seconds": None if cpu is None else round(cpu, 2),
        "cpu_ms_per_write": None if cpu is None or not writes else round(1000 * cpu / writes, 3),
        "peak_rss_mb": None if rss is None else round(rss, 1),
    }


# ------------------------------------------------------------------ the scenarios

_SAMPLE = re.compile(r"^([a-zA-Z_:][\w:]*)(\{[^}]*\})?\s+(\S+)$")


def scrape(port: int) -> dict[str, float]:
    """The controller's metrics, ``name{labels}`` -> value."""
    url = f"http://127.0.0.1:{port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as answer:
        text = answer.read().decode()
    values: dict[str, float] = {}
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if match and not line.startswith("#"):
            values[match.group(1) + (match.group(2) or "")] = float(match.group(3))
    return values


def full_passes(metrics: dict[str, float]) -> tuple[float, float]:
    """(full passes finished, start time of the last one) from a scrape."""
    done = sum(
        v
        for k, v in metrics.items()
        if k.startswith("kaput_not_reconciles_total{") and 'scope="full"' in k
    )
    return done, metrics.get("kaput_not_last_full_sync_attempt_timestamp_seconds", 0.0)


def wait_quiet(stack: Stack, seconds: float, limit: float = 60.0) -> None:
    """Until the emulator has seen no request for ``seconds``."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        last = stack.netmaker.call("stats")["last_at"]
        if last is None or time.time() - last >= seconds:
            return
        time.sleep(0.2)


def measure_resync(
    stack: Stack, controller: Controller, period: float, base: dict[str, Any]
) -> dict[str, Any]:
    """One periodic full pass with everything in sync."""
    wait_quiet(stack, 1.0)
    before = scrape(stack.metrics_port)
    done0, attempt0 = full_passes(before)
    cpu0 = cpu_seconds(controller.pid)
    mark = stack.netmaker.call("stats")["length"]
    t0 = time.monotonic()
    deadline = time.monotonic() + 3 * period + 30
    while time.monotonic() < deadline:
        time.sleep(0.25)
        cpu = cpu_seconds(controller.pid)
        now = scrape(stack.metrics_port)
        done, attempt = full_passes(now)
        if attempt == attempt0 and done == done0:
            cpu0, t0 = cpu, time.monotonic()  # not started yet: move the window's start
            mark = stack.netmaker.call("stats")["length"]
            continue
        if done > done0:
            window = time.monotonic() - t0
            cpu1 = cpu_seconds(controller.pid)
            break
    else:
        raise BenchError("no periodic full pass finished in time")
    wait_quiet(stack, 0.5)
    stats = stack.netmaker.call("stats", since=mark)
    result = dict(base)
    result.update(
        scenario="resync",
        resync_period_seconds=period,
        converged_after_resync=stack.converged(),
        reads=stats["reads"],
        writes=stats["writes"],
        requests=stats["requests"],
        requests_total=sum(stats["requests"].values()),
        controller_cpu_seconds=round(cpu1 - cpu0, 3),
        resync_window_seconds=round(window, 2),
        cpu_ms_per_write=None,
        peak_rss_mb=round(peak_rss_mb(controller.pid), 1),
        initial=base,
    )
    return result


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def measure_events(
    stack: Stack, controller: Controller, rate: float, duration: float, base: dict[str, Any]
) -> dict[str, Any]:
    """Rebuild nodes at ``rate`` a second; per change, stand-in store to last matching write."""
    wait_quiet(stack, 1.0)
    count = max(1, int(rate * duration))
    changes = [
        [node_name(j % stack.nodes), pod_cidrs(stack.nodes + j, stack.dual_stack)]
        for j in range(count)
    ]
    if stack.nodes + count > 65536:
        raise BenchError("--nodes + rate x duration must stay under 65536 (CIDR numbering)")
    mark = stack.netmaker.call("stats")["length"]
    cpu0 = cpu_seconds(controller.pid)
    churn = stack.kube.call("churn", changes=changes, rate=rate)
    done = churn["changes"]
    ranges = [normalize_cidr(c) for _, cidrs, _ in done for c in cidrs]
    deadline = time.monotonic() + 60
    seen: dict[str, float | None] = {}
    while time.monotonic() < deadline:
        seen = stack.netmaker.call("seen", ranges=ranges)
        if all(v is not None for v in seen.values()):
            break
        time.sleep(0.25)
    latencies: list[float] = []
    missing = 0
    for _name, cidrs, stored in done:
        arrivals = [seen.get(normalize_cidr(c)) for c in cidrs]
        if any(a is None for a in arrivals):
            missing += 1
            continue
        latencies.append(1000 * (max(a for a in arrivals if a is not None) - stored))
    wait_quiet(stack, 1.0)
    cpu = cpu_seconds(controller.pid) - cpu0
    stats = stack.netmaker.call("stats", since=mark)
    result = dict(base)
    result.update(
        scenario="events",
        rate=rate,
        duration=duration,
        churn_seconds=round(churn["seconds"], 2),
        changes=len(done),
        changes_without_write=missing,
        latency_p50_ms=round(statistics.median(latencies), 1) if latencies else None,
        latency_p99_ms=round(percentile(latencies, 0.99), 1) if latencies else None,
        latency_max_ms=round(max(latencies), 1) if latencies else None,
        reads=stats["reads"],
        writes=stats["writes"],
        requests=stats["requests"],
        requests_total=sum(stats["requests"].values()),
        controller_cpu_seconds=round(cpu, 2),
        cpu_ms_per_write=round(1000 * cpu / stats["writes"], 3) if stats["writes"] else None,
        peak_rss_mb=round(peak_rss_mb(controller.pid), 1),
        initial=base,
    )
    return result


def _log_size(controller: Controller) -> int:
    return controller.log.stat().st_size


def _log_lines(controller: Controller, start: int, end: int | None = None) -> dict[str, int]:
    """Lines of the controller's JSON log between two byte offsets, in all and per level."""
    with controller.log.open("rb") as log:
        log.seek(start)
        chunk = log.read(-1 if end is None else end - start)
    levels: Counter[str] = Counter()
    for line in chunk.splitlines():
        try:
            levels[str(json.loads(line).get("level", "?")).upper()] += 1
        except (ValueError, AttributeError):
            levels["UNPARSED"] += 1
    return {"lines": sum(levels.values()), **dict(sorted(levels.items()))}


def measure_outage(
    stack: Stack, controller: Controller, at: float, seconds: float, timeout: float
) -> dict[str, Any]:
    """Netmaker away mid-sync for ``seconds``; recovery from its return to convergence."""
    deadline = controller.started + timeout
    expected = stack.progress()["expected"]
    while stack.progress()["rules"] < at * expected:
        if time.monotonic() > deadline or not controller.alive():
            raise BenchError(f"the sync never reached {at:.0%} of the rules")
        time.sleep(0.05)
    went = time.monotonic()
    log_down = _log_size(controller)
    mark_down = stack.netmaker.call("down")
    written_at_down = stack.progress()["rules"]
    time.sleep(seconds)
    log_up = _log_size(controller)
    mark_up = stack.netmaker.call("up")
    back = time.monotonic()
    back_wall = time.time()
    left = expected - stack.progress(full=True)["matching"]
    converged = False
    while time.monotonic() < back + timeout:
        if stack.converged():
            converged = True
            break
        if not controller.alive():
            break
        time.sleep(0.02)
    recovered = time.monotonic()
    log_end = _log_size(controller)
    down = stack.netmaker.call("stats", since=mark_down)
    total = stack.netmaker.call("stats")
    after = stack.netmaker.call("stats", since=mark_up)
    alive = controller.alive()
    all_lines = _log_lines(controller, 0, log_end)["lines"]
    return {
        "scenario": "outage",
        "nodes": stack.nodes,
        "networks": stack.networks,
        "dual_stack": stack.dual_stack,
        "rules_expected": expected,
        "outage_at_rules": written_at_down,
        "outage_started_seconds": round(went - controller.started, 2),
        "outage_seconds": round(back - went, 2),
        "rules_left_at_return": left,
        "converged": converged,
        "recovery_seconds": round(recovered - back, 2) if converged else None,
        "first_write_after_return_seconds": None
        if after["first_write_at"] is None
        else round(after["first_write_at"] - back_wall, 2),
        "wall_seconds": round(recovered - controller.started, 2),
        "requests_while_down": sum(down["requests"].values()) - sum(after["requests"].values()),
        "requests_after_return": after["requests"],
        "writes": total["writes"],
        "reads": total["reads"],
        "requests": total["requests"],
        "requests_total": sum(total["requests"].values()),
        "log_before_outage": _log_lines(controller, 0, log_down),
        "log_during_outage": _log_lines(controller, log_down, log_up),
        "log_during_recovery": _log_lines(controller, log_up, log_end),
        "log_lines_per_1000_writes": round(1000 * all_lines / max(total["writes"], 1), 1),
        "controller_cpu_seconds": round(cpu_seconds(controller.pid), 2) if alive else None,
        "peak_rss_mb": round(peak_rss_mb(controller.pid), 1) if alive else None,
    }


@dataclass
class Options:
    nodes: int
    networks: int
    dual_stack: bool
    latency_ms: float
    scenario: str
    rate: float
    duration: float
    timeout: float
    profile: str | None
    cache_ttl: str | None = None
    outage_at: float = 0.3
    outage_seconds: float = 300.0


def run(options: Options) -> dict[str, Any]:
    with stack_of(options.nodes, options.networks, options.dual_stack, options.latency_ms) as s:
        resync_period = 5.0
        extra = {"RESYNC_PERIOD": f"{resync_period:g}s"} if options.scenario == "resync" else {}
        if options.cache_ttl is not None:
            extra["CACHE_TTL"] = options.cache_ttl
        controller = python_controller(s, extra=extra, profile=options.profile)
        origin_wall = time.time()
        controller.start()
        try:
            if options.scenario == "outage":
                return measure_outage(
                    s, controller, options.outage_at, options.outage_seconds, options.timeout
                )
            base = measure_initial(s, controller, options.timeout, origin_wall)
            base["scenario"] = "initial"
            if not base["converged"]:
                print(f"controller log (last lines):\n{controller.tail()}", file=sys.stderr)
                return base
            if options.scenario == "resync":
                return measure_resync(s, controller, resync_period, base)
            if options.scenario == "events":
                return measure_events(s, controller, options.rate, options.duration, base)
            return base
        finally:
            code = controller.stop()
            if code not in (0, None, -signal.SIGTERM):
                print(f"controller exited {code}:\n{controller.tail()}", file=sys.stderr)


def summary(result: dict[str, Any]) -> str:
    if result.get("scenario") == "outage":
        return "\n".join(f"{k}: {v}" for k, v in result.items())
    keys = [
        "scenario",
        "nodes",
        "networks",
        "dual_stack",
        "latency_ms",
        "converged",
        "wall_seconds",
        "reads",
        "writes",
        "requests_total",
        "controller_cpu_seconds",
        "cpu_ms_per_write",
        "peak_rss_mb",
        "changes",
        "latency_p50_ms",
        "latency_p99_ms",
    ]
    lines = [f"{key}: {result[key]}" for key in keys if key in result]
    lines += [f"  {n:7d}  {key}" for key, n in result["requests"].items()]
    return "\n".join(lines)


def add_stack_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--nodes", type=int, default=1000, help="Kubernetes nodes = hosts (1000)")
    parser.add_argument("--networks", type=int, default=1, help="Netmaker networks (1)")
    parser.add_argument("--dual-stack", action="store_true", help="an IPv6 pod CIDR too")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="emulator delay per request")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def check_stack_options(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if not 1 <= args.nodes <= 65000:
        parser.error("--nodes must be 1..65000")
    if not 1 <= args.networks <= 150:
        parser.error("--networks must be 1..150")
    if args.latency_ms < 0:
        parser.error("--latency-ms must not be negative")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--peer", choices=["netmaker", "kube"], help=argparse.SUPPRESS)
    add_stack_options(parser)
    parser.add_argument(
        "--scenario", choices=["initial", "resync", "events", "outage"], default="initial"
    )
    parser.add_argument(
        "--outage-at", type=float, default=0.3, help="fraction of rules written first (outage)"
    )
    parser.add_argument(
        "--outage-seconds", type=float, default=300.0, help="how long Netmaker is away (outage)"
    )
    parser.add_argument("--rate", type=float, default=100.0, help="node changes a second (events)")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of changes (events)")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds to converge (600)")
    parser.add_argument("--profile", help="run the controller under cProfile, into this file")
    parser.add_argument(
        "--cache-ttl",
        help="the controller's CACHE_TTL (e.g. 1s: a resync then reads every list again)",
    )
    args = parser.parse_args(argv)
    if args.peer == "netmaker":
        serve_netmaker(sys.stdin, sys.stdout, os.environ["KAPUT_NOT_SCALE_PASSWORD"])
        return 0
    if args.peer == "kube":
        serve_kube(sys.stdin, sys.stdout)
        return 0
    check_stack_options(parser, args)
    if args.rate <= 0 or args.duration <= 0:
        parser.error("--rate and --duration must be positive")
    options = Options(
        args.nodes,
        args.networks,
        args.dual_stack,
        args.latency_ms,
        args.scenario,
        args.rate,
        args.duration,
        args.timeout,
        args.profile,
        args.cache_ttl,
        args.outage_at,
        args.outage_seconds,
    )
    return finish(
        "scale", lambda: run(options), None if args.json else summary, lambda r: r["converged"]
    )


if __name__ == "__main__":
    sys.exit(main())
