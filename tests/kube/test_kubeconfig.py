"""Issue 20: the Kubernetes configuration is found, merged and explained as kubectl does."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kaput_not.kube.kubeconfig import KubeConfigError, load


def _write(path: Path, **parts: object) -> str:
    path.write_text(json.dumps({"apiVersion": "v1", "kind": "Config", **parts}))
    return str(path)


def _service_account(tmp_path: Path) -> Path:
    account = tmp_path / "serviceaccount"
    account.mkdir()
    (account / "token").write_text("sa-token")
    (account / "namespace").write_text("kaput")
    (account / "ca.crt").write_text("")
    return account


IN_POD = {"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"}


def test_kubeconfig_unset_in_a_pod_uses_the_service_account_before_home(tmp_path):
    home = Path(_write(tmp_path / "config", clusters=[], contexts=[]))
    loaded = load(
        None, environ=IN_POD, service_account=_service_account(tmp_path), default_file=home
    )
    assert loaded.config.cluster.server == "https://10.96.0.1:443"
    assert loaded.source.startswith("the in-cluster service account")


def test_kubeconfig_unset_outside_a_pod_uses_home_and_says_so(tmp_path):
    home = _write(
        tmp_path / "config",
        clusters=[{"name": "c", "cluster": {"server": "https://home:6443"}}],
        contexts=[{"name": "dev", "context": {"cluster": "c"}}],
        **{"current-context": "dev"},
    )
    # The token is mounted but the service's address is not in the environment: not a pod.
    loaded = load(
        None, environ={}, service_account=_service_account(tmp_path), default_file=Path(home)
    )
    assert loaded.config.cluster.server == "https://home:6443"
    assert loaded.source == f"context dev from {home}"


def test_kubeconfig_path_list_resolves_relative_paths_against_each_file(tmp_path):
    """client-go resolves a file's relative paths against that file's directory, before the
    merge; lightkube would resolve them all against one file."""
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    first = _write(
        tmp_path / "one" / "config",
        clusters=[{"name": "c", "cluster": {"server": "https://x", "certificate-authority": "ca"}}],
        contexts=[{"name": "dev", "context": {"cluster": "c", "user": "u"}}],
        **{"current-context": "dev"},
    )
    second = _write(
        tmp_path / "two" / "config",
        users=[
            {
                "name": "u",
                "user": {
                    "tokenFile": "token",
                    "exec": {
                        "apiVersion": "client.authentication.k8s.io/v1",
                        "command": "./bin/auth",
                    },
                },
            }
        ],
        contexts=[{"name": "dev", "context": {"cluster": "elsewhere"}}],
    )
    loaded = load(f"{first}:{second}", environ={})
    assert loaded.config.cluster.certificate_auth == str(tmp_path / "one" / "ca")
    assert loaded.config.user is not None
    assert loaded.config.user.token_file == str(tmp_path / "two" / "token")
    assert loaded.config.user.exec is not None
    assert loaded.config.user.exec.command == str(tmp_path / "two" / "bin" / "auth")
    assert loaded.source == f"context dev from KUBECONFIG={first}:{second}"


@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        ("none-exist", "KUBECONFIG={a}:{b}: none of the files exists"),
        ("no-current", "KUBECONFIG={a}: no current-context is set; pass --context with one of: x"),
        ("no-cluster", "KUBECONFIG={a}: context 'x' names cluster 'gone' that no file defines"),
    ],
)
def test_kubeconfig_errors_say_what_was_read_and_what_to_do(tmp_path, setup, expected):
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    if setup == "none-exist":
        value = f"{a}:{b}"
    elif setup == "no-current":
        value = _write(tmp_path / "a", clusters=[], contexts=[{"name": "x", "context": {}}])
    else:
        value = _write(
            tmp_path / "a",
            contexts=[{"name": "x", "context": {"cluster": "gone"}}],
            **{"current-context": "x"},
        )
    with pytest.raises(KubeConfigError) as caught:
        load(value, environ={})
    assert str(caught.value) == expected.format(a=a, b=b)
