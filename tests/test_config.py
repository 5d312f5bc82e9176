"""Configuration from the environment: defaults, in-cluster detection, one-line errors."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from kaput_not import config

BASE = {
    "NETMAKER_API_URL": "https://nm.example.com",
    "NETMAKER_USERNAME": "kaput-not",
    "NETMAKER_PASSWORD": "s3cret-password",
}
NO_SA = Path("/nonexistent/serviceaccount/namespace")


def load(env: dict[str, str], *, namespace_file: Path = NO_SA) -> config.Settings:
    return config.load(env, namespace_file=namespace_file, hostname=lambda: "laptop")


def test_defaults_locally():
    s = load(BASE)
    assert s.kubernetes.in_cluster is False
    assert s.leader_election.enabled is False
    assert s.leader_election.namespace == "kube-system"
    assert s.leader_election.name == "kaput-not"
    assert s.leader_election.identity.startswith("laptop_")
    assert (s.netmaker.cache_ttl_seconds, s.reconcile.resync_period_seconds) == (30.0, 600.0)
    assert (s.reconcile.workers, s.netmaker.concurrency, s.reconcile.egress_metric) == (4, 4, 500)
    assert s.output.metrics_address == ":8080"
    assert s.kubernetes.cluster_name is None


def test_in_cluster_turns_leader_election_on_in_the_pods_namespace(tmp_path: Path):
    ns = tmp_path / "namespace"
    ns.write_text("kaput-system\n")
    s = load({**BASE, "POD_NAME": "kaput-not-7d9c-x2"}, namespace_file=ns)
    assert s.kubernetes.in_cluster is True
    assert s.leader_election.enabled is True
    assert s.leader_election.namespace == "kaput-system"
    assert s.leader_election.identity == "kaput-not-7d9c-x2"


def test_go_version_names_are_honoured():
    s = load(
        {
            **BASE,
            "KUBECONFIG": "/home/me/.kube/config",
            "K8S_CLUSTER_NAME": "us-east",
            "LEADER_ELECTION_ENABLED": "true",
            "LEADER_ELECTION_NAMESPACE": "ops",
            "LEADER_ELECTION_ID": "kaput-not-east",
        }
    )
    assert s.kubernetes.kubeconfig == "/home/me/.kube/config"
    assert s.kubernetes.cluster_name == "us-east"
    assert s.leader_election.enabled
    assert (s.leader_election.namespace, s.leader_election.name) == ("ops", "kaput-not-east")


def test_durations_in_go_style():
    s = load({**BASE, "RESYNC_PERIOD": "1h30m", "CACHE_TTL": "500ms", "NETMAKER_TIMEOUT": "12"})
    assert s.reconcile.resync_period_seconds == 5400
    assert s.netmaker.cache_ttl_seconds == 0.5
    assert s.netmaker.timeout_seconds == 12


def test_password_from_a_file(tmp_path: Path):
    secret = tmp_path / "password"
    secret.write_text("from-file\n")
    env = {k: v for k, v in BASE.items() if k != "NETMAKER_PASSWORD"}
    assert load({**env, "NETMAKER_PASSWORD_FILE": str(secret)}).netmaker.password == "from-file"


@pytest.mark.parametrize(
    ("change", "variable"),
    [
        ({"NETMAKER_API_URL": ""}, "NETMAKER_API_URL"),
        ({"NETMAKER_USERNAME": " "}, "NETMAKER_USERNAME"),
        ({"NETMAKER_PASSWORD": ""}, "NETMAKER_PASSWORD"),
        ({"NETMAKER_PASSWORD_FILE": "/nonexistent/pw"}, "NETMAKER_PASSWORD"),
        ({"NETMAKER_CA_FILE": "/nonexistent/ca.pem"}, "NETMAKER_CA_FILE"),
        ({"RESYNC_PERIOD": "ten minutes"}, "RESYNC_PERIOD"),
        ({"RESYNC_PERIOD": "0s"}, "RESYNC_PERIOD"),
        ({"WORKERS": "0"}, "WORKERS"),
        ({"WORKERS": "many"}, "WORKERS"),
        ({"MAX_DELETE_FRACTION": "2"}, "MAX_DELETE_FRACTION"),
        ({"ALLOW_MASS_DELETE": "maybe"}, "ALLOW_MASS_DELETE"),
        ({"K8S_CLUSTER_NAME": "two words"}, "K8S_CLUSTER_NAME"),
        ({"LEADER_ELECTION_RENEW_DEADLINE": "20s"}, "LEADER_ELECTION_LEASE_DURATION"),
        ({"METRICS_ADDRESS": "8080"}, "METRICS_ADDRESS"),
        ({"LOG_FORMAT": "xml"}, "LOG_FORMAT"),
        ({"LOG_LEVEL": "loud"}, "LOG_LEVEL"),
        # Issue 9, item 8: float() takes these, and a NaN grace period spun the queue forever.
        ({"RESYNC_PERIOD": "nan"}, "RESYNC_PERIOD"),
        ({"DELETE_GRACE": "nan"}, "DELETE_GRACE"),
        ({"CACHE_TTL": "NaN"}, "CACHE_TTL"),
        ({"DELETE_GRACE": "inf"}, "DELETE_GRACE"),
        ({"NETMAKER_TIMEOUT": "1e400"}, "NETMAKER_TIMEOUT"),
        ({"DELETE_GRACE": "-5"}, "DELETE_GRACE"),
        ({"RESYNC_PERIOD": "100000h"}, "RESYNC_PERIOD"),
        # Issue 9, item 9: each of these was a traceback.
        ({"METRICS_ADDRESS": ":\u00b2"}, "METRICS_ADDRESS"),
        ({"POD_NAME": "r\u00e9plica-a"}, "POD_NAME"),
        ({"POD_NAME": "two words"}, "POD_NAME"),
        ({"NETMAKER_USERNAME": "kaput-\udcff"}, "NETMAKER_USERNAME"),
        ({"NETMAKER_PASSWORD": "pass-\udcffword"}, "NETMAKER_PASSWORD"),
        # Issue 17: the host annotation's limits and the cluster's pod ranges.
        ({"HOST_ANNOTATION_ENABLED": "maybe"}, "HOST_ANNOTATION_ENABLED"),
        ({"HOST_ANNOTATION_HOSTS": "w[0-9"}, "HOST_ANNOTATION_HOSTS"),
        ({"CLUSTER_POD_CIDRS": "10.244.0.0/16,10.300.0.0/16"}, "CLUSTER_POD_CIDRS"),
    ],
)
def test_bad_values_are_one_line_naming_the_variable(change, variable):
    env = {**BASE, **change}
    if "NETMAKER_PASSWORD_FILE" in change:
        env.pop("NETMAKER_PASSWORD")
    with pytest.raises(config.ConfigError) as caught:
        load(env)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(variable), message
    assert BASE["NETMAKER_PASSWORD"] not in message


def test_the_host_annotation_and_the_cluster_pod_ranges_are_read():
    s = load(BASE)
    assert (
        s.kubernetes.host_annotation,
        s.kubernetes.host_annotation_hosts,
        s.kubernetes.cluster_pod_cidrs,
    ) == (True, None, ())
    s = load(
        {
            **BASE,
            "HOST_ANNOTATION_ENABLED": "false",
            "HOST_ANNOTATION_HOSTS": r"w[0-9]+\.example\.com",
            "CLUSTER_POD_CIDRS": " 10.244.0.0/16, fd00:10:244::/56 ",
        }
    )
    assert s.kubernetes.host_annotation is False
    assert s.kubernetes.host_annotation_hosts is not None
    assert s.kubernetes.host_annotation_hosts.fullmatch("w12.example.com")
    assert s.kubernetes.cluster_pod_cidrs == ("10.244.0.0/16", "fd00:10:244::/56")


def test_a_password_file_that_is_not_utf8_is_one_line(tmp_path: Path):
    secret = tmp_path / "password"
    secret.write_bytes(b"caf\xe9-latin-1\n")
    env = {k: v for k, v in BASE.items() if k != "NETMAKER_PASSWORD"}
    with pytest.raises(config.ConfigError) as caught:
        load({**env, "NETMAKER_PASSWORD_FILE": str(secret)})
    assert str(caught.value).startswith("NETMAKER_PASSWORD_FILE=")
    assert "UTF-8" in str(caught.value)


@pytest.mark.parametrize("where", ["NETMAKER_PASSWORD", "NETMAKER_PASSWORD_FILE"])
def test_the_go_charts_placeholder_password_is_refused_in_one_line(tmp_path: Path, where: str):
    env = {k: v for k, v in BASE.items() if k != "NETMAKER_PASSWORD"}
    if where == "NETMAKER_PASSWORD":
        env[where] = "REPLACE-WITH-ACTUAL-PASSWORD"
    else:
        secret = tmp_path / "password"
        secret.write_text("REPLACE-WITH-ACTUAL-PASSWORD\n")
        env[where] = str(secret)
    with pytest.raises(config.ConfigError) as caught:
        load(env)
    [line] = str(caught.value).splitlines()
    assert "the Go chart's placeholder" in line
    assert "netmaker.password" in line


def test_settings_repr_hides_the_password():
    assert "s3cret-password" not in repr(load(BASE))


def test_every_variable_is_documented_in_the_readme():
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    documented = set(re.findall(r"^\| `([A-Z0-9_]+)` \|", readme, flags=re.MULTILINE))
    assert documented == {name for name, _, _ in config.VARIABLES}


def test_every_variable_read_is_in_the_table():
    # Every module of the package but __init__, whose __all__ only names what it re-exports.
    modules = Path(config.__file__).parent.glob("[!_]*.py")
    source = "".join(module.read_text() for module in modules)
    read = set(re.findall(r'"([A-Z][A-Z0-9_]{3,})"', source)) - {
        "DEBUG",
        "INFO",
        "WARNING",
        "ERROR",
    }
    assert read <= {name for name, _, _ in config.VARIABLES}


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("http://" + "a" * 64 + ".example.com", id="label-over-63"),
        pytest.param("http://\u0661\u0662\u0663.example.com", id="arabic-indic-digits"),
        pytest.param("https://nm..example.com", id="empty-label"),
    ],
)
def test_a_host_that_cannot_be_looked_up_is_one_line_naming_the_url(url: str):
    """Issue 17: these passed the checks and escaped from the first request as a traceback."""
    with pytest.raises(config.ConfigError) as caught:
        load({**BASE, "NETMAKER_API_URL": url})
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("NETMAKER_API_URL"), message
    assert "host" in message


@pytest.mark.parametrize("duration", ["1.4s", "15500ms", "2.5"])
def test_a_lease_duration_the_lease_cannot_carry_is_one_line(duration: str):
    """Issue 17: 1.4 s was accepted and published as 1 s, below a 1.3 s renew deadline."""
    env = {
        **BASE,
        "LEADER_ELECTION_LEASE_DURATION": duration,
        "LEADER_ELECTION_RENEW_DEADLINE": "1.3s",
        "LEADER_ELECTION_RETRY_PERIOD": "1s",
    }
    with pytest.raises(config.ConfigError) as caught:
        load(env)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("LEADER_ELECTION_LEASE_DURATION"), message
    assert "whole number of seconds" in message


def test_node_selector_is_checked_at_start_with_a_one_line_error():
    """Issue 20: NODE_SELECTOR (config.nodeSelector) is a label selector; a typo is one line
    naming the variable, not a 400 on every node list."""
    s = load({**BASE, "NODE_SELECTOR": " !node-role.kubernetes.io/control-plane , zone in (a,b)"})
    assert s.kubernetes.node_selector == "!node-role.kubernetes.io/control-plane,zone in (a,b)"
    assert load(BASE).kubernetes.node_selector == ""
    with pytest.raises(config.ConfigError) as caught:
        load({**BASE, "NODE_SELECTOR": "zone in a,b"})
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("NODE_SELECTOR='zone in a,b' is not a label selector: ")
    assert "use e.g. !node-role.kubernetes.io/control-plane" in message


def test_the_documented_defaults_are_the_ones_loaded():
    """Issue 21 item 7: each default lives once, in its subject (config/tree.py); the table
    that `run --help`, the README and the chart are checked against must say the same."""
    s = load(BASE)
    le = s.leader_election
    loaded: dict[str, object] = {
        "NETMAKER_INSECURE_SKIP_TLS_VERIFY": s.netmaker.insecure_skip_tls_verify,
        "NETMAKER_TIMEOUT": s.netmaker.timeout_seconds,
        "NETMAKER_CONCURRENCY": s.netmaker.concurrency,
        "CACHE_TTL": s.netmaker.cache_ttl_seconds,
        "LEADER_ELECTION_ID": le.name,
        "LEADER_ELECTION_LEASE_DURATION": le.lease_seconds,
        "LEADER_ELECTION_RENEW_DEADLINE": le.renew_deadline_seconds,
        "LEADER_ELECTION_RETRY_PERIOD": le.retry_period_seconds,
        "RESYNC_PERIOD": s.reconcile.resync_period_seconds,
        "DELETE_GRACE": s.reconcile.delete_grace_seconds,
        "WORKERS": s.reconcile.workers,
        "EGRESS_METRIC": s.reconcile.egress_metric,
        "MAX_DELETE_FRACTION": s.safety.max_delete_fraction,
        "MAX_DELETE_MIN": s.safety.max_delete_floor,
        "BUDGET_WINDOW": s.safety.budget_window_seconds,
        "ALLOW_MASS_DELETE": s.safety.allow_mass_delete,
        "DRY_RUN": s.safety.dry_run,
        "METRICS_ADDRESS": s.output.metrics_address,
        "LOG_LEVEL": s.output.log_level.lower(),
        "EVENTS_ENABLED": s.output.events,
        "HOST_ANNOTATION_ENABLED": s.kubernetes.host_annotation,
    }
    shown = {name: default for name, default, _ in config.VARIABLES}
    concrete = {name for name, default in shown.items() if default and default[0] != "("}
    assert concrete == set(loaded)
    for name, value in loaded.items():
        text = shown[name]
        if isinstance(value, bool):
            assert config.parse_bool(name, text) is value, name
        elif isinstance(value, int) or name == "MAX_DELETE_FRACTION":
            assert float(text) == value, name
        elif isinstance(value, float):
            assert config.parse_duration(name, text) == value, name
        else:
            assert text == value, name
