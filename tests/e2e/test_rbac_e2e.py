"""The Helm chart against a real API server: every object it renders is accepted (server-side
dry run), and its RBAC is exactly enough for `kaput-not run`, proven with a token of the
chart's own ServiceAccount: the controller lists and watches nodes, holds the Lease and writes
rules, and the same token is refused for anything else we tried. The release namespace is the
README's `kaput-not`, not kube-system: Events about Nodes appear on the Node all the same (they
go to `default`, where the chart grants them)."""

from __future__ import annotations

import base64
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import pytest
import yaml  # type: ignore[import-untyped,unused-ignore]

from tests.contract.seeding import poll
from tests.peers import peer, skip_module_without_peers

from .conftest import Mesh, StartController
from .controlplane import ControlPlane, Kube

skip_module_without_peers("kube-apiserver", "etcd", "netmaker", "helm")
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "kaput-not"
RELEASE = "kaput-not"
NAMESPACE = "kaput-not"
DEFAULT = "default"  # where Events about Nodes go, and the chart grants creating them
RBAC_KINDS = ("ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding")


def render(
    helm: str, directory: Path, *values: str, release: str = RELEASE
) -> list[dict[str, Any]]:
    """`helm template` of the chart, with helm's own state kept in `directory`."""
    env = {
        **os.environ,
        "HELM_CACHE_HOME": str(directory / "cache"),
        "HELM_CONFIG_HOME": str(directory / "config"),
        "HELM_DATA_HOME": str(directory / "data"),
    }
    args = [helm, "template", release, str(CHART), "--namespace", NAMESPACE]
    for value in values:
        args += ["--set", value]
    done = subprocess.run(args, capture_output=True, text=True, env=env, check=False)
    assert done.returncode == 0, f"helm template failed: {done.stderr.strip()}"
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


async def collection(kube: Kube, obj: dict[str, Any]) -> str:
    """The collection path of an object's kind, found through the server's discovery."""
    api_version, kind = obj["apiVersion"], obj["kind"]
    group = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
    discovery = await kube.call("GET", group)
    [resource] = [r for r in discovery["resources"] if r["kind"] == kind and "/" not in r["name"]]
    if resource["namespaced"]:
        namespace = obj["metadata"].get("namespace") or NAMESPACE
        return f"{group}/namespaces/{namespace}/{resource['name']}"
    return f"{group}/{resource['name']}"


def only(objects: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    [obj] = [o for o in objects if o["kind"] == kind]
    return obj


@pytest.fixture
def helm() -> str:
    return peer("helm")


@dataclass
class Installed:
    """The chart's RBAC objects created for real, and the controller's settings from it."""

    objects: list[dict[str, Any]]
    token: str
    settings: dict[str, str | None]  # `kaput-not run`'s environment, as the pod gets it


async def install_rbac(
    kube: Kube,
    control_plane: ControlPlane,
    tmp_path: Path,
    objects: list[dict[str, Any]],
) -> Installed:
    """Create the chart's RBAC objects, mint a token of its ServiceAccount, and configure the
    controller as the chart does: its ConfigMap, its Secret as a file, that token."""
    await kube.ensure_namespace(NAMESPACE)
    for obj in objects:
        if obj["kind"] in RBAC_KINDS:
            await kube.call("POST", await collection(kube, obj), body=obj, expect=(201,))
    account = only(objects, "ServiceAccount")["metadata"]["name"]
    minted = await kube.call(
        "POST",
        f"/api/v1/namespaces/{NAMESPACE}/serviceaccounts/{account}/token",
        body={
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {"expirationSeconds": 3600},
        },
        expect=(201,),
    )
    token = minted["status"]["token"]
    kubeconfig = control_plane.write_kubeconfig(tmp_path / "sa.kubeconfig", user={"token": token})
    settings: dict[str, str | None] = dict(only(objects, "ConfigMap")["data"])
    assert settings["LEADER_ELECTION_ENABLED"] == "true"
    assert settings["LEADER_ELECTION_NAMESPACE"] == NAMESPACE
    del settings["METRICS_ADDRESS"]  # ":8080" would listen on every interface: keep loopback
    password_file = tmp_path / "password"
    password_file.write_bytes(base64.b64decode(only(objects, "Secret")["data"]["password"]))
    settings.update(
        {
            "NETMAKER_PASSWORD": None,
            "NETMAKER_PASSWORD_FILE": str(password_file),
            "KUBECONFIG": str(kubeconfig),
            "POD_NAMESPACE": NAMESPACE,
            # With the chart's 30 s, a node whose host joined Netmaker after the last list
            # waits up to one TTL for its rule; these tests are not about that latency.
            "CACHE_TTL": "1s",
        }
    )
    return Installed(objects, token, settings)


async def test_the_chart_is_accepted_and_its_rbac_is_exactly_enough(
    kube: Kube,
    mesh: Mesh,
    controllers: StartController,
    control_plane: ControlPlane,
    helm: str,
    tmp_path: Path,
):
    password = mesh.password
    objects = render(
        helm, tmp_path, f"netmaker.apiUrl={mesh.server.url}", f"netmaker.password={password}"
    )
    kinds = sorted(o["kind"] for o in objects)
    assert set(RBAC_KINDS) <= set(kinds), kinds
    await kube.ensure_namespace(NAMESPACE)

    # (a) Every rendered object passes the real server's validation and admission.
    for obj in objects:
        path = await collection(kube, obj)
        accepted = await kube.call("POST", f"{path}?dryRun=All", body=obj, expect=(200, 201))
        assert accepted["metadata"]["name"] == obj["metadata"]["name"]

    # (b) The RBAC objects for real, then a token of the chart's ServiceAccount.
    installed = await install_rbac(kube, control_plane, tmp_path, objects)
    token, settings = installed.token, installed.settings
    secret = only(objects, "Secret")
    net = await mesh.network()
    host = await mesh.host("rbac-w1", net)
    await kube.create_node("rbac-w1", "10.244.90.0/24")
    pod = "kaput-not-rbac-0"
    controller = controllers(pod, **settings)
    await controller.ready()
    lease = str(settings["LEADER_ELECTION_ID"])
    # Ready may mean "standby" for the moment between the first node list and the Lease taken.
    await poll(
        lambda: kube.holder(NAMESPACE, lease),
        lambda holder: holder == pod,
        what="the chart's replica holding the Lease",
        deadline=20,
    )
    expected = [("rbac-w1 pods (1/1)", "10.244.90.0/24", {host.nodes[net]: 500})]
    await poll(
        lambda: mesh.ours(net),
        lambda rules: sorted((r["name"], r["range"], r["nodes"]) for r in rules) == expected,
        what="the rule from the full sync of the controller running on the token",
        deadline=20,
    )
    # A node created now reaches the controller through its watch.
    second = await mesh.host("rbac-w2", net)
    await kube.create_node("rbac-w2", "10.244.91.0/24")
    expected.append(("rbac-w2 pods (1/1)", "10.244.91.0/24", {second.nodes[net]: 500}))
    await poll(
        lambda: mesh.ours(net),
        lambda rules: sorted((r["name"], r["range"], r["nodes"]) for r in rules) == expected,
        what="the rule of a node the controller saw through its watch",
        deadline=20,
    )
    # SIGTERM releases the Lease: an update the Role must allow.
    controller.process.terminate()
    assert controller.process.wait(10) == 0
    assert await kube.holder(NAMESPACE, lease) == ""
    assert "forbidden" not in controller.process.log.read_text().lower()

    # The same token, used directly: what the controller needs works, nothing else does.
    auth = {"Authorization": f"Bearer {token}"}
    async with httpx2.AsyncClient(
        base_url=control_plane.url,
        verify=control_plane.pki.context(admin=False),
        timeout=30,
        trust_env=False,
        headers=auth,
    ) as http:
        assert (await http.get("/api/v1/nodes")).status_code == 200
        patched = await http.patch(
            "/api/v1/nodes/rbac-w1",
            content=b'{"metadata":{"labels":{"touched":"yes"}}}',
            headers={"Content-Type": "application/merge-patch+json"},
        )
        assert patched.status_code == 403, patched.text
        secret_name = secret["metadata"]["name"]
        read = await http.get(f"/api/v1/namespaces/{NAMESPACE}/secrets/{secret_name}")
        assert read.status_code == 403, read.text
        elsewhere = await http.get("/apis/coordination.k8s.io/v1/namespaces/kube-system/leases")
        assert elsewhere.status_code == 403, elsewhere.text
        # Events: the token may create them in `default` and nowhere else.
        for namespace, allowed in ((DEFAULT, True), (NAMESPACE, False), ("kube-system", False)):
            review = await http.post(
                "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
                json={
                    "apiVersion": "authorization.k8s.io/v1",
                    "kind": "SelfSubjectAccessReview",
                    "spec": {
                        "resourceAttributes": {
                            "namespace": namespace,
                            "verb": "create",
                            "group": "events.k8s.io",
                            "resource": "events",
                        }
                    },
                },
            )
            assert review.status_code == 201, review.text
            assert review.json()["status"]["allowed"] is allowed, namespace


async def described(kube: Kube, node: dict[str, Any]) -> list[dict[str, Any]]:
    """The Events `kubectl describe node` shows: core/v1 Events of every namespace whose
    involvedObject is this Node (kind, name and uid)."""
    meta = node["metadata"]
    selector = (
        f"involvedObject.kind=Node,involvedObject.name={meta['name']},"
        f"involvedObject.uid={meta['uid']}"
    )
    listed = await kube.call("GET", f"/api/v1/events?fieldSelector={selector}")
    return list(listed["items"])


async def test_node_events_appear_on_the_node_with_the_release_in_namespace_kaput_not(
    kube: Kube,
    mesh: Mesh,
    controllers: StartController,
    control_plane: ControlPlane,
    helm: str,
    tmp_path: Path,
):
    objects = render(
        helm,
        tmp_path,
        f"netmaker.apiUrl={mesh.server.url}",
        f"netmaker.password={mesh.password}",
        "leaderElection.leaseName=kaput-not-events-e2e",
        release="kn-events",
    )
    installed = await install_rbac(kube, control_plane, tmp_path, objects)
    net = await mesh.network()
    host = await mesh.host("ev-w1", net)
    served = await kube.create_node("ev-w1", "10.244.92.0/24")
    lonely = await kube.create_node("ev-lonely", "10.244.93.0/24")  # no Netmaker host
    controller = controllers("kn-events-0", **installed.settings)
    await controller.ready()
    await poll(
        lambda: mesh.ours(net),
        lambda rules: (
            [(r["name"], r["nodes"]) for r in rules]
            == [("ev-w1 pods (1/1)", {host.nodes[net]: 500})]
        ),
        what="the rule of node ev-w1",
        deadline=20,
    )

    written = await poll(
        lambda: described(kube, served),
        lambda found: any(e["reason"] == "EgressRulesWritten" for e in found),
        what="kubectl describe node ev-w1 showing EgressRulesWritten",
        deadline=20,
    )
    warned = await poll(
        lambda: described(kube, lonely),
        lambda found: any(e["reason"] == "NoNetmakerHost" for e in found),
        what="kubectl describe node ev-lonely showing NoNetmakerHost",
        deadline=20,
    )
    for event in (*written, *warned):
        assert event["metadata"]["namespace"] == DEFAULT
        assert event["reportingComponent"] == "kaput-not.io/kaput-not"
    [warning] = [e for e in warned if e["reason"] == "NoNetmakerHost"]
    assert warning["type"] == "Warning"
    assert "no Netmaker host is named 'ev-lonely'" in warning["message"]
    log = controller.process.log.read_text()
    assert "Events are off" not in log
    assert "refused an Event" not in log


async def test_without_the_charts_lease_rbac_readiness_fails_with_the_403(
    kube: Kube,
    mesh: Mesh,
    controllers: StartController,
    control_plane: ControlPlane,
    helm: str,
    tmp_path: Path,
):
    """Issue 20: without Lease permissions every replica said `ok: standby` on /readyz forever
    (`rollout status` passed) and nothing ever wrote. Now /readyz fails with the API's 403,
    and `kaput_not_blocked{reason="lease-forbidden"}` is 1 for the alert."""
    release = "kaput-not-no-lease"  # its own RBAC objects beside the test above's
    objects = render(
        helm,
        tmp_path,
        f"netmaker.apiUrl={mesh.server.url}",
        f"netmaker.password={mesh.password}",
        release=release,
    )
    # The release namespace's Role grants the Lease only (Events are granted in `default`):
    # its rule about leases goes, and the Events Role stays.
    for role in (o for o in objects if o["kind"] == "Role"):
        if role["metadata"].get("namespace", NAMESPACE) == NAMESPACE:
            role["rules"] = [r for r in role["rules"] if "leases" not in r["resources"]]
    installed = await install_rbac(kube, control_plane, tmp_path, objects)
    settings = installed.settings
    controller = controllers("kaput-not-no-lease-0", **settings)
    answer = await poll(
        lambda: controller.get("/readyz"),
        lambda r: r is not None and "403" in r.text,
        what="/readyz to name the 403 on the Lease",
        deadline=30,
    )
    assert answer is not None
    assert answer.status_code == 503, answer.text
    lease = f"{NAMESPACE}/{settings['LEADER_ELECTION_ID']}"
    assert answer.text.startswith(f"not ok: standby that can never lead: reading the lease {lease}")
    assert "Forbidden" in answer.text
    assert (await controller.fetch("/healthz")).status_code == 200
    metrics = await controller.metrics()
    assert metrics['kaput_not_blocked{reason="lease-forbidden"}'] == 1.0
    assert metrics['kaput_not_blocked{reason="nodes-forbidden"}'] == 0.0
