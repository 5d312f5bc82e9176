"""The image, run as the chart runs it, on the real kube-apiserver, etcd and Netmaker.

`helm template` renders the chart with this test's values; each replica is a podman container
started from the rendered Deployment alone (tests/e2e/pods.py): its env from the rendered
ConfigMap and Secret, its user, read-only root file system and dropped capabilities, a token
for the chart's ServiceAccount from the real API server's TokenRequest with its CA at the
in-cluster path, and a network namespace of its own where the probes ask on the manifest's
port. The chart's RBAC objects are created on the API server as rendered, so the pods can do
only what the chart grants. The release namespace is not kube-system.
"""

from __future__ import annotations

import asyncio
import functools
import json
import subprocess
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any, cast
from urllib.parse import quote

import httpx2
import pytest
import yaml  # type: ignore[import-untyped,unused-ignore]

from tests.contract.seeding import poll
from tests.peers import peer, skip_module_without_peers

from .conftest import PROCESSES, Mesh
from .controlplane import ControlPlane, Kube
from .pods import (
    Pod,
    PodNetwork,
    image_reference,
    kube_paths,
    network_namespaces,
    one,
    pod_settings,
    podman_command,
    skip_module_without_image,
    start_pod,
    token_request_body,
    ulimits,
)
from .test_controller_e2e import converge, rule

skip_module_without_peers("kube-apiserver", "etcd", "netmaker", "helm")
skip_module_without_image()
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

CHART = Path(__file__).resolve().parents[2] / "charts" / "kaput-not"
RBAC_KINDS = ("ServiceAccount", "Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding")


@pytest.fixture
def image() -> str:
    return image_reference()


@pytest.fixture
def release_namespace() -> str:
    return f"kaput-not-{uuid.uuid4().hex[:6]}"


def render(mesh: Mesh, image: str, namespace: str) -> list[dict[str, Any]]:
    """`helm template` of the chart with this test's values (the Netmaker of this test, short
    timings so a failover fits in a test)."""
    repository, _, tag = image.rpartition(":")
    values = {
        "image": {"repository": repository, "tag": tag, "pullPolicy": "Never"},
        "netmaker": {
            "apiUrl": mesh.server.url,
            "username": mesh.username,
            "password": mesh.password,
        },
        "replicaCount": 2,
        "leaderElection": {"leaseDuration": "4s", "renewDeadline": "3s", "retryPeriod": "1s"},
        "config": {"cacheTtl": "1s", "deleteGrace": "0.5s"},
        "terminationGracePeriodSeconds": 10,
    }
    rendered = subprocess.run(
        [
            peer("helm"),
            "template",
            "kaput-not",
            str(CHART),
            f"--namespace={namespace}",
            "--values=-",
        ],
        input=json.dumps(values),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [o for o in yaml.safe_load_all(rendered) if o]


async def install_rbac(kube: Kube, objects: list[dict[str, Any]], namespace: str) -> None:
    """The chart's ServiceAccount and RBAC objects, created as rendered."""
    await kube.ensure_namespace(namespace)
    for obj in objects:
        if obj["kind"] in RBAC_KINDS:
            collection, _ = kube_paths(obj)
            await kube.call("POST", collection, body=obj)


async def uninstall_rbac(kube: Kube, objects: list[dict[str, Any]]) -> None:
    for obj in objects:
        if obj["kind"] in RBAC_KINDS and "namespace" not in obj["metadata"]:
            _, path = kube_paths(obj)
            await kube.call("DELETE", path, expect=(200, 202, 404))


async def service_account_token(kube: Kube, namespace: str, account: str) -> str:
    path = f"/api/v1/namespaces/{namespace}/serviceaccounts/{account}/token"
    answer = await kube.call("POST", path, body=token_request_body())
    return str(answer["status"]["token"])


class Release:
    """The rendered release, its pods and what the test needs to look at them."""

    def __init__(self, objects: list[dict[str, Any]], pods: list[Pod], grace: int) -> None:
        self.objects = objects
        self.pods = pods
        self.grace = grace
        config = one(objects, "ConfigMap")["data"]
        self.namespace = config["LEADER_ELECTION_NAMESPACE"]
        self.lease = config["LEADER_ELECTION_ID"]

    def pod(self, name: str) -> Pod:
        [found] = [p for p in self.pods if p.name == name]
        return found


@pytest.fixture
def namespaces() -> Iterator[Callable[[str], PodNetwork]]:
    with network_namespaces() as make:
        yield make


@pytest.fixture
async def release(
    image: str,
    control_plane: ControlPlane,
    kube: Kube,
    mesh: Mesh,
    release_namespace: str,
    namespaces: Callable[[str], PodNetwork],
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> AsyncIterator[Release]:
    """The chart rendered for this test, its RBAC on the API server and its two replicas
    started from the rendered Deployment. At the end every pod still running must stop with
    exit code 0 within the manifest's grace period."""
    objects = render(mesh, image, release_namespace)
    deployment = one(objects, "Deployment")
    replicas = int(deployment["spec"]["replicas"])
    assert replicas == 2
    await install_rbac(kube, objects, release_namespace)
    port = int(control_plane.url.rsplit(":", 1)[1])
    ca = control_plane.pki.ca_cert.read_bytes()
    pods: list[Pod] = []
    try:
        for index in range(replicas):
            name = f"{deployment['metadata']['name']}-{index}"
            settings = pod_settings(objects, name)
            token = await service_account_token(kube, settings.namespace, settings.service_account)
            network = namespaces(str(index))
            network.inward(port)
            network.inward(mesh.server.port)
            pods.append(
                start_pod(
                    settings,
                    name=name,
                    network=network,
                    token=token,
                    ca=ca,
                    apiserver_port=port,
                    directory=tmp_path,
                )
            )
            # The conftest adds the tail of its log to a failed test's report.
            request.node.stash.setdefault(PROCESSES, []).append(cast(Any, pods[-1]))
        yield Release(objects, pods, settings.grace)
        running = [p for p in pods if p.running()]
        # Stopped once it serves, as a pod in service is: a SIGTERM while the interpreter itself
        # starts, before any code of ours runs, is dropped (PID 1 has no handler yet), and the
        # kubelet's SIGKILL after the grace period ends it (README, the operational notes).
        for pod in running:

            async def healthz(pod: Pod = pod) -> int | None:
                return await probe(pod, "/healthz")

            await poll(
                healthz,
                lambda code: code == 200,
                what=f"{pod.name} /healthz before it is stopped",
                deadline=30,
            )
        codes = {p.name: await asyncio.to_thread(p.stop, settings.grace) for p in running}
        assert all(code == 0 for code in codes.values()), f"exit codes on SIGTERM: {codes}"
    finally:
        for pod in pods:
            await asyncio.to_thread(pod.remove)
        await uninstall_rbac(kube, objects)


async def probe(pod: Pod, path: str) -> int | None:
    async with httpx2.AsyncClient(timeout=5, trust_env=False) as http:
        try:
            return (await http.get(f"{pod.probe_url}{path}")).status_code
        except httpx2.TransportError:
            return None


async def holder(kube: Kube, release: Release) -> str | None:
    return await kube.holder(release.namespace, release.lease)


async def leader(kube: Kube, release: Release) -> Pod:
    names = {p.name for p in release.pods}
    name = await poll(
        lambda: holder(kube, release),
        lambda h: h in names,
        what=f"a replica to hold the Lease {release.namespace}/{release.lease}",
        deadline=60,
    )
    return release.pod(str(name))


async def test_image_from_rendered_deployment_two_replicas_converge(
    kube: Kube, mesh: Mesh, release: Release
):
    net = await mesh.network()
    w1, w2 = await mesh.host("w1", net), await mesh.host("w2", net)
    await kube.create_node("w1", "10.244.1.0/24")
    await kube.create_node("w2", "10.244.2.0/24", "fd00:2::/64")
    first = await leader(kube, release)
    await converge(
        mesh,
        net,
        [
            rule("w1", 0, 1, "10.244.1.0/24", net, w1.nodes[net]),
            rule("w2", 0, 2, "10.244.2.0/24", net, w2.nodes[net]),
            rule("w2", 1, 2, "fd00:2::/64", net, w2.nodes[net]),
        ],
        within=60,
    )
    # Every replica answers where the manifest's probes ask: alive, and the leader ready.
    settings = pod_settings(release.objects, first.name)
    assert settings.probe_paths == {
        "startup": "/healthz",
        "liveness": "/healthz",
        "readiness": "/readyz",
    }
    for pod in release.pods:
        assert pod.running(), pod.logs()
        await poll(
            functools.partial(probe, pod, "/healthz"),
            lambda code: code == 200,
            what=f"{pod.name} /healthz on the probe port",
            deadline=30,
        )
    await poll(
        lambda: probe(first, "/readyz"),
        lambda code: code == 200,
        what=f"{first.name} (the leader) /readyz on the probe port",
        deadline=30,
    )
    # What the container ran as: the manifest's user, a read-only root, no capabilities.
    logs = first.logs()
    assert "Traceback" not in logs, logs


async def test_image_failover_by_stopping_the_leader_container(
    kube: Kube, mesh: Mesh, release: Release
):
    net = await mesh.network()
    w1 = await mesh.host("w1", net)
    await kube.create_node("w1", "10.244.1.0/24")
    first = await leader(kube, release)
    await converge(mesh, net, [rule("w1", 0, 1, "10.244.1.0/24", net, w1.nodes[net])], within=60)
    # The kubelet's stop: SIGTERM, SIGKILL after the grace period. A clean exit releases the
    # Lease, so the standby takes over at its next retry, not after the lease duration.
    code = await asyncio.to_thread(first.stop, release.grace)
    assert code == 0, first.logs()
    [standby] = [p for p in release.pods if p is not first]
    await poll(
        lambda: holder(kube, release),
        lambda h: h == standby.name,
        what=f"{standby.name} to hold the Lease after {first.name} stopped",
        deadline=20,
    )
    # The new leader serves: a node added now gets its rule, and it is ready.
    w2 = await mesh.host("w2", net)
    await kube.create_node("w2", "10.244.2.0/24")
    await converge(
        mesh,
        net,
        [
            rule("w1", 0, 1, "10.244.1.0/24", net, w1.nodes[net]),
            rule("w2", 0, 1, "10.244.2.0/24", net, w2.nodes[net]),
        ],
        within=30,
    )
    await poll(
        lambda: probe(standby, "/readyz"),
        lambda code: code == 200,
        what=f"{standby.name} /readyz after it took over",
        deadline=30,
    )


async def test_image_events_about_a_node_appear_with_the_release_outside_kube_system(
    kube: Kube, mesh: Mesh, release: Release
):
    assert release.namespace != "kube-system"
    net = await mesh.network()
    await mesh.host("w1", net)
    created = await kube.create_node("w1", "10.244.1.0/24")
    await leader(kube, release)

    async def events() -> list[dict[str, Any]]:
        # Where `kubectl describe node` looks: core/v1 Events of every namespace.
        uid = created["metadata"]["uid"]
        selector = f"involvedObject.kind=Node,involvedObject.name=w1,involvedObject.uid={uid}"
        listing = await kube.call("GET", f"/api/v1/events?fieldSelector={quote(selector)}")
        return list(listing["items"])

    found = await poll(
        events,
        lambda items: any(e.get("reportingComponent") == "kaput-not.io/kaput-not" for e in items),
        what="an Event from kaput-not about node w1, in any namespace",
        deadline=30,
    )
    assert all(e["metadata"]["namespace"] != "kube-system" for e in found)


def test_image_holds_no_shell_pip_compiler_or_stand_ins(image: str):
    """What the image carries: the program and Python, nothing to install or run other code
    with. `kaput-not demo` says in one line that the demo is not in the image."""
    listing = subprocess.run(
        [
            *podman_command(),
            "run",
            "--rm",
            "--pull=never",
            *ulimits(),
            "--entrypoint=/usr/bin/python3",
            image,
            "-c",
            "import os, json\n"
            "print(json.dumps(sorted(os.path.join(d, f) for d, _, fs in os.walk('/')"
            " if not d.startswith(('/proc', '/sys', '/dev')) for f in fs)))",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    files = set(json.loads(listing.stdout))
    names = {path.rsplit("/", 1)[-1] for path in files}
    assert "/opt/venv/bin/kaput-not" in files
    assert not {"sh", "bash", "dash", "busybox", "apt", "apt-get", "dpkg", "pip", "pip3"} & names
    assert not {"gcc", "cc", "tar", "perl", "openssl"} & names
    assert not [f for f in files if "/site-packages/pip/" in f or "/site-packages/setuptools/" in f]
    assert not [f for f in files if "/kaput_not_standins/" in f]
    assert not [f for f in files if f.startswith(("/usr/share/doc/", "/usr/share/man/"))]
    assert not [f for f in files if f.startswith("/usr/share/locale/")]
    demo = subprocess.run(
        [*podman_command(), "run", "--rm", "--pull=never", *ulimits(), image, "demo"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert demo.returncode == 2
    assert demo.stdout == ""
    [line] = demo.stderr.splitlines()
    assert line.startswith("kaput-not demo:"), line
    assert "leaves out" in line, line
