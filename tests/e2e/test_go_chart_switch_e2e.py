"""Switching a release from the Go chart to this one, with real helm on the real API server.

The Go chart is installed from the Go original's source (the pinned tarball scripts/build-peers
builds the Go peer from, its sha256 checked the same way) into namespace kaput-not, then the
release is upgraded to charts/kaput-not as the chart README says. The result must run our image
with our settings, or the upgrade must fail in one line naming what to change; and
`--reuse-values`, which renders with the Go chart's values (none of the keys this chart added),
must not fail.
"""

from __future__ import annotations

import base64
import importlib.machinery
import importlib.util
import json
import os
import subprocess
import sys
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped,unused-ignore]

from tests.peers import peer, skip_module_without_peers

from .controlplane import ControlPlane, Kube

skip_module_without_peers("kube-apiserver", "etcd", "helm")
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "kaput-not"
APP_VERSION = str(yaml.safe_load((CHART / "Chart.yaml").read_text())["appVersion"])
NAMESPACE = "kaput-not"
OUR_IMAGE = f"ghcr.io/bsure-analytics/kaput-not-py:{APP_VERSION}"
PASSWORD = "the-real-netmaker-password"
GO_API_URL = "https://api.netmaker.example.com"  # the Go chart's values.yaml

Helm = Callable[..., subprocess.CompletedProcess[str]]


def _build_peers() -> Any:
    """scripts/build-peers as a module: where the shared peers are, and the pinned tarball."""
    loader = importlib.machinery.SourceFileLoader("build_peers", str(ROOT / "scripts/build-peers"))
    spec = importlib.util.spec_from_loader("build_peers", loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("build_peers", module)  # its dataclasses look their module up
    loader.exec_module(sys.modules["build_peers"])
    return sys.modules["build_peers"]


@pytest.fixture(scope="module")
def go_chart(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """charts/kaput-not of the Go original, unpacked from its checked tarball."""
    peers = _build_peers()
    source = peers.GO_ORIGINAL_SOURCE
    tarball: Path = peers._shared_peers() / source.file
    if not tarball.is_file():
        why = f"{tarball} is missing (set KAPUT_NOT_SHARED_PEERS to the folder that holds it)"
        if os.environ.get("CI"):
            pytest.fail(f"peers: {why}", pytrace=False)
        pytest.skip(f"peers: {why}")
    assert peers._sha256(tarball) == source.sha256, f"{tarball}: sha256 differs"
    directory = tmp_path_factory.mktemp("go-original")
    prefix = f"{source.root}/charts/kaput-not/"
    with tarfile.open(tarball) as archive:
        members = [m for m in archive.getmembers() if m.name.startswith(prefix)]
        archive.extractall(directory, members=members, filter="data")
    chart: Path = directory / str(source.root) / "charts" / "kaput-not"
    assert yaml.safe_load((chart / "Chart.yaml").read_text())["version"] == "0.3.3-SNAPSHOT"
    return chart


@pytest.fixture
def helm(control_plane: ControlPlane, tmp_path: Path) -> Helm:
    """helm against the test's API server, namespace kaput-not, its state in tmp_path."""
    binary = peer("helm")
    env = {
        **os.environ,
        "HELM_CACHE_HOME": str(tmp_path / "helm-cache"),
        "HELM_CONFIG_HOME": str(tmp_path / "helm-config"),
        "HELM_DATA_HOME": str(tmp_path / "helm-data"),
        "KUBECONFIG": str(control_plane.admin_kubeconfig),
    }

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [binary, *args, "--namespace", NAMESPACE],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            check=False,
        )

    return run


def ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


async def deployment(kube: Kube, name: str) -> dict[str, Any]:
    found: dict[str, Any] = await kube.call(
        "GET", f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments/{name}"
    )
    return found


def revision(helm: Helm, release: str) -> int:
    history = json.loads(ok(helm("history", release, "--output", "json")))
    return int(history[-1]["revision"])


async def assert_runs_ours(kube: Kube, name: str, *, lease: str, api_url: str) -> None:
    """The release's objects, as the API server holds them, are this chart's."""
    pod = (await deployment(kube, name))["spec"]["template"]["spec"]
    [c] = pod["containers"]
    assert c["image"] == OUR_IMAGE
    assert c["args"] == ["run"]
    assert c["envFrom"] == [{"configMapRef": {"name": name}}]  # the Go chart's secretRef is gone
    env = {e["name"]: e.get("value") for e in c["env"]}
    assert env["NETMAKER_PASSWORD_FILE"] == "/var/run/secrets/kaput-not/netmaker/password"
    assert (c["readinessProbe"]["httpGet"]["path"], c["livenessProbe"]["httpGet"]["path"]) == (
        "/readyz",
        "/healthz",
    )
    assert c["securityContext"]["runAsUser"] == 65532
    settings = (await kube.call("GET", f"/api/v1/namespaces/{NAMESPACE}/configmaps/{name}"))["data"]
    assert settings["LEADER_ELECTION_ID"] == lease
    assert settings["NETMAKER_API_URL"] == api_url
    assert settings["WORKERS"] == "4"  # a setting the Go chart never had
    assert settings["EVENTS_ENABLED"] == "true"
    assert "NETMAKER_PASSWORD" not in settings
    secret = await kube.call("GET", f"/api/v1/namespaces/{NAMESPACE}/secrets/{name}-password")
    assert set(secret["data"]) == {"password"}
    # The Go chart's Secret (its password as NETMAKER_PASSWORD) is gone, not left beside ours.
    listed = await kube.call("GET", f"/api/v1/namespaces/{NAMESPACE}/secrets")
    assert name not in {s["metadata"]["name"] for s in listed["items"]}
    assert base64.b64decode(secret["data"]["password"]).decode() == PASSWORD
    role = await kube.call(
        "GET",
        f"/apis/rbac.authorization.k8s.io/v1/namespaces/default/roles/{name}-events-{NAMESPACE}",
    )
    assert role["rules"][0]["resources"] == ["events"]


async def test_the_go_chart_upgraded_to_ours_runs_our_image_or_fails_naming_what_to_change(
    kube: Kube, helm: Helm, go_chart: Path
):
    release, name = "kn-switch", "kn-switch-kaput-not"
    go_values = str(go_chart / "values.yaml")
    ok(helm("install", release, str(go_chart), "--create-namespace"))
    go_pod = (await deployment(kube, name))["spec"]["template"]["spec"]
    assert go_pod["containers"][0]["image"] == "ghcr.io/bsure-analytics/kaput-not:v0.3.3-SNAPSHOT"

    # The Go values file as it is: its placeholder password is refused, in one line.
    refused = helm("upgrade", release, str(CHART), "-f", go_values)
    assert refused.returncode != 0
    [line] = [x for x in refused.stderr.splitlines() if "REPLACE-WITH-ACTUAL-PASSWORD" in x]
    assert "netmaker.password is the Go chart's placeholder" in line
    assert revision(helm, release) == 1  # nothing was changed

    # With the real password: our image (the Go repository is replaced), our settings.
    upgraded = ok(
        helm(
            "upgrade",
            release,
            str(CHART),
            "-f",
            go_values,
            "--set",
            f"netmaker.password={PASSWORD}",
        )
    )
    assert "is the Go implementation's image" in upgraded  # the notes say what was replaced
    assert revision(helm, release) == 2
    await assert_runs_ours(kube, name, lease="kaput-not", api_url=GO_API_URL)

    # A Go version pinned next to the Go repository: refused, naming both.
    pinned = helm(
        "upgrade", release, str(CHART), "-f", go_values,
        "--set", f"netmaker.password={PASSWORD}", "--set", "image.tag=v0.3.2",
    )  # fmt: skip
    assert pinned.returncode != 0
    [line] = [x for x in pinned.stderr.splitlines() if "Go implementation's image" in x]
    assert "image.tag pins one of its versions: remove both from your values" in line


async def test_reuse_values_from_the_go_chart_has_no_nil_pointer(
    kube: Kube, helm: Helm, go_chart: Path
):
    # Installed with an older values set: the Go chart's, which lacks every key ours added.
    release, name = "kn-reuse", "kn-reuse-kaput-not"
    settings = {
        "netmaker.apiUrl": "https://nm.example.net",
        "netmaker.password": PASSWORD,
        "leaderElection.id": "kn-reuse",
    }
    sets = [arg for key, value in settings.items() for arg in ("--set", f"{key}={value}")]
    ok(helm("install", release, str(go_chart), "--create-namespace", *sets))
    reused = helm("upgrade", release, str(CHART), "--reuse-values")
    assert reused.returncode == 0, reused.stderr  # was: nil pointer evaluating ...serviceMonitor
    await assert_runs_ours(kube, name, lease="kn-reuse", api_url="https://nm.example.net")
    # What the README says to use: the new chart's defaults under the values set before.
    ok(helm("upgrade", release, str(CHART), "--reset-then-reuse-values"))
    await assert_runs_ours(kube, name, lease="kn-reuse", api_url="https://nm.example.net")
    assert revision(helm, release) == 3
