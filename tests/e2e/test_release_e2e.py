"""The release pipeline's scripts, end to end, with a local OCI registry instead of a public one.

The image that scripts/check built (KAPUT_NOT_IMAGE) is pushed with scripts/push-image under
the tags of scripts/image-tags to Debian's docker-registry on loopback, scripts/package-chart
pins its digest in the chart, scripts/push-chart pushes the chart to the same registry, and
`helm install oci://127.0.0.1:<port>/...` installs it into the real kube-apiserver. The
Deployment must name the image by the digest the registry holds for the pushed tags.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.peers import peer, skip_module_without_peers

from .controlplane import ControlPlane, Kube, Process, StartError, free_port
from .pods import image_reference, skip_module_without_image

skip_module_without_peers("kube-apiserver", "etcd", "helm")
skip_module_without_image()
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

ROOT = Path(__file__).resolve().parents[2]
# Its own release and namespace: other e2e tests create the chart's objects (a ClusterRole
# `kaput-not` among them) on the same API server, and helm adopts no object it did not make.
NAMESPACE = "kaput-not-oci"
RELEASE = "kaput-not-oci"


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[str]:
    """Debian's docker-registry (distribution) on a free loopback port, storage in tmp_path;
    its host:port."""
    binary = shutil.which("docker-registry")
    if binary is None:
        why = "image: docker-registry is not installed (Debian package docker-registry)"
        if os.environ.get("CI"):
            pytest.fail(why, pytrace=False)
        pytest.skip(why)
    address = f"127.0.0.1:{free_port()}"
    config = tmp_path / "registry.yml"
    config.write_text(
        json.dumps(
            {
                "version": 0.1,
                "log": {"level": "warn"},
                "storage": {"filesystem": {"rootdirectory": str(tmp_path / "registry")}},
                "http": {"addr": address},
            }
        )
    )
    process = Process(
        "docker-registry", [binary, "serve", str(config)], directory=tmp_path, one_log=True
    )
    process.start()
    try:
        give_up = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://{address}/v2/", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if not process.running():
                raise StartError(process.failure("exited during start-up"))
            if time.monotonic() > give_up:
                raise StartError(process.failure("did not answer /v2/ within 30s"))
            time.sleep(0.1)
        yield address
    finally:
        process.stop()


def script(name: str, *args: str, env: dict[str, str] | None = None) -> str:
    """Runs scripts/<name>; its stdout, stripped. A failure shows its stderr."""
    done = subprocess.run(
        ["bash", str(ROOT / "scripts" / name), *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        check=False,
        cwd=ROOT,
    )
    assert done.returncode == 0, f"scripts/{name} {' '.join(args)}: {done.stderr.strip()}"
    return done.stdout.strip()


def registry_digest(address: str, repository: str, tag: str) -> str:
    request = urllib.request.Request(
        f"http://{address}/v2/{repository}/manifests/{tag}",
        method="HEAD",
        headers={
            "Accept": ", ".join(
                [
                    "application/vnd.oci.image.index.v1+json",
                    "application/vnd.oci.image.manifest.v1+json",
                    "application/vnd.docker.distribution.manifest.list.v2+json",
                    "application/vnd.docker.distribution.manifest.v2+json",
                ]
            )
        },
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        return str(answer.headers["Docker-Content-Digest"])


def run_helm(args: list[str], state: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """helm with its cache, config and data in the test's own directories."""
    return subprocess.run(
        args, capture_output=True, text=True, env={**os.environ, **state}, check=False
    )


def chart_version() -> str:
    for line in (ROOT / "charts" / "kaput-not" / "Chart.yaml").read_text().splitlines():
        if line.startswith("version:"):
            return line.split(":", 1)[1].strip().strip("\"'")
    raise AssertionError("Chart.yaml has no version")


async def test_helm_install_from_oci_registry_pins_the_pushed_digest(
    control_plane: ControlPlane, kube: Kube, registry: str, tmp_path: Path
):
    image = image_reference()
    helm = peer("helm")
    repository = f"{registry}/kaput-not"
    tags = script("image-tags").split()
    assert any(t.startswith("sha-") for t in tags), tags
    digest = script(
        "push-image", image, repository, *tags, env={"REGISTRY_TLS_VERIFY": "false"}
    ).splitlines()[-1]
    # Every tag names what was pushed, by the digest the registry computed.
    assert {registry_digest(registry, "kaput-not", tag) for tag in tags} == {digest}

    dist = str(tmp_path / "dist")
    package = script("package-chart", dist, repository, digest, env={"HELM": helm})
    script(
        "push-chart",
        package,
        f"oci://{registry}/charts",
        env={"HELM": helm, "PLAIN_HTTP": "true"},
    )

    state = {
        "HELM_CACHE_HOME": str(tmp_path / "helm-cache"),
        "HELM_CONFIG_HOME": str(tmp_path / "helm-config"),
        "HELM_DATA_HOME": str(tmp_path / "helm-data"),
    }
    install = [
        helm,
        "install",
        RELEASE,
        f"oci://{registry}/charts/kaput-not",
        f"--version={chart_version()}",
        "--plain-http",
        f"--namespace={NAMESPACE}",
        "--create-namespace",
        f"--kubeconfig={control_plane.admin_kubeconfig}",
        "--set=netmaker.apiUrl=https://api.netmaker.example.com",
        "--set=netmaker.password=not-a-real-password",
    ]
    done = run_helm(install, state)
    assert done.returncode == 0, f"helm install: {done.stderr.strip()}"
    try:
        deployment: dict[str, Any] = await kube.call(
            "GET", f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments/{RELEASE}"
        )
        [container] = deployment["spec"]["template"]["spec"]["containers"]
        assert container["image"] == f"{repository}@{digest}"
    finally:
        run_helm(
            [
                helm,
                "uninstall",
                RELEASE,
                f"--namespace={NAMESPACE}",
                f"--kubeconfig={control_plane.admin_kubeconfig}",
            ],
            state,
        )
