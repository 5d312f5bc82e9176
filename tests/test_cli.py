"""The command line, run as users run it: a separate process."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

import kaput_not as package
from kaput_not import __revision__, __version__
from kaput_not_standins.kube import kubeconfig_text


def kaput_not(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kaput_not", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _run_env(netmaker_url: str, kubeconfig: Path, password: str, **more: str) -> dict[str, str]:
    """The environment of a `kaput-not` subprocess: this tree's code, a Netmaker, a kubeconfig."""
    return {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": os.environ.get("PYTHONPATH", ""),  # this tree's code, not main's
        "NETMAKER_API_URL": netmaker_url,
        "NETMAKER_USERNAME": "kaput-not",
        "NETMAKER_PASSWORD": password,
        "KUBECONFIG": str(kubeconfig),
        **more,
    }


def test_version():
    done = kaput_not("--version")
    assert done.returncode == 0
    assert done.stdout.strip() == f"kaput-not {__version__} (revision {__revision__})"


def built_copy(tmp_path: Path, version_file: str | None) -> Path:
    """A copy of the package as a build leaves it: with the `_version.py` setuptools-scm
    writes (`version_file`), or none, as in a source tree that was never built."""
    source = Path(package.__file__).parent
    shutil.copytree(
        source, tmp_path / "kaput_not", ignore=shutil.ignore_patterns("__pycache__", "_version.py")
    )
    if version_file is not None:
        (tmp_path / "kaput_not" / "_version.py").write_text(version_file)
    return tmp_path


def version_of(root: Path, **env: str) -> str:
    clean = {k: v for k, v in os.environ.items() if k != "KAPUT_NOT_REVISION"}
    done = subprocess.run(
        [sys.executable, "-m", "kaput_not", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**clean, "PYTHONPATH": str(root), **env},
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_version_says_the_version_and_revision_baked_at_build_time(tmp_path):
    # What setuptools-scm writes for a checkout at tag v1.4.2, commit 3f2a9c1 (git's g<hex>).
    root = built_copy(
        tmp_path, '__version__ = version = "1.4.2"\n__commit_id__ = commit_id = "g3f2a9c1"\n'
    )
    assert version_of(root) == "kaput-not 1.4.2 (revision 3f2a9c1)"
    # The baked commit wins over the variable an image may set.
    assert version_of(root, KAPUT_NOT_REVISION="0000000") == "kaput-not 1.4.2 (revision 3f2a9c1)"


def test_version_of_a_tree_never_built_says_so(tmp_path):
    root = built_copy(tmp_path, None)
    assert version_of(root) == "kaput-not 0.0.0+unknown (revision unknown)"
    assert version_of(root, KAPUT_NOT_REVISION="3f2a9c1") == (
        "kaput-not 0.0.0+unknown (revision 3f2a9c1)"
    )


def test_demo_at_scale_converges_within_the_read_budget():
    done = kaput_not("demo", "--nodes", "1000", "--dual-stack", "--networks", "2", "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["converged"] is True
    assert result["nodes"] == 1000
    assert result["egress_total"] == 1000 * 2 * 2
    assert result["failures"] == 0
    assert result["foreign_untouched"] is True
    assert result["reads"] <= 3 + result["networks"]
    assert result["requests"]["POST /api/v1/egress"] == 4000
    assert result["writes"] == 4000
    assert done.stderr == ""


def test_demo_prints_a_readable_summary():
    done = kaput_not("demo", "--nodes", "3")
    assert done.returncode == 0, done.stderr
    assert "converged yes" in done.stdout
    assert "node-00002 pods (1/1)" in done.stdout
    assert "GET /api/hosts" in done.stdout


def test_bad_demo_flags_give_one_line_and_exit_2():
    done = kaput_not("demo", "--nodes", "0")
    assert done.returncode == 2
    assert done.stderr.strip() == "kaput-not demo: --nodes must be between 1 and 65536, got 0"


def test_unknown_command_exits_2():
    assert kaput_not("frobnicate").returncode == 2


def test_logs_are_json_in_cluster_and_text_locally(tmp_path):
    from kaput_not import config

    base = {
        "NETMAKER_API_URL": "https://nm.example.com",
        "NETMAKER_USERNAME": "kaput-not",
        "NETMAKER_PASSWORD": "a-password",
    }
    namespace = tmp_path / "namespace"
    assert config.load(base, namespace_file=namespace).output.log_format == "text"
    namespace.write_text("kaput-not")
    assert config.load(base, namespace_file=namespace).output.log_format == "json"
    assert config.load(
        {**base, "LOG_FORMAT": "text"}, namespace_file=namespace
    ).output.log_format == ("text")


def test_run_help_lists_every_variable_with_its_default_and_meaning():
    from kaput_not import config

    done = subprocess.run(
        [sys.executable, "-m", "kaput_not", "run", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0
    lines = {line.split()[0]: line for line in done.stdout.splitlines() if line.startswith("  ")}
    for name, default, meaning in config.VARIABLES:
        assert name in lines, name
        assert meaning in lines[name]
        assert default in lines[name]


def test_run_without_configuration_names_the_first_missing_variable_and_exits_2():
    done = subprocess.run(
        [sys.executable, "-m", "kaput_not", "run"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("kaput-not: NETMAKER_API_URL is not set")


def test_run_with_a_rejected_password_is_one_line_and_exit_2(tmp_path):
    from kaput_not_standins.netmaker import NetmakerEmulator

    # Loaded but never contacted: the password is refused before anything talks to Kubernetes.
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(kubeconfig_text("https://127.0.0.1:9"))
    with NetmakerEmulator(username="kaput-not", password="right-password").run_in_thread() as nm:
        done = subprocess.run(
            [sys.executable, "-m", "kaput_not", "run"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env=_run_env(nm.base_url, kubeconfig, "wrong-password", METRICS_ADDRESS="127.0.0.1:0"),
        )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert "POST /api/users/adm/authenticate" in lines[0]
    assert "wrong-password" not in done.stderr


def _run_once(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kaput_not", "run"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": os.environ.get("PYTHONPATH", ""), **env},
    )


@pytest.mark.parametrize(
    ("kubeconfig", "expected"),
    [
        ("apiVersion: v1\nclusters: [\n", "cannot load the Kubernetes configuration"),
        ("just some text\n", "is not a kubeconfig"),
    ],
    ids=["not-yaml", "not-a-mapping"],
)
def test_run_with_a_broken_kubeconfig_is_one_line_and_exit_2(tmp_path, kubeconfig, expected):
    """Issue 9, item 9: a kubeconfig that is not YAML was a traceback."""
    path = tmp_path / "kubeconfig"
    path.write_text(kubeconfig)
    done = _run_once(
        {
            "NETMAKER_API_URL": "http://127.0.0.1:9",
            "NETMAKER_USERNAME": "kaput-not",
            "NETMAKER_PASSWORD": "unused-password",
            "KUBECONFIG": str(path),
            "METRICS_ADDRESS": "127.0.0.1:0",
        }
    )
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert expected in lines[0]


def test_run_on_a_port_in_use_is_one_line_and_exit_2(tmp_path):
    """Issue 9, item 9: an address that cannot be bound was a traceback."""
    import socket

    path = tmp_path / "kubeconfig"
    path.write_text(kubeconfig_text("https://127.0.0.1:9"))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = _run_once(
            {
                "NETMAKER_API_URL": "http://127.0.0.1:9",
                "NETMAKER_USERNAME": "kaput-not",
                "NETMAKER_PASSWORD": "unused-password",
                "KUBECONFIG": str(path),
                "METRICS_ADDRESS": f"127.0.0.1:{port}",
            }
        )
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert f"METRICS_ADDRESS='127.0.0.1:{port}': cannot listen there" in lines[0]


def test_run_serves_probes_and_stops_on_sigterm_within_seconds(tmp_path):
    import signal
    import socket
    import time

    import httpx2

    from kaput_not_standins.kube import KubeApiServer
    from kaput_not_standins.netmaker import NetmakerEmulator

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with (
        KubeApiServer().run_in_thread() as kube,
        NetmakerEmulator(username="kaput-not", password="right-password").run_in_thread() as nm,
    ):
        kube.state.create_node("w1", pod_cidrs=("10.244.1.0/24",))
        nm.state.add_network("mesh", "100.64.0.0/16")
        nm.state.add_host("w1", ["mesh"])
        kubeconfig = tmp_path / "kubeconfig"
        kubeconfig.write_text(kubeconfig_text(kube.base_url))
        process = subprocess.Popen(
            [sys.executable, "-m", "kaput_not", "run"],
            stderr=subprocess.PIPE,
            text=True,
            env=_run_env(
                nm.base_url,
                kubeconfig,
                "right-password",
                METRICS_ADDRESS=f"127.0.0.1:{port}",
                LOG_FORMAT="json",
            ),
        )
        try:
            deadline = time.monotonic() + 20
            ready = None
            while time.monotonic() < deadline:
                try:
                    ready = httpx2.get(f"http://127.0.0.1:{port}/readyz", timeout=1)
                    if ready.status_code == 200:
                        break
                except httpx2.HTTPError:
                    pass
                time.sleep(0.1)
            assert ready is not None
            assert ready.status_code == 200
            metrics = httpx2.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
            assert 'kaput_not_reconciles_total{result="success",scope="full"} 1.0' in metrics
            assert len(nm.state.egresses("mesh")) == 1
            stopped = time.monotonic()
            process.send_signal(signal.SIGTERM)
            code = process.wait(timeout=10)
            took = time.monotonic() - stopped
        finally:
            process.kill()
            stderr = process.communicate()[1]
    assert code == 0, stderr
    assert took < 5.0
    lines = [json.loads(line) for line in stderr.splitlines()]
    assert any(line["msg"] == "stopping: signal received" for line in lines)
    assert "right-password" not in stderr
    # Issue 20: the settings and a sync's counts as fields, not inside a repr or a sentence.
    [started] = [line for line in lines if "started, health on port" in line["msg"]]
    assert "Settings(" not in started["msg"]
    assert started["settings"]["netmaker_username"] == "kaput-not"
    assert "netmaker_password" not in started["settings"]
    [synced] = [line for line in lines if line["msg"].startswith("full sync:")]
    assert (synced["nodes"], synced["created"], synced["failed"]) == (1, 1, 0)


@pytest.mark.parametrize(
    "host", ["a" * 64 + ".example.com", "\u0661\u0662\u0663.example.com"], ids=["long", "digits"]
)
@pytest.mark.parametrize(("command", "code"), [("run", 2), ("status", 2), ("plan", 1)])
def test_a_url_host_that_cannot_be_looked_up_is_one_line_not_a_traceback(
    host: str, command: str, code: int
):
    """Issue 17: a 64-character label or non-ASCII digits escaped as a traceback, exit 1.
    (`plan` answers every configuration error with 1: it keeps 2 for "changes pending".)"""
    env = {
        **os.environ,
        "NETMAKER_API_URL": f"http://{host}",
        "NETMAKER_USERNAME": "u",
        "NETMAKER_PASSWORD": "secret-password",
        "KUBECONFIG": "/nonexistent/kubeconfig",
    }
    done = subprocess.run(
        [sys.executable, "-m", "kaput_not", command],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )
    lines = done.stderr.strip().splitlines()
    assert done.returncode == code, done.stderr
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("kaput-not: NETMAKER_API_URL"), lines[0]


# -- issue 17: plan --apply and acknowledge go through the guard's state on the Lease -----------


def _with_stand_ins(tmp_path, args: list[str], *, seed, **env: str):
    """`kaput-not ARGS` against both stand-ins (in threads); `seed(kube, nm)` prepares them.
    Returns the finished process and the Lease, and the Netmaker request counts after it."""
    import os

    from kaput_not_standins.kube import KubeApiServer
    from kaput_not_standins.netmaker import NetmakerEmulator

    with (
        KubeApiServer().run_in_thread() as kube,
        NetmakerEmulator(username="kaput-not", password="pw").run_in_thread() as nm,
    ):
        nm.state.add_network("mesh", "100.64.0.0/16")
        seed(kube, nm)
        kubeconfig = tmp_path / "kubeconfig"
        kubeconfig.write_text(kubeconfig_text(kube.base_url))
        done = subprocess.run(
            [sys.executable, "-m", "kaput_not", *args],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            env={
                "PATH": "/usr/bin:/bin",
                "PYTHONPATH": os.environ.get("PYTHONPATH", ""),
                "NETMAKER_API_URL": nm.base_url,
                "NETMAKER_USERNAME": "kaput-not",
                "NETMAKER_PASSWORD": "pw",
                "KUBECONFIG": str(kubeconfig),
                "POD_NAME": "laptop",
                **env,
            },
        )
        return done, kube.state.lease("kube-system", "kaput-not"), nm.log.counts()


def _one_node(kube, nm) -> None:
    nm.state.add_host("w1", ("mesh",))
    kube.state.create_node("w1", pod_cidrs=("10.244.1.0/24",))


def test_plan_apply_while_another_replica_leads_exits_1_naming_it(tmp_path):
    import datetime

    from kaput_not.kube.lease import micro_time

    def seed(kube, nm) -> None:
        _one_node(kube, nm)
        now = micro_time(datetime.datetime.now(datetime.UTC))
        spec = {"holderIdentity": "leader-b", "leaseDurationSeconds": 15, "renewTime": now}
        kube.state.put_lease("kube-system", "kaput-not", spec)

    done, lease, counts = _with_stand_ins(tmp_path, ["plan", "--apply"], seed=seed)
    assert done.returncode == 1, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert "held by leader-b" in lines[0]
    assert counts.get("POST /api/v1/egress", 0) == 0
    assert lease is not None
    assert lease["spec"]["holderIdentity"] == "leader-b"


def test_plan_apply_under_dry_run_says_so_and_writes_nothing(tmp_path):
    done, lease, counts = _with_stand_ins(
        tmp_path, ["plan", "--apply"], seed=_one_node, DRY_RUN="true"
    )
    assert done.returncode == 2, done.stderr  # changes pending, as `plan` says
    assert "DRY_RUN=true: planned only, nothing written" in done.stderr
    assert counts.get("POST /api/v1/egress", 0) == 0
    assert lease is None


def test_acknowledge_prints_the_trip_and_its_cause_and_records_one(tmp_path):
    from kaput_not.controller.guard_state import (
        ACK_ANNOTATION,
        ANNOTATION,
        GuardState,
        Trip,
        encode,
        parse_ack,
    )

    state = GuardState(owned=6, nodes=3, trip=Trip(since=1.0, cause="refusing 3 delete(s)"))

    def seed(kube, nm) -> None:
        kube.state.put_lease("kube-system", "kaput-not", annotations={ANNOTATION: encode(state)})

    done, lease, _ = _with_stand_ins(tmp_path, ["acknowledge", "--expires", "30m"], seed=seed)
    assert done.returncode == 0, done.stderr
    assert "tripped: refusing 3 delete(s)" in done.stdout
    assert lease is not None
    expires = parse_ack(lease["metadata"]["annotations"][ACK_ANNOTATION])
    assert 29 * 60 < expires - time.time() <= 30 * 60


# -- issue 20: the Kubernetes configuration is found as kubectl finds it -------------------------


def _kubeconfig(**parts: object) -> str:
    return json.dumps({"apiVersion": "v1", "kind": "Config", **parts})


def _cluster(name: str, server: str) -> dict[str, object]:
    return {"name": name, "cluster": {"server": server}}


def _context(name: str, cluster: str, user: str = "user") -> dict[str, object]:
    return {"name": name, "context": {"cluster": cluster, "user": user}}


_USER = {"name": "user", "user": {"token": "any-token"}}
_NOWHERE = "https://127.0.0.1:9"


def test_kubeconfig_path_list_is_merged_like_kubectl(tmp_path):
    """Issue 20: KUBECONFIG=a:b was "file not found". Merged as kubectl merges: a missing file
    is skipped, the first file to name a cluster wins, current-context from the first setting
    it; the second file's users are used."""

    def seed(kube, nm) -> None:
        _one_node(kube, nm)
        (tmp_path / "a").write_text(
            _kubeconfig(
                clusters=[_cluster("c", kube.base_url)],
                contexts=[_context("first", "c")],
                **{"current-context": "first"},
            )
        )
        (tmp_path / "b").write_text(
            _kubeconfig(
                clusters=[_cluster("c", _NOWHERE)],
                contexts=[_context("second", "c")],
                users=[_USER],
                **{"current-context": "second"},
            )
        )

    paths = ":".join(str(tmp_path / name) for name in ("missing", "a", "b"))
    done, _, _ = _with_stand_ins(tmp_path, ["status", "-o", "json"], seed=seed, KUBECONFIG=paths)
    assert done.returncode == 0, done.stderr
    assert '"w1"' in done.stdout  # the node, read through the stand-in


def test_plan_and_status_take_kubeconfig_and_context_flags(tmp_path):
    """Issue 20: `--kubeconfig FILE` overrides KUBECONFIG and `--context NAME` current-context,
    as with kubectl; an unknown context is one line naming the ones there are."""

    def seed(kube, nm) -> None:
        _one_node(kube, nm)
        (tmp_path / "flag").write_text(
            _kubeconfig(
                clusters=[_cluster("nowhere", _NOWHERE), _cluster("standin", kube.base_url)],
                contexts=[_context("nowhere", "nowhere"), _context("alt", "standin")],
                users=[_USER],
                **{"current-context": "nowhere"},
            )
        )

    flag = str(tmp_path / "flag")
    for command in (["status"], ["plan"]):
        done, _, _ = _with_stand_ins(
            tmp_path,
            [*command, "--kubeconfig", flag, "--context", "alt", "-o", "json"],
            seed=seed,
            KUBECONFIG=str(tmp_path / "does-not-exist"),
        )
        assert done.returncode in (0, 2), done.stderr  # plan: 2 is "changes pending"
        assert "w1" in done.stdout
    done, _, _ = _with_stand_ins(
        tmp_path, ["status", "--kubeconfig", flag, "--context", "typo"], seed=seed
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert lines == [
        f"kaput-not: --kubeconfig {flag}: --context 'typo' is not one of its contexts: nowhere, alt"
    ]


def test_without_kubeconfig_the_error_says_both_places_looked(tmp_path):
    """Issue 20: with KUBECONFIG unset the order is in-cluster then ~/.kube/config, but the
    error named only the service account (and the help said "in-cluster")."""
    done = subprocess.run(
        [sys.executable, "-m", "kaput_not", "status"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={
            "PATH": "/usr/bin:/bin",
            "PYTHONPATH": os.environ.get("PYTHONPATH", ""),
            "HOME": str(tmp_path),
            "NETMAKER_API_URL": "http://127.0.0.1:9",
            "NETMAKER_USERNAME": "kaput-not",
            "NETMAKER_PASSWORD": "unused-password",
        },
    )
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert "not in a cluster" in lines[0]
    assert "~/.kube/config does not exist" in lines[0]
    assert "set KUBECONFIG or pass --kubeconfig" in lines[0]
    help_text = kaput_not("status", "--help").stdout
    assert "~/.kube/config" in " ".join(help_text.split())


def test_without_kubeconfig_outside_a_cluster_home_kube_config_is_used(tmp_path):
    """Issue 20: KUBECONFIG unset, not in a pod: ~/.kube/config, as kubectl."""

    def seed(kube, nm) -> None:
        _one_node(kube, nm)
        (tmp_path / ".kube").mkdir()
        (tmp_path / ".kube" / "config").write_text(kubeconfig_text(kube.base_url))

    done, _, _ = _with_stand_ins(
        tmp_path, ["status", "-o", "json"], seed=seed, KUBECONFIG="", HOME=str(tmp_path)
    )
    assert done.returncode == 0, done.stderr
    assert '"w1"' in done.stdout  # the node, read through the stand-in


def test_a_plan_or_status_failure_is_printed_once(tmp_path):
    """Issue 20: an unreachable Netmaker was a WARNING line and then the same text as the
    error; it is one line now (and the TLS hint only where a CA file can help)."""
    for command in ("status", "plan"):
        done, _, _ = _with_stand_ins(
            tmp_path, [command], seed=_one_node, NETMAKER_API_URL="http://127.0.0.1:9"
        )
        assert done.returncode == 1, done.stderr
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1, lines
        assert lines[0].startswith(f"kaput-not {command}: POST /api/users/adm/authenticate")


def test_a_sigterm_while_run_starts_stops_it_cleanly(tmp_path):
    """A SIGTERM that arrives before the event loop takes the signals over (here: while the
    settings load) is kept and honoured once running: exit 0 after a clean stop. In a
    container `run` is PID 1, where the kernel drops a signal without a handler: the pod
    deleted while it started ran on until the SIGKILL (the image e2e saw exit code 137)."""
    from kaput_not_standins.kube import KubeApiServer
    from kaput_not_standins.netmaker import NetmakerEmulator

    script = (
        "import os, signal, sys\n"
        "import kaput_not.config as config\n"
        "load = config.load\n"
        "def early():\n"
        "    os.kill(os.getpid(), signal.SIGTERM)\n"
        "    return load()\n"
        "config.load = early\n"
        "from kaput_not.cli import main\n"
        "sys.exit(main(['run']))\n"
    )
    with (
        KubeApiServer().run_in_thread() as kube,
        NetmakerEmulator(username="kaput-not", password="right-password").run_in_thread() as nm,
    ):
        kubeconfig = tmp_path / "kubeconfig"
        kubeconfig.write_text(kubeconfig_text(kube.base_url))
        done = subprocess.run(
            [sys.executable, "-c", script],
            capture_output=True,
            text=True,
            timeout=60,
            env=_run_env(
                nm.base_url,
                kubeconfig,
                "right-password",
                METRICS_ADDRESS="127.0.0.1:0",
                LOG_FORMAT="json",
            ),
            check=False,
        )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "stopping: signal received" in done.stderr
