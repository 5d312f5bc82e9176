"""Where the Kubernetes configuration comes from, decided as kubectl (client-go) decides it.

- `--kubeconfig FILE` (plan, status): that one file, which must exist.
- `KUBECONFIG=a:b`: a list of files, merged; files that do not exist are skipped (as kubectl
  does), but at least one must exist. In each of `clusters`, `users` and `contexts`, the first
  file that names an entry wins; `current-context` comes from the first file that sets it.
  Relative paths in a file are relative to that file's directory.
- Neither: the in-cluster service account when the process runs in a pod, else
  `~/.kube/config`.

`--context` picks a context instead of `current-context`. lightkube does the rest (TLS, tokens,
exec plugins) from one `SingleConfig`; it reads one file only, hence the merge here.
`Loaded.source` says in words which of these happened, for the start-up log and errors.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped,unused-ignore]  # what lightkube parses kubeconfigs with
from lightkube.config.kubeconfig import SERVICE_ACCOUNT, KubeConfig, SingleConfig
from lightkube.config.models import Cluster, User
from lightkube.core.exceptions import ConfigError

DEFAULT_KUBECONFIG = Path("~/.kube/config")


class KubeConfigError(ValueError):
    """No usable kubeconfig or in-cluster configuration; one line saying which and why."""


@dataclass(frozen=True, slots=True)
class Loaded:
    config: SingleConfig
    #: e.g. "context kind-dev from KUBECONFIG=/a:/b", "the in-cluster service account".
    source: str


def load(
    kubeconfig: str | None,
    *,
    explicit: str | None = None,
    context: str | None = None,
    environ: Mapping[str, str] | None = None,
    service_account: Path = Path(SERVICE_ACCOUNT),
    default_file: Path = DEFAULT_KUBECONFIG,
) -> Loaded:
    """The configuration: `explicit` (--kubeconfig) first, then the `kubeconfig` path list
    (KUBECONFIG), then in-cluster, then `default_file`. Raises KubeConfigError."""
    env = os.environ if environ is None else environ
    if explicit:
        where = f"--kubeconfig {explicit}"
        files = [Path(explicit).expanduser()]
        if not files[0].is_file():
            raise KubeConfigError(f"{where}: the file does not exist")
    elif kubeconfig:
        where = f"KUBECONFIG={kubeconfig}"
        listed = [Path(p).expanduser() for p in kubeconfig.split(os.pathsep) if p.strip()]
        files = [p for p in listed if p.is_file()]
        if not files:
            what = "the file does not exist" if len(listed) == 1 else "none of the files exists"
            raise KubeConfigError(f"{where}: {what}")
    elif _in_cluster(env, service_account):
        if context:
            raise KubeConfigError(
                f"--context {context}: running in a cluster with its service account, which "
                "has no contexts; set KUBECONFIG or pass --kubeconfig to choose one"
            )
        single = _service_account_config(env, service_account)
        return Loaded(single, f"the in-cluster service account ({service_account})")
    else:
        files = [default_file.expanduser()]
        where = str(default_file)
        if not files[0].is_file():
            raise KubeConfigError(
                f"no Kubernetes configuration: not in a cluster ({service_account}/token or "
                f"KUBERNETES_SERVICE_HOST missing) and {default_file} does not exist; set "
                "KUBECONFIG or pass --kubeconfig"
            )
    merged = _merge([(path, _read(where, path)) for path in files])
    single = _select(where, merged, context)
    return Loaded(single, f"context {single.context_name} from {where}")


def _in_cluster(env: Mapping[str, str], service_account: Path) -> bool:
    """client-go's test: the service's address in the environment and the token mounted."""
    return bool(env.get("KUBERNETES_SERVICE_HOST")) and (service_account / "token").is_file()


def _service_account_config(env: Mapping[str, str], account: Path) -> SingleConfig:
    """lightkube's `from_service_account`, reading the service address from `env`."""
    host, port = env["KUBERNETES_SERVICE_HOST"], env.get("KUBERNETES_SERVICE_PORT", "443")
    try:
        namespace = (account / "namespace").read_text(encoding="utf-8").strip() or None
    except OSError as exc:
        raise KubeConfigError(
            f"cannot use the in-cluster service account ({account}): {_one_line(exc)}"
        ) from exc
    token_file = str(account / "token")
    single = KubeConfig.from_one(
        cluster=Cluster(
            server=f"https://[{host}]:{port}" if ":" in host else f"https://{host}:{port}",
            certificate_auth=str(account / "ca.crt"),
        ),
        # lightkube re-reads token_file on rotation; the token itself is read there too.
        user=User(token_file=token_file),
        namespace=namespace,
    ).get()
    assert single is not None  # from_one always sets its one context
    return single


def _read(where: str, path: Path) -> dict[str, Any]:
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise KubeConfigError(
            f"cannot load the Kubernetes configuration from {where}: {path}: {_one_line(exc)}"
        ) from exc
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise KubeConfigError(
            f"{where}: {path} is not a kubeconfig (a YAML mapping with clusters, users and "
            "contexts)"
        )
    return document


#: The path fields client-go resolves against the directory of the file they are in.
_CLUSTER_PATHS = ("certificate-authority",)
_USER_PATHS = ("client-certificate", "client-key", "tokenFile")


def _merge(documents: list[tuple[Path, dict[str, Any]]]) -> dict[str, Any]:
    merged: dict[str, Any] = {"clusters": [], "users": [], "contexts": []}
    seen: dict[str, set[str]] = {"clusters": set(), "users": set(), "contexts": set()}
    for path, document in documents:
        base = path.resolve().parent
        if merged.get("current-context") is None and document.get("current-context"):
            merged["current-context"] = document["current-context"]
        for section, key, paths in (
            ("clusters", "cluster", _CLUSTER_PATHS),
            ("users", "user", _USER_PATHS),
            ("contexts", "context", ()),
        ):
            entries = document.get(section) or []
            if not isinstance(entries, list):
                raise KubeConfigError(f"{path}: {section} must be a list of named entries")
            for entry in entries:
                if not isinstance(entry, dict) or not isinstance(entry.get(key), dict):
                    raise KubeConfigError(
                        f"{path}: every item of {section} needs a name and a {key} mapping"
                    )
                name = str(entry.get("name", ""))
                if name in seen[section]:
                    continue  # the first file to name it wins
                seen[section].add(name)
                body = dict(entry[key])
                for field in paths:
                    body[field] = _absolute(base, body.get(field))
                if key == "user" and isinstance(body.get("exec"), dict):
                    command = body["exec"].get("command")
                    # Only a command with a path separator is a path; a bare name is on PATH.
                    if isinstance(command, str) and os.sep in command:
                        body["exec"] = {**body["exec"], "command": _absolute(base, command)}
                merged[section].append({"name": name, key: body})
    return merged


def _absolute(base: Path, value: object) -> object:
    if isinstance(value, str) and value and not Path(value).expanduser().is_absolute():
        return str(base / value)
    return value


def _select(where: str, merged: dict[str, Any], context: str | None) -> SingleConfig:
    names = [entry["name"] for entry in merged["contexts"]]
    chosen = context or merged.get("current-context")
    if not chosen:
        raise KubeConfigError(
            f"{where}: no current-context is set; pass --context with one of: "
            f"{', '.join(names) or '(none: the file has no contexts)'}"
        )
    flag = "--context" if context else "current-context"
    if chosen not in names:
        raise KubeConfigError(
            f"{where}: {flag} {chosen!r} is not one of its contexts: {', '.join(names) or '(none)'}"
        )
    try:
        config = KubeConfig.from_dict(merged)
        single = config.get(chosen)
    except (ConfigError, ValueError, TypeError) as exc:
        raise KubeConfigError(f"{where}: {_one_line(exc)}") from exc
    except KeyError as exc:
        ctx = config.contexts[chosen]
        raise KubeConfigError(
            f"{where}: context {chosen!r} names {_missing(ctx, config, exc)} that no file defines"
        ) from exc
    assert single is not None  # a named context is always found or raises
    return single


def _missing(ctx: Any, config: KubeConfig, exc: KeyError) -> str:
    if ctx.cluster not in config.clusters:
        return f"cluster {ctx.cluster!r}"
    return f"user {ctx.user!r}" if ctx.user else repr(exc.args[0])


def _one_line(exc: BaseException | str) -> str:
    """An exception's text on one line (YAML errors span several, with a marked excerpt)."""
    return " ".join(str(exc).split())
