"""The Helm chart, rendered by a real helm and read back as YAML.

What is checked: every variable `kaput-not run` reads is reachable from the values and the
rendered settings load with `kaput_not.config`; RBAC is exactly nodes get/list/watch plus the
Lease (and Events when enabled); the pod is locked down; probes hit the health server; config
and password changes roll the pods; bad values fail with a clear message; values.schema.json
declares every value, refuses unknown keys and agrees with the program on ranges; the
PrometheusRule's alerts use metrics the program exports; NOTES.txt says how to check an
install. Tests that need helm skip when none is found; the rest (values documented, full-values
complete, schema complete) always run.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped,unused-ignore]
from lightkube import codecs

from kaput_not import config
from kaput_not.controller.metrics import Metrics

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / "charts" / "kaput-not"
FULL_VALUES = CHART / "ci" / "full-values.yaml"
SCHEMA = CHART / "values.schema.json"
HELM_VERSION = "v3.22.0"
NAMESPACE = "kaput"
RELEASE = "kn"
PASSWORD = "correct-horse-battery"
REQUIRED = (
    "--set",
    "netmaker.apiUrl=https://api.netmaker.example.com",
    "--set",
    f"netmaker.password={PASSWORD}",
)
FULL = ("-f", str(FULL_VALUES))
# Values whose content is free-form Kubernetes (or has free-form children): documented and set
# as one value.
OPAQUE = {"resources", "podSecurityContext", "securityContext", "strategy"}
VARIABLE_NAMES = {name for name, _, _ in config.VARIABLES}
# Keys the schema accepts beyond values.yaml: what a parent chart passes down, and the other
# timing fields of a Kubernetes probe.
PROBE_TIMING = {"initialDelaySeconds", "successThreshold", "terminationGracePeriodSeconds"}
SCHEMA_EXTRA = {
    "": {"global", "enabled"},
    "startupProbe": PROBE_TIMING,
    "livenessProbe": PROBE_TIMING,
    "readinessProbe": PROBE_TIMING,
}
# Kubernetes objects and label maps passed through as given: any key.
FREE_FORM = (
    *sorted(OPAQUE),
    "affinity",
    "nodeSelector",
    "podAnnotations",
    "podLabels",
    "labels",
    "annotations",
    "metrics.service.annotations",
    "metrics.serviceMonitor.labels",
    "serviceAccount.annotations",
    "prometheusRule.labels",
    "prometheusRule.alertLabels",
)
ALERTS = (
    "KaputNotSyncFailing",
    "KaputNotWritesHeldBack",
    "KaputNotNoLeader",
    "KaputNotBlocked",
    "KaputNotNodesSkipped",
)
DIGEST = "sha256:" + "5e" * 32
#: The image tag when image.tag is empty (a release tag sets it: scripts/version).
APP_VERSION = str(yaml.safe_load((CHART / "Chart.yaml").read_text())["appVersion"])

Objects = list[dict[str, Any]]


# ------------------------------------------------------------------ helpers


def _helm_binary() -> str | None:
    if os.environ.get("HELM"):
        return os.environ["HELM"]
    peers = Path(os.environ.get("KAPUT_NOT_PEERS") or Path.home() / ".cache/kaput-not/peers")
    peer = peers / f"helm-{HELM_VERSION}" / "helm"
    if peer.is_file() and os.access(peer, os.X_OK):
        return str(peer)
    return shutil.which("helm")


@pytest.fixture(scope="module")
def helm() -> str:
    binary = _helm_binary()
    if binary is None:
        pytest.skip(
            f"no helm binary (HELM, ~/.cache/kaput-not/peers/helm-{HELM_VERSION}/helm, PATH)"
        )
    return binary


def _template(helm: str, *args: str, chart: Path = CHART) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [helm, "template", RELEASE, str(chart), "--namespace", NAMESPACE, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def render(helm: str, *args: str) -> Objects:
    done = _template(helm, *args)
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def render_error(helm: str, *args: str) -> str:
    done = _template(helm, *args)
    assert done.returncode != 0, "rendering should have failed"
    return done.stderr


def lint(helm: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [helm, "lint", "--strict", str(CHART), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def render_notes(helm: str, tmp_path: Path, *args: str) -> str:
    """NOTES.txt as `helm install` would print it."""
    chart = tmp_path / "kaput-not"
    shutil.copytree(CHART, chart)
    # helm template skips NOTES.txt; a ConfigMap that renders it with `tpl` shows its text.
    shutil.copy(chart / "templates" / "NOTES.txt", chart / "notes.txt")
    (chart / "templates" / "notes-view.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: notes\ndata:\n"
        '  notes: {{ tpl (.Files.Get "notes.txt") . | toJson }}\n'
    )
    done = _template(helm, *args, "--show-only", "templates/notes-view.yaml", chart=chart)
    assert done.returncode == 0, done.stderr
    notes: str = yaml.safe_load(done.stdout)["data"]["notes"]
    return notes


def kinds(objects: Objects, kind: str) -> Objects:
    return [o for o in objects if o["kind"] == kind]


def one(objects: Objects, kind: str) -> dict[str, Any]:
    found = kinds(objects, kind)
    assert len(found) == 1, f"{len(found)} objects of kind {kind}"
    return found[0]


def pod_spec(objects: Objects) -> dict[str, Any]:
    spec: dict[str, Any] = one(objects, "Deployment")["spec"]["template"]["spec"]
    return spec


def container(objects: Objects) -> dict[str, Any]:
    (only,) = pod_spec(objects)["containers"]
    assert isinstance(only, dict)
    return only


def environment(objects: Objects) -> dict[str, dict[str, Any]]:
    """Every variable the container gets: envFrom ConfigMaps first, `env` entries win."""
    c = container(objects)
    maps = {m["metadata"]["name"]: m.get("data") or {} for m in kinds(objects, "ConfigMap")}
    env: dict[str, dict[str, Any]] = {}
    for source in c.get("envFrom", []):
        assert set(source) == {"configMapRef"}, f"unexpected envFrom {source}"
        for name, value in maps[source["configMapRef"]["name"]].items():
            env[name] = {"value": value}
    for entry in c.get("env", []):
        env[entry["name"]] = entry
    return env


def mounted_secret(objects: Objects, path: str) -> tuple[str, str]:
    """(Secret name, key) of the file at `path` in the container."""
    c, spec = container(objects), pod_spec(objects)
    for mount in c["volumeMounts"]:
        prefix = mount["mountPath"].rstrip("/") + "/"
        if path.startswith(prefix):
            assert mount.get("readOnly") is True
            volume = next(v for v in spec["volumes"] if v["name"] == mount["name"])
            relative = path[len(prefix) :]
            item = next(i for i in volume["secret"]["items"] if i["path"] == relative)
            return volume["secret"]["secretName"], item["key"]
    raise AssertionError(f"{path} is not in a mounted volume")


def load_settings(objects: Objects, tmp_path: Path) -> config.Settings:
    """The rendered environment through kaput_not.config.load, as the pod would see it."""
    env: dict[str, str] = {}
    for name, entry in environment(objects).items():
        if "value" in entry:
            env[name] = str(entry["value"])
        else:
            field = entry["valueFrom"]["fieldRef"]["fieldPath"]
            env[name] = {"metadata.name": "kn-kaput-not-7d9c-x2", "metadata.namespace": NAMESPACE}[
                field
            ]
    password = tmp_path / "password"
    password.write_text(PASSWORD)
    env["NETMAKER_PASSWORD_FILE"] = str(password)
    if "NETMAKER_CA_FILE" in env:
        ca = tmp_path / "ca.pem"
        ca.write_text("-----BEGIN CERTIFICATE-----\n")
        env["NETMAKER_CA_FILE"] = str(ca)
    namespace_file = tmp_path / "namespace"
    namespace_file.write_text(NAMESPACE)
    return config.load(env, namespace_file=namespace_file, hostname=lambda: "unused")


def leaf_paths(values: Mapping[str, Any], prefix: str = "") -> Iterator[str]:
    for key, value in values.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping) and value and path not in OPAQUE:
            yield from leaf_paths(value, f"{path}.")
        else:
            yield path


def has_path(values: Mapping[str, Any], path: str) -> bool:
    node: Any = values
    for key in path.split("."):
        if not isinstance(node, Mapping) or key not in node:
            return False
        node = node[key]
    return True


def mapping_paths(values: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(path, mapping) of every non-empty mapping of the chart's own, the root ("") first."""
    yield prefix.rstrip("."), values
    for key, value in values.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping) and value and path not in OPAQUE:
            yield from mapping_paths(value, f"{path}.")


def _resolved(schema: Mapping[str, Any], node: Mapping[str, Any]) -> Mapping[str, Any]:
    while "$ref" in node:
        prefix = "#/definitions/"
        assert node["$ref"].startswith(prefix), node["$ref"]
        node = schema["definitions"][node["$ref"][len(prefix) :]]
    return node


def schema_at(schema: Mapping[str, Any], path: str) -> Mapping[str, Any] | None:
    """The schema of the value at `path` ("" for the root), $refs followed; None if undeclared."""
    node = _resolved(schema, schema)
    for key in path.split(".") if path else []:
        properties = node.get("properties", {})
        if key not in properties:
            return None
        node = _resolved(schema, properties[key])
    return node


@pytest.fixture(scope="module")
def default(helm: str) -> Objects:
    return render(helm, *REQUIRED)


@pytest.fixture(scope="module")
def full(helm: str) -> Objects:
    return render(helm, *FULL)


# ------------------------------------------------------------------ without helm


def test_chart_version_and_app_version_are_one_version():
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["apiVersion"] == "v2"
    assert chart["name"] == "kaput-not"
    assert str(chart["appVersion"]) == str(chart["version"])


def test_every_value_is_documented_and_set_by_the_full_values():
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    leaves = set(leaf_paths(values))
    readme = (CHART / "README.md").read_text()
    documented = set(re.findall(r"^\| `([A-Za-z0-9_.]+)` \|", readme, flags=re.MULTILINE))
    assert documented == leaves
    full_values = yaml.safe_load(FULL_VALUES.read_text())
    assert [p for p in sorted(leaves) if not has_path(full_values, p)] == []
    assert [
        p for p in sorted(leaf_paths(full_values)) if not has_path(values, p.split(".")[0])
    ] == []


def test_schema_declares_every_value_and_closes_the_charts_own_objects():
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    schema = json.loads(SCHEMA.read_text())
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    assert [p for p in leaf_paths(values) if schema_at(schema, p) is None] == []
    for path, mapping in mapping_paths(values):
        node = schema_at(schema, path)
        assert node is not None, path
        # Closed, and declaring exactly the keys of values.yaml (plus the few documented extras).
        assert node.get("additionalProperties") is False, path
        assert set(node["properties"]) == set(mapping) | SCHEMA_EXTRA.get(path, set()), path
    for path in FREE_FORM:
        node = schema_at(schema, path)
        assert node is not None, path
        assert node.get("type") == "object", path
        assert node.get("additionalProperties") is not False, path


@pytest.mark.parametrize("which", ["default", "full"])
def test_objects_have_only_fields_kubernetes_knows(which, request):
    # lightkube's models (the Kubernetes OpenAPI, typed) drop what they do not know, so a typo
    # such as readOnlyRootFileSystem does not survive the round trip.
    for obj in request.getfixturevalue(which):
        if obj["apiVersion"].startswith("monitoring.coreos.com/"):
            continue  # a CRD lightkube has no model for
        assert codecs.from_dict(obj).to_dict() == obj, obj["kind"]


# ------------------------------------------------------------------ environment


def test_every_run_variable_is_set_from_the_full_values(full):
    env = environment(full)
    expected = VARIABLE_NAMES - {"NETMAKER_PASSWORD"}
    assert sorted(expected - set(env)) == []
    # Nothing the program does not read, except what full-values adds through extraEnv.
    assert sorted(set(env) - VARIABLE_NAMES) == ["PYTHONFAULTHANDLER"]
    assert "NETMAKER_PASSWORD" not in env
    assert env["POD_NAME"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert env["POD_NAMESPACE"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
    password_file = env["NETMAKER_PASSWORD_FILE"]["value"]
    assert mounted_secret(full, password_file) == ("netmaker-credentials", "netmaker-password")
    assert mounted_secret(full, env["NETMAKER_CA_FILE"]["value"]) == ("netmaker-ca", "bundle.pem")


def test_the_host_annotation_limits_and_pod_ranges_reach_the_program(full, tmp_path):
    env = environment(full)
    assert env["HOST_ANNOTATION_ENABLED"]["value"] == "true"
    assert env["HOST_ANNOTATION_HOSTS"]["value"] == r"w[0-9]+\.nodes\.example\.com"
    assert env["CLUSTER_POD_CIDRS"]["value"] == "10.244.0.0/16,fd00:10:244::/56"
    settings = load_settings(full, tmp_path)
    assert settings.kubernetes.host_annotation_hosts is not None
    assert settings.kubernetes.host_annotation_hosts.fullmatch("w3.nodes.example.com")
    assert settings.kubernetes.cluster_pod_cidrs == ("10.244.0.0/16", "fd00:10:244::/56")
    # Issue 20: config.nodeSelector reaches the program as NODE_SELECTOR, checked there.
    assert (
        settings.kubernetes.node_selector
        == "!node-role.kubernetes.io/control-plane,kubernetes.io/os in (linux)"
    )


def test_default_values_set_the_password_file_and_nothing_secret(default):
    env = environment(default)
    assert "NETMAKER_PASSWORD" not in env
    assert "NETMAKER_CA_FILE" not in env
    assert "KUBECONFIG" not in env
    secret = one(default, "Secret")
    name, key = mounted_secret(default, env["NETMAKER_PASSWORD_FILE"]["value"])
    assert (name, key) == (secret["metadata"]["name"], "password")
    assert set(secret["data"]) == {"password"}
    for obj in default:
        if obj["kind"] != "Secret":
            assert PASSWORD not in yaml.safe_dump(obj)


def test_default_values_give_the_program_defaults(default, tmp_path):
    rendered = load_settings(default, tmp_path)
    namespace_file = tmp_path / "namespace"
    minimal = config.load(
        {
            "NETMAKER_API_URL": "https://api.netmaker.example.com",
            "NETMAKER_USERNAME": "kaput-not",
            "NETMAKER_PASSWORD": PASSWORD,
            "POD_NAME": "kn-kaput-not-7d9c-x2",
            "POD_NAMESPACE": NAMESPACE,
        },
        namespace_file=namespace_file,
        hostname=lambda: "unused",
    )
    assert rendered == minimal
    assert rendered.leader_election.enabled
    assert rendered.leader_election.namespace == NAMESPACE


def test_full_values_load_as_set(full, tmp_path):
    s = load_settings(full, tmp_path)
    assert s.netmaker.username == "kaput-not-ci"
    assert s.kubernetes.cluster_name == "prod-eu-1"
    assert s.kubernetes.kubeconfig == "/etc/kaput-not/kubeconfig/config"
    assert s.netmaker.insecure_skip_tls_verify is True
    assert (s.netmaker.timeout_seconds, s.netmaker.concurrency) == (15.0, 6)
    assert (
        s.netmaker.cache_ttl_seconds,
        s.reconcile.resync_period_seconds,
        s.reconcile.workers,
    ) == (45.0, 5400.0, 8)
    # Whole numbers from a values file are floats to helm; they must not become "1e+06".
    assert (s.reconcile.egress_metric, s.safety.max_delete_floor) == (65000, 1_000_000)
    assert (s.safety.max_delete_fraction, s.safety.allow_mass_delete, s.safety.dry_run) == (
        0.25,
        True,
        True,
    )
    assert (s.output.log_level, s.output.log_format, s.output.metrics_address) == (
        "DEBUG",
        "text",
        ":9090",
    )
    le = s.leader_election
    assert (le.name, le.namespace, le.identity) == (
        "kaput-not-go-id",
        NAMESPACE,
        "kn-kaput-not-7d9c-x2",
    )
    assert (le.lease_seconds, le.renew_deadline_seconds, le.retry_period_seconds) == (30, 20, 4)


# ------------------------------------------------------------------ RBAC


def _rules(obj: dict[str, Any]) -> list[tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]]:
    return [
        (tuple(sorted(r["apiGroups"])), tuple(sorted(r["resources"])), tuple(sorted(r["verbs"])))
        for r in obj["rules"]
    ]


LEASES = (("coordination.k8s.io",), ("leases",), ("create", "get", "update"))
EVENTS = (("", "events.k8s.io"), ("events",), ("create", "patch"))


@pytest.mark.parametrize("which", ["default", "full"])
def test_cluster_role_only_reads_nodes(which, request):
    objects = request.getfixturevalue(which)
    assert _rules(one(objects, "ClusterRole")) == [(("",), ("nodes",), ("get", "list", "watch"))]
    binding = one(objects, "ClusterRoleBinding")
    assert binding["roleRef"]["name"] == one(objects, "ClusterRole")["metadata"]["name"]
    account = one(objects, "ServiceAccount")["metadata"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": account["name"], "namespace": NAMESPACE}
    ]
    assert pod_spec(objects)["serviceAccountName"] == account["name"]


def _roles(objects: Objects) -> dict[str, dict[str, Any]]:
    """The Roles by namespace (each namespace has at most one)."""
    roles = kinds(objects, "Role")
    by_namespace = {r["metadata"]["namespace"]: r for r in roles}
    assert len(by_namespace) == len(roles)
    return by_namespace


def _bound(objects: Objects, role: dict[str, Any]) -> None:
    """The Role's RoleBinding: same namespace, the chart's ServiceAccount in the release's."""
    meta = role["metadata"]
    [binding] = [
        b
        for b in kinds(objects, "RoleBinding")
        if b["metadata"]["namespace"] == meta["namespace"] and b["roleRef"]["name"] == meta["name"]
    ]
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": meta["name"],
    }
    account = one(objects, "ServiceAccount")["metadata"]["name"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": account, "namespace": NAMESPACE}
    ]


def test_role_grants_the_lease_in_the_release_namespace(default):
    roles = _roles(default)
    assert _rules(roles[NAMESPACE]) == [LEASES]
    _bound(default, roles[NAMESPACE])


def test_node_events_are_granted_in_default_and_only_there(default):
    roles = _roles(default)
    assert set(roles) == {NAMESPACE, "default"}
    assert _rules(roles["default"]) == [EVENTS]
    assert roles["default"]["metadata"]["name"] == f"{RELEASE}-kaput-not-events-{NAMESPACE}"
    _bound(default, roles["default"])
    assert len(kinds(default, "RoleBinding")) == 2


def test_role_grants_events_only_when_enabled(full, helm):
    assert {ns: _rules(r) for ns, r in _roles(full).items()} == {
        NAMESPACE: [LEASES],
        "default": [EVENTS],
    }
    events_only = render(
        helm,
        *REQUIRED,
        "--set",
        "events.enabled=true",
        "--set",
        "leaderElection.enabled=false",
        "--set",
        "replicaCount=1",
    )
    assert {ns: _rules(r) for ns, r in _roles(events_only).items()} == {"default": [EVENTS]}
    leases_only = render(helm, *REQUIRED, "--set", "events.enabled=false")
    assert {ns: _rules(r) for ns, r in _roles(leases_only).items()} == {NAMESPACE: [LEASES]}
    assert environment(leases_only)["EVENTS_ENABLED"] == {"value": "false"}
    neither = render(
        helm,
        *REQUIRED,
        "--set",
        "leaderElection.enabled=false",
        "--set",
        "replicaCount=1",
        "--set",
        "events.enabled=false",
    )
    assert kinds(neither, "Role") == kinds(neither, "RoleBinding") == []
    no_rbac = render(helm, *REQUIRED, "--set", "rbac.create=false")
    assert {o["kind"] for o in no_rbac} & {"Role", "RoleBinding", "ClusterRole"} == set()


# ------------------------------------------------------------------ pod


@pytest.mark.parametrize("which", ["default", "full"])
def test_security_context(which, request):
    objects = request.getfixturevalue(which)
    sc = container(objects)["securityContext"]
    assert sc["runAsNonRoot"] is True
    assert (sc["runAsUser"], sc["runAsGroup"]) == (65532, 65532)
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    pod = pod_spec(objects)["securityContext"]
    assert pod["runAsNonRoot"] is True
    assert pod["seccompProfile"] == {"type": "RuntimeDefault"}


@pytest.mark.parametrize(("which", "port"), [("default", 8080), ("full", 9090)])
def test_probes_hit_the_health_server(which, port, request):
    objects = request.getfixturevalue(which)
    c = container(objects)
    assert c["ports"] == [{"name": "metrics", "containerPort": port, "protocol": "TCP"}]
    assert environment(objects)["METRICS_ADDRESS"]["value"] == f":{port}"
    for probe, path in [
        ("livenessProbe", "/healthz"),
        ("startupProbe", "/healthz"),
        ("readinessProbe", "/readyz"),
    ]:
        assert c[probe]["httpGet"] == {"path": path, "port": "metrics"}, probe
    service = one(objects, "Service")["spec"]
    assert service["ports"][0]["port"] == port
    assert service["ports"][0]["targetPort"] == "metrics"


def test_default_pod(default):
    deployment = one(default, "Deployment")
    assert deployment["spec"]["replicas"] == 2
    spec = pod_spec(default)
    c = container(default)
    assert c["image"] == f"ghcr.io/bsure-analytics/kaput-not-py:{APP_VERSION}"
    assert c["resources"] == {
        "requests": {"cpu": "50m", "memory": "64Mi"},
        "limits": {"memory": "256Mi"},
    }
    assert "priorityClassName" not in spec
    assert spec["terminationGracePeriodSeconds"] == 30
    assert {(t["key"], t["effect"]) for t in spec["tolerations"]} == {
        ("node-role.kubernetes.io/control-plane", "NoSchedule"),
        ("node-role.kubernetes.io/master", "NoSchedule"),
    }
    (term,) = spec["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert term["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert term["podAffinityTerm"]["labelSelector"]["matchLabels"] == selector
    assert one(default, "PodDisruptionBudget")["spec"] == {
        "maxUnavailable": 1,
        "selector": {"matchLabels": selector},
    }
    assert kinds(default, "ServiceMonitor") == []


def test_priority_class_is_opt_in(helm, full):
    objects = render(helm, *REQUIRED, "--set", "priorityClassName=system-cluster-critical")
    assert pod_spec(objects)["priorityClassName"] == "system-cluster-critical"
    assert pod_spec(full)["priorityClassName"] == "kaput-not-critical"


@pytest.mark.parametrize(
    ("args", "image"),
    [
        ((), f"ghcr.io/bsure-analytics/kaput-not-py:{APP_VERSION}"),
        (("--set", "image.tag=0.2.0"), "ghcr.io/bsure-analytics/kaput-not-py:0.2.0"),
        (("--set", f"image.digest={DIGEST}"), f"ghcr.io/bsure-analytics/kaput-not-py@{DIGEST}"),
        (
            ("--set", "image.tag=0.2.0", "--set", f"image.digest={DIGEST}"),
            f"ghcr.io/bsure-analytics/kaput-not-py@{DIGEST}",
        ),
    ],
    ids=["appVersion", "tag", "digest", "digest-wins-over-tag"],
)
def test_image_reference(helm, args, image):
    assert container(render(helm, *REQUIRED, *args))["image"] == image


def test_full_values_pin_the_image_by_digest(full):
    digest = yaml.safe_load(FULL_VALUES.read_text())["image"]["digest"]
    assert container(full)["image"] == f"registry.example.com/mirror/kaput-not-py@{digest}"


def test_single_replica_has_no_disruption_budget(helm):
    objects = render(helm, *REQUIRED, "--set", "replicaCount=1")
    assert kinds(objects, "PodDisruptionBudget") == []


def test_service_monitor_when_enabled(full):
    monitor = one(full, "ServiceMonitor")
    assert monitor["metadata"]["namespace"] == "monitoring"
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}
    (endpoint,) = monitor["spec"]["endpoints"]
    assert (endpoint["port"], endpoint["path"]) == ("metrics", "/metrics")


# ------------------------------------------------------------------ rollouts and secrets


def _checksums(objects: Objects) -> tuple[str, str]:
    annotations = one(objects, "Deployment")["spec"]["template"]["metadata"]["annotations"]
    return annotations["checksum/config"], annotations["checksum/secret"]


def test_checksum_annotations_roll_pods_on_changes(helm, default, full):
    for objects in (default, full):
        for checksum in _checksums(objects):
            assert re.fullmatch(r"[0-9a-f]{64}", checksum)
    base_config, base_secret = _checksums(default)
    more_workers = render(helm, *REQUIRED, "--set", "config.workers=9")
    assert _checksums(more_workers) == (_checksums(more_workers)[0], base_secret)
    assert _checksums(more_workers)[0] != base_config
    new_password = render(helm, *REQUIRED, "--set", "netmaker.password=another-one")
    assert _checksums(new_password) == (base_config, _checksums(new_password)[1])
    assert _checksums(new_password)[1] != base_secret


def test_no_secret_with_an_existing_secret(helm):
    objects = render(
        helm,
        "--set",
        "netmaker.apiUrl=https://api.netmaker.example.com",
        "--set",
        "netmaker.existingSecret=managed-elsewhere",
    )
    assert kinds(objects, "Secret") == []
    env = environment(objects)
    path = env["NETMAKER_PASSWORD_FILE"]["value"]
    assert mounted_secret(objects, path) == ("managed-elsewhere", "password")


def test_missing_password_fails_with_a_clear_message(helm):
    message = render_error(helm, "--set", "netmaker.apiUrl=https://api.netmaker.example.com")
    assert "netmaker.password is required" in message
    assert "netmaker.existingSecret" in message


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--set", "netmaker.password=x"), "netmaker.apiUrl is required"),
        ((*REQUIRED, "--set", "netmaker.existingSecret=s"), "are both set"),
        ((*REQUIRED, "--set", "leaderElection.enabled=false"), "needs leaderElection.enabled"),
    ],
)
def test_unsafe_values_fail(helm, args, message):
    assert message in render_error(helm, *args)


def test_go_chart_values_keep_working(helm, tmp_path):
    go_values = tmp_path / "go-values.yaml"
    go_values.write_text(
        yaml.safe_dump(
            {
                "netmaker": {
                    "apiUrl": "https://api.netmaker.example.com",
                    "username": "kaput-not",
                    "password": PASSWORD,
                },
                "clusterName": "blue",
                "leaderElection": {"enabled": True, "id": "kaput-not-go"},
                "podSecurityContext": {"runAsNonRoot": True},
                "strategy": {"type": "Recreate"},
                "topologySpreadConstraints": [
                    {
                        "maxSkew": 1,
                        "topologyKey": "kubernetes.io/hostname",
                        "whenUnsatisfiable": "ScheduleAnyway",
                    },
                ],
                "labels": {"team": "net"},
                "annotations": {"owner": "net"},
                # The rest of the Go chart's keys, so the schema is seen to take them all.
                "affinity": {},
                "fullnameOverride": "",
                "nameOverride": "",
                "image": {"pullPolicy": "IfNotPresent", "repository": "example/kn", "tag": ""},
                "imagePullSecrets": [],
                "nodeSelector": {},
                "priorityClassName": "system-cluster-critical",
                "replicaCount": 2,
                "resources": {"limits": {"cpu": "200m", "memory": "128Mi"}},
                "securityContext": {"readOnlyRootFilesystem": True},
                "serviceAccount": {"annotations": {}, "create": True, "name": ""},
                "tolerations": [
                    {
                        "effect": "NoSchedule",
                        "key": "node-role.kubernetes.io/control-plane",
                        "operator": "Exists",
                    }
                ],
            }
        )
    )
    objects = render(helm, "-f", str(go_values))
    assert pod_spec(objects)["priorityClassName"] == "system-cluster-critical"
    env = environment(objects)
    assert env["LEADER_ELECTION_ID"]["value"] == "kaput-not-go"
    assert env["K8S_CLUSTER_NAME"]["value"] == "blue"
    assert one(objects, "Deployment")["spec"]["strategy"] == {"type": "Recreate"}
    (spread,) = pod_spec(objects)["topologySpreadConstraints"]
    assert (
        spread["labelSelector"]["matchLabels"]
        == (one(objects, "Deployment")["spec"]["selector"]["matchLabels"])
    )
    for obj in objects:
        assert obj["metadata"]["labels"]["team"] == "net", obj["kind"]
        assert obj["metadata"]["annotations"]["owner"] == "net", obj["kind"]
    # Maps merge with the chart's defaults: the container stays locked down.
    assert container(objects)["securityContext"]["readOnlyRootFilesystem"] is True


# ------------------------------------------------------------------ switching from the Go chart

GO_IMAGE = "ghcr.io/bsure-analytics/kaput-not"
PLACEHOLDER = "REPLACE-WITH-ACTUAL-PASSWORD"
#: The values.yaml of the Go chart (0.3.3-SNAPSHOT) as data: the older values set a release
#: switched from the Go chart carries, with none of the keys this chart added.
GO_CHART_VALUES: dict[str, Any] = {
    "affinity": {},
    "annotations": {},
    "clusterName": "",
    "fullnameOverride": "",
    "image": {"pullPolicy": "IfNotPresent", "repository": GO_IMAGE, "tag": ""},
    "imagePullSecrets": [],
    "labels": {},
    "leaderElection": {"enabled": True, "id": "kaput-not"},
    "nameOverride": "",
    "netmaker": {
        "apiUrl": "https://api.netmaker.example.com",
        "password": PLACEHOLDER,
        "username": "kaput-not",
    },
    "nodeSelector": {},
    "podSecurityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
    "priorityClassName": "system-cluster-critical",
    "replicaCount": 2,
    "resources": {
        "limits": {"cpu": "200m", "memory": "128Mi"},
        "requests": {"cpu": "100m", "memory": "64Mi"},
    },
    "securityContext": {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "readOnlyRootFilesystem": True,
    },
    "serviceAccount": {"annotations": {}, "create": True, "name": ""},
    "strategy": {"rollingUpdate": {"maxSurge": 1, "maxUnavailable": 1}, "type": "RollingUpdate"},
    "tolerations": [
        {
            "effect": "NoSchedule",
            "key": "node-role.kubernetes.io/control-plane",
            "operator": "Exists",
        }
    ],
    "topologySpreadConstraints": [
        {
            "maxSkew": 1,
            "topologyKey": "kubernetes.io/hostname",
            "whenUnsatisfiable": "ScheduleAnyway",
        }
    ],
}


def go_values_file(tmp_path: Path) -> Path:
    path = tmp_path / "go-values.yaml"
    path.write_text(yaml.safe_dump(GO_CHART_VALUES))
    return path


def test_the_defaults_templates_fall_back_on_are_values_yaml():
    defaults = yaml.safe_load((CHART / "files" / "defaults.yaml").read_text())
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert defaults == values, (
        "charts/kaput-not/files/defaults.yaml must hold values.yaml's data: regenerate it"
    )


def test_reuse_values_from_an_older_values_set_renders_without_nil_pointers(helm, tmp_path):
    # `helm upgrade --reuse-values` renders the new templates with the previous chart's values:
    # a copy of this chart whose values.yaml is the Go chart's is exactly that.
    older = tmp_path / "older" / "kaput-not"
    shutil.copytree(CHART, older)
    (older / "values.yaml").write_text(yaml.safe_dump(GO_CHART_VALUES))
    password = ("--set", f"netmaker.password={PASSWORD}")
    reused = _template(helm, *password, chart=older)
    assert reused.returncode == 0, reused.stderr
    objects = [doc for doc in yaml.safe_load_all(reused.stdout) if doc]
    # The same objects as `--reset-then-reuse-values`: this chart's defaults under the values.
    assert objects == render(helm, "-f", str(go_values_file(tmp_path)), *password)
    assert environment(objects)["WORKERS"] == {"value": "4"}
    assert kinds(objects, "ServiceMonitor") == kinds(objects, "PrometheusRule") == []


def test_the_go_charts_image_repository_is_replaced_by_ours(helm, tmp_path):
    objects = render(helm, "-f", str(go_values_file(tmp_path)), *REQUIRED)
    assert container(objects)["image"] == f"ghcr.io/bsure-analytics/kaput-not-py:{APP_VERSION}"
    assert container(objects)["args"] == ["run"]
    notes = render_notes(helm, tmp_path, "-f", str(go_values_file(tmp_path)), *REQUIRED)
    assert f"image.repository {GO_IMAGE} is the Go implementation's image" in notes
    # Any other repository is the user's choice, a mirror of ours for instance.
    mirror = render(helm, *REQUIRED, "--set", f"image.repository={GO_IMAGE}-py-mirror")
    assert container(mirror)["image"] == f"{GO_IMAGE}-py-mirror:{APP_VERSION}"
    assert "Go implementation" not in render_notes(helm, tmp_path / "m", *REQUIRED)


@pytest.mark.parametrize(
    ("pin", "named"),
    [
        (("--set", "image.tag=v0.3.2"), "image.tag"),
        (("--set", f"image.digest={DIGEST}"), "image.digest"),
    ],
)
def test_the_go_image_pinned_to_a_version_fails_naming_what_to_change(helm, tmp_path, pin, named):
    message = render_error(helm, "-f", str(go_values_file(tmp_path)), *REQUIRED, *pin)
    [line] = [x for x in message.splitlines() if "Go implementation's image" in x]
    assert f"{named} pins one of its versions" in line
    assert "remove both from your values" in line


def test_the_go_charts_placeholder_password_fails_in_one_line(helm, tmp_path):
    message = render_error(
        helm, "-f", str(go_values_file(tmp_path)), "--set", "netmaker.apiUrl=https://nm.example"
    )
    [line] = [x for x in message.splitlines() if PLACEHOLDER in x]
    assert line.endswith(
        "netmaker.password is the Go chart's placeholder REPLACE-WITH-ACTUAL-PASSWORD: set the "
        "real one (--set netmaker.password=...) or netmaker.existingSecret, and remove the "
        "placeholder from your values"
    )
    # Also next to an existing Secret (the placeholder came with the Go values file).
    beside = render_error(
        helm, "-f", str(go_values_file(tmp_path)), "--set", "netmaker.existingSecret=nm"
    )
    assert "the Go chart's placeholder" in beside


# ------------------------------------------------------------------ values schema


def test_lint_passes_with_the_default_and_the_full_values(helm):
    for args in (REQUIRED, FULL):
        done = lint(helm, *args)
        assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize(
    ("value", "where", "key"),
    [
        ("config.resyncPeriodd=1m", "/config", "resyncPeriodd"),
        ("replicaCont=3", "", "replicaCont"),
        ("image.digests=x", "/image", "digests"),
        ("startupProbe.periodSecond=5", "/startupProbe", "periodSecond"),
        ("prometheusRule.alerts.noLeaders.for=5m", "/prometheusRule/alerts", "noLeaders"),
    ],
)
def test_a_mistyped_key_fails_naming_the_key(helm, value, where, key):
    linted = lint(helm, *REQUIRED, "--set", value)
    assert linted.returncode != 0
    rendered = render_error(helm, *REQUIRED, "--set", value)
    for output in (linted.stdout + linted.stderr, rendered):
        assert f"at '{where}'" in output
        assert f"'{key}'" in output


@pytest.mark.parametrize(
    ("value", "where"),
    [
        ("replicaCount=two", "/replicaCount"),
        ("config.workers=0", "/config/workers"),
        ("config.logFormat=xml", "/config/logFormat"),
        ("config.logLevel=verbose", "/config/logLevel"),
        ("config.dryRun=maybe", "/config/dryRun"),
        ("config.hostAnnotation.enabled=maybe", "/config/hostAnnotation/enabled"),
        ("config.clusterPodCidrs={10.244.0.0}", "/config/clusterPodCidrs/0"),
        ("config.resyncPeriod=ten minutes", "/config/resyncPeriod"),
        ("metrics.port=0", "/metrics/port"),
        ("metrics.service.type=ExternalName", "/metrics/service/type"),
        ("image.pullPolicy=Sometimes", "/image/pullPolicy"),
        ("image.digest=sha256:abc", "/image/digest"),
        ("podAntiAffinity=sometimes", "/podAntiAffinity"),
        ("podAnnotations.example\\.com/scrape=true", "/podAnnotations/example.com~1scrape"),
        ("prometheusRule.alerts.noLeader.for=5 minutes", "/prometheusRule/alerts/noLeader/for"),
        ('prometheusRule.selector={job="x"}', "/prometheusRule/selector"),
    ],
)
def test_a_wrong_type_or_value_fails_naming_the_value(helm, value, where):
    assert f"at '{where}'" in render_error(helm, *REQUIRED, "--set", value)
    assert lint(helm, *REQUIRED, "--set", value).returncode != 0


@pytest.mark.parametrize(
    "args",
    [
        ("--set", "leaderElection.leaseDuration=15.5s"),
        ("--set", "leaderElection.leaseDuration=15.5"),
        ("--set", "leaderElection.leaseDuration=15500ms"),
        ("--set", "leaderElection.leaseDuration=1m500ms"),
        ("--set-json", "leaderElection.leaseDuration=15.5"),
    ],
)
def test_a_lease_duration_that_is_not_whole_seconds_fails(helm, tmp_path, args):
    """Issue 17: the program refuses it at start (the Lease carries whole seconds); the chart
    accepted it, so the pods crash-looped instead of helm naming the value."""
    assert "at '/leaderElection/leaseDuration'" in render_error(helm, *REQUIRED, *args)
    assert lint(helm, *REQUIRED, *args).returncode != 0
    assert not program_accepts("LEADER_ELECTION_LEASE_DURATION", args[1].split("=")[1], tmp_path)


def program_accepts(variable: str, raw: str, tmp_path: Path) -> bool:
    """Whether `kaput-not run` starts with `variable=raw` (and the required settings)."""
    namespace_file = tmp_path / "namespace"
    namespace_file.write_text(NAMESPACE)
    env = {
        "NETMAKER_API_URL": "https://api.netmaker.example.com",
        "NETMAKER_USERNAME": "kaput-not",
        "NETMAKER_PASSWORD": PASSWORD,
        "POD_NAME": "kn-kaput-not-7d9c-x2",
        variable: raw,
    }
    try:
        config.load(env, namespace_file=namespace_file, hostname=lambda: "unused")
    except config.ConfigError:
        return False
    return True


@pytest.mark.parametrize(
    ("value", "variable", "raw"),
    [
        *[("config.workers", "WORKERS", raw) for raw in ("0", "1", "64", "65")],
        *[
            ("config.netmakerConcurrency", "NETMAKER_CONCURRENCY", raw)
            for raw in ("0", "1", "64", "65")
        ],
        *[("config.egressMetric", "EGRESS_METRIC", raw) for raw in ("0", "1", "65535", "65536")],
        *[
            ("config.maxDeleteMin", "MAX_DELETE_MIN", raw)
            for raw in ("-1", "0", "1000000", "1000001")
        ],
        *[
            ("config.maxDeleteFraction", "MAX_DELETE_FRACTION", raw)
            for raw in ("0", "0.0", ".5", "0.001", "1", "1.0", "1.01", "-0.5", "half")
        ],
        *[("config.logLevel", "LOG_LEVEL", raw) for raw in ("debug", "warning", "warn", "trace")],
        *[("config.logFormat", "LOG_FORMAT", raw) for raw in ("json", "text", "xml")],
        *[
            ("config.netmakerTimeout", "NETMAKER_TIMEOUT", raw)
            for raw in (
                "0",
                "0s",
                "0.0ms",
                "-1",
                "1e3",
                "10x",
                "500ms",
                "0.1",
                "1h30m",
                "31536000",
                "31536001",
            )
        ],
        *[("config.cacheTtl", "CACHE_TTL", raw) for raw in ("0", "0s", "-1", "30s", "1.5m")],
        *[("config.deleteGrace", "DELETE_GRACE", raw) for raw in ("0", "-5", "15s")],
        *[
            ("config.resyncPeriod", "RESYNC_PERIOD", raw)
            for raw in ("0s", "1", "2", "10m", "1h30m")
        ],
        *[
            ("leaderElection.leaseDuration", "LEADER_ELECTION_LEASE_DURATION", raw)
            for raw in ("15", "15.0", "15.5", "15s", "15.5s", "16000ms", "15500ms", "1m", "1h30m")
        ],
        *[
            ("clusterName", "K8S_CLUSTER_NAME", raw)
            for raw in ("prod-eu-1", "-x", "a" * 63, "a" * 64)
        ],
    ],
)
def test_the_schema_and_the_program_agree(helm, tmp_path, value, variable, raw):
    """At the edges of each range: helm renders the value exactly when `kaput-not run` would
    start with it, and what it renders does load. Not listed: where the schema is stricter on
    purpose (lower-case log levels, true/false only, a lease duration with a fraction that adds
    up to whole seconds such as 1.5m) and what it cannot see in a string (a resyncPeriod string
    under 1s, a duration string over a year), left to the program."""
    done = _template(helm, *REQUIRED, "--set", f"{value}={raw}")
    if done.returncode == 0:
        objects = [doc for doc in yaml.safe_load_all(done.stdout) if doc]
        load_settings(objects, tmp_path)
    assert (done.returncode == 0) == program_accepts(variable, raw, tmp_path), done.stderr


def test_values_a_parent_chart_or_an_operator_may_add_are_accepted(helm, tmp_path):
    objects = render(
        helm,
        *REQUIRED,
        "--set",
        "global.imageRegistry=registry.example.com",
        "--set",
        "enabled=true",
        "--set",
        "startupProbe.initialDelaySeconds=5",
        "--set",
        "podDisruptionBudget.maxUnavailable=50%",
        "--set",
        "resources.limits.ephemeral-storage=1Gi",
        "--set",
        "config.maxDeleteFraction=0.25",
    )
    assert container(objects)["startupProbe"]["initialDelaySeconds"] == 5
    assert one(objects, "PodDisruptionBudget")["spec"]["maxUnavailable"] == "50%"
    assert load_settings(objects, tmp_path).safety.max_delete_fraction == 0.25


# ------------------------------------------------------------------ alerts

PROMQL_WORDS = {"time", "max", "sum", "by", "and", "on", "or", "increase", "absent"}


def series_names() -> set[str]:
    """Every series name the program exports (counters with _total, histograms with theirs)."""
    names: set[str] = set()
    for family in Metrics().registry.collect():
        suffixes = {
            "counter": ("_total",),
            "histogram": ("_bucket", "_sum", "_count"),
        }.get(family.type, ("",))
        names.update(family.name + suffix for suffix in suffixes)
    return names


def check_promql(expr: str, selector: str) -> set[str]:
    """A light check of a PromQL expression, for want of a parser: brackets balance outside
    strings, every {...} is a list of label matchers that starts with `selector`, every [...] a
    duration, every other word a known function or keyword. Returns the series names used."""
    unquoted = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    stack: list[str] = []
    for char in unquoted:
        if char in "([{":
            stack.append(char)
        elif char in ")]}":
            assert stack, f"unbalanced {char!r} in {expr}"
            assert stack.pop() == {")": "(", "]": "[", "}": "{"}[char], expr
    assert stack == [], expr
    matcher = re.compile(r'\s*[A-Za-z_]\w*\s*(=|!=|=~|!~)\s*"(?:[^"\\]|\\.)*"\s*')
    for body in re.findall(r"\{([^{}]*)\}", expr):
        assert body.startswith(selector), body
        assert all(matcher.fullmatch(m) for m in body.split(",")), body
    for body in re.findall(r"\[([^\[\]]*)\]", unquoted):
        assert re.fullmatch(r"(\d+(ms|[smhdwy]))+", body), body
    series = r"\b(?:kaput_not|leader_election|workqueue|rest_client)_\w+"
    names = set(re.findall(series, unquoted))
    # Every series is selected for this release only.
    assert re.findall(series + "(.)", unquoted) == ["{"] * len(re.findall(series, unquoted)), expr
    outside = re.sub(r"\{[^{}]*\}|\[[^\[\]]*\]|" + series, " ", unquoted)
    words = set(re.findall(r"[A-Za-z_]\w*", outside)) - {"namespace", "pod", "reason"}
    assert words <= PROMQL_WORDS, words - PROMQL_WORDS
    return names


def alerts_of(objects: Objects) -> dict[str, dict[str, Any]]:
    (rule,) = kinds(objects, "PrometheusRule")
    (group,) = rule["spec"]["groups"]
    return {alert["alert"]: alert for alert in group["rules"]}


def test_prometheus_rule_only_when_enabled(helm, default):
    assert kinds(default, "PrometheusRule") == []
    none_left = [
        arg
        for name in ("syncFailing", "writesHeldBack", "noLeader", "blocked", "nodesSkipped")
        for arg in ("--set", f"prometheusRule.alerts.{name}.enabled=false")
    ]
    objects = render(helm, *REQUIRED, "--set", "prometheusRule.enabled=true", *none_left)
    assert kinds(objects, "PrometheusRule") == []


def test_prometheus_rule_has_the_four_alerts(helm):
    objects = render(helm, *REQUIRED, "--set", "prometheusRule.enabled=true")
    rule = one(objects, "PrometheusRule")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert rule["metadata"]["namespace"] == NAMESPACE
    alerts = alerts_of(objects)
    assert list(alerts) == list(ALERTS)
    exported = series_names()
    used: dict[str, set[str]] = {}
    for name, alert in alerts.items():
        used[name] = check_promql(alert["expr"], f'namespace="{NAMESPACE}"')
        assert used[name] <= exported, (name, used[name] - exported)
        assert alert["annotations"]["summary"]
        description = alert["annotations"]["description"]
        assert f"kubectl -n {NAMESPACE} exec deploy/{RELEASE}-kaput-not -- kaput-not status" in (
            description
        )
        assert set(alert["labels"]) == {"severity"}
    assert used["KaputNotSyncFailing"] == {
        "kaput_not_reconciles_total",
        "kaput_not_last_successful_full_sync_timestamp_seconds",
    }
    assert 'scope="full",result="error"}[15m]' in alerts["KaputNotSyncFailing"]["expr"]
    assert re.search(r"\n\s+> 1800\n", alerts["KaputNotSyncFailing"]["expr"])
    assert used["KaputNotWritesHeldBack"] == {"kaput_not_write_budget_holding"}
    assert alerts["KaputNotWritesHeldBack"]["expr"].endswith(") == 1")
    # Issue 20: client-go's series, not a copy of it; only this release's Lease counts, as other
    # controllers in the namespace export it too.
    assert used["KaputNotNoLeader"] == {"leader_election_master_status"}
    assert "== 0" in alerts["KaputNotNoLeader"]["expr"]
    assert "absent(leader_election_master_status{" in alerts["KaputNotNoLeader"]["expr"]
    assert ',name="kaput-not"}' in alerts["KaputNotNoLeader"]["expr"]
    assert used["KaputNotBlocked"] == {"kaput_not_blocked"}
    assert "by (namespace, pod, reason)" in alerts["KaputNotBlocked"]["expr"]
    assert used["KaputNotNodesSkipped"] == {"kaput_not_nodes_skipped"}
    assert "by (namespace, reason)" in alerts["KaputNotNodesSkipped"]["expr"]
    assert "/readyz" in alerts["KaputNotWritesHeldBack"]["annotations"]["description"]
    assert "{{ $labels.reason }}" in alerts["KaputNotNodesSkipped"]["annotations"]["description"]
    assert {name: (a["for"], a["labels"]["severity"]) for name, a in alerts.items()} == {
        "KaputNotSyncFailing": ("10m", "warning"),
        "KaputNotWritesHeldBack": ("5m", "critical"),
        "KaputNotNoLeader": ("5m", "critical"),
        "KaputNotBlocked": ("5m", "critical"),
        "KaputNotNodesSkipped": ("30m", "warning"),
    }


def test_prometheus_rule_follows_the_full_values(full):
    rule = one(full, "PrometheusRule")
    assert rule["metadata"]["namespace"] == "monitoring"
    assert rule["metadata"]["labels"]["release"] == "prometheus"
    alerts = alerts_of(full)
    assert list(alerts) == list(ALERTS[:4])  # nodesSkipped is off
    for alert in alerts.values():
        check_promql(alert["expr"], 'namespace="kaput",job="kaput-not-full"')
        assert alert["labels"]["team"] == "platform"
    assert {name: (a["for"], a["labels"]["severity"]) for name, a in alerts.items()} == {
        "KaputNotSyncFailing": ("20m", "critical"),
        "KaputNotWritesHeldBack": ("10m", "warning"),
        "KaputNotNoLeader": ("2m", "page"),
        "KaputNotBlocked": ("1m", "page"),
    }
    # A full sync is due every 1h30m: no success for 1h30m + 20m.
    assert re.search(r"\n\s+> 6600\n", alerts["KaputNotSyncFailing"]["expr"])


@pytest.mark.parametrize(
    ("period", "threshold"),
    [("10m", 1800), ("600", 1800), ("90s", 1290), ("1.5m", 1290), ("1h30m", 6600), ("2.5", 1203)],
)
def test_sync_failing_waits_a_resync_period_and_20_minutes(helm, period, threshold):
    objects = render(
        helm,
        *REQUIRED,
        "--set",
        "prometheusRule.enabled=true",
        "--set",
        f"config.resyncPeriod={period}",
    )
    expr = alerts_of(objects)["KaputNotSyncFailing"]["expr"]
    assert re.search(rf"\n\s+> {threshold}\n", expr), expr


def test_alert_labels_never_override_the_severity(helm):
    objects = render(
        helm,
        *REQUIRED,
        "--set",
        "prometheusRule.enabled=true",
        "--set",
        "prometheusRule.alertLabels.severity=none",
        "--set",
        "prometheusRule.alertLabels.team=net",
    )
    for alert in alerts_of(objects).values():
        assert alert["labels"]["severity"] in {"warning", "critical"}
        assert alert["labels"]["team"] == "net"


# ------------------------------------------------------------------ notes


def test_notes_say_how_to_find_the_leader(helm, tmp_path):
    notes = render_notes(helm, tmp_path, *REQUIRED)
    assert (
        f"kubectl get lease -n {NAMESPACE} kaput-not -o jsonpath='{{.spec.holderIdentity}}" in notes
    )
    assert "kubectl logs" in notes
    assert "/metrics" in notes


def test_notes_say_how_to_check_it_works(helm, tmp_path):
    notes = render_notes(helm, tmp_path, *REQUIRED)
    name = f"{RELEASE}-kaput-not"
    assert f"kaput-not (ghcr.io/bsure-analytics/kaput-not-py:{APP_VERSION})" in notes
    # Ready pods, the leader's "full sync:" lines, `kaput-not status`, the metrics port.
    assert f"kubectl rollout status -n {NAMESPACE} deployment/{name}" in notes
    assert "full sync: <n> nodes" in notes
    assert "grep 'full sync'" in notes
    assert f"kubectl -n {NAMESPACE} exec deploy/{name} -- kaput-not status" in notes
    assert "curl -s localhost:8080/readyz" in notes
    # What to do about a node without a rule.
    assert "If a node gets no rule" in notes
    assert "kaput-not.io/netmaker-host=<host>" in notes
    assert "PrometheusRule" not in notes
    assert "{{" not in notes


def test_notes_follow_the_values(helm, tmp_path):
    notes = render_notes(helm, tmp_path, *FULL)
    digest = yaml.safe_load(FULL_VALUES.read_text())["image"]["digest"]
    assert f"(registry.example.com/mirror/kaput-not-py@{digest})" in notes
    assert "exec deploy/kaput-not-full -- kaput-not status" in notes
    assert "curl -s localhost:9090/metrics" in notes
    assert "at least every 1h30m" in notes
    assert "A PrometheusRule alerts on" in notes
    assert "DRY RUN is on" in notes
