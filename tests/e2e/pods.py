"""The image run as the chart runs it: a rendered Deployment's pod, started with podman.

`pod_settings()` reads the pod template of the Deployment that `helm template` rendered and
turns it into podman arguments without hand-copied settings: the env from the ConfigMap
(`envFrom`) and the `env` list (values and `fieldRef`s), the Secret volume's items as
read-only files at their mount path, the container's user, group, read-only root file system,
dropped capabilities and no-new-privileges, the image and args, the grace period. What a
kubelet adds is added here the same way: the ServiceAccount's token (from the real API
server's TokenRequest), CA and namespace at /var/run/secrets/kubernetes.io/serviceaccount,
and KUBERNETES_SERVICE_HOST/PORT.

Each pod gets a network namespace of its own, as in a cluster, so every replica binds the
probe port of the manifest. `PodNetwork` makes it with `ip netns add` and bridges, from
loopback to loopback, the ports the pod must reach on this machine (API server, Netmaker) into
it and its probe port out of it: a socket made in a thread that entered the namespace with
setns(2) stays in that namespace, so one process of ours serves both sides. No address but
127.0.0.1 is ever used.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ctypes
import os
import resource
import shutil
import socket
import subprocess
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from .controlplane import free_port

CLONE_NEWNET = 0x40000000
SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
PODMAN_TOOLS = ("podman", "runc", "ip")
ULIMIT_CAP = 32768


def _missing_image() -> str:
    """Why the image cannot be run here, or ""."""
    missing = [tool for tool in PODMAN_TOOLS if shutil.which(tool) is None]
    if missing:
        return f"{', '.join(missing)} not installed (Debian packages podman, runc, iproute2)"
    if not os.environ.get("KAPUT_NOT_IMAGE"):
        return "KAPUT_NOT_IMAGE is unset (scripts/check builds the image with scripts/build-image)"
    return ""


def skip_module_without_image() -> None:
    """Outside CI, skip the calling test module when the image or podman is missing; every
    module skips from this one line, so `pytest -ra` folds them into one. In CI nothing is
    skipped: `image_reference()` fails instead."""
    why = _missing_image()
    if why and not os.environ.get("CI"):
        pytest.skip(f"image: {why}", allow_module_level=True)


def image_reference() -> str:
    """The image under test (KAPUT_NOT_IMAGE, which scripts/check sets after building it);
    in CI a missing image or tool fails, naming it."""
    why = _missing_image()
    if why:
        if os.environ.get("CI"):
            pytest.fail(f"image: {why}", pytrace=False)
        pytest.skip(f"image: {why}")
    return os.environ["KAPUT_NOT_IMAGE"]


def podman_command() -> list[str]:
    """podman as it works on these machines: vfs storage, runc, cgroupfs."""
    driver = os.environ.get("CONTAINERS_STORAGE_DRIVER", "vfs")
    return [
        "podman",
        f"--storage-driver={driver}",
        "--runtime=runc",
        "--cgroup-manager=cgroupfs",
    ]


def ulimits() -> list[str]:
    """At most the host's hard limits: podman's defaults exceed what some sandboxes allow (and
    some refuse an nproc limit above 32768 even below the hard limit)."""
    args = []
    for name, limit in (("nofile", resource.RLIMIT_NOFILE), ("nproc", resource.RLIMIT_NPROC)):
        hard = resource.getrlimit(limit)[1]
        value = ULIMIT_CAP if hard == resource.RLIM_INFINITY else min(hard, ULIMIT_CAP)
        args.append(f"--ulimit={name}={value}:{value}")
    return args


# ------------------------------------------------------------------ the rendered manifest


def by_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o.get("kind") == kind]


def one(objects: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    [found] = by_kind(objects, kind)
    return found


@dataclass
class PodSettings:
    """What the rendered Deployment asks of one container, as podman arguments."""

    image: str
    args: list[str]
    env: dict[str, str]
    files: dict[str, dict[str, bytes]]  # mount path -> file name -> content
    user: str
    podman_args: list[str]
    probe_port: int
    probe_paths: dict[str, str]  # probe kind -> path
    grace: int
    service_account: str
    namespace: str


def pod_settings(objects: list[dict[str, Any]], pod_name: str) -> PodSettings:
    deployment = one(objects, "Deployment")
    namespace = deployment["metadata"]["namespace"]
    pod = deployment["spec"]["template"]["spec"]
    [container] = pod["containers"]
    configmaps = {o["metadata"]["name"]: o for o in by_kind(objects, "ConfigMap")}
    secrets = {o["metadata"]["name"]: o for o in by_kind(objects, "Secret")}

    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" not in source:
            raise AssertionError(f"unsupported envFrom source: {source}")
        env.update(configmaps[source["configMapRef"]["name"]]["data"])
    fields = {"metadata.name": pod_name, "metadata.namespace": namespace}
    for variable in container.get("env", []):
        if "value" in variable:
            env[variable["name"]] = str(variable["value"])
        else:
            env[variable["name"]] = fields[variable["valueFrom"]["fieldRef"]["fieldPath"]]

    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    files: dict[str, dict[str, bytes]] = {}
    for mount in container.get("volumeMounts", []):
        volume = volumes[mount["name"]]
        if "secret" not in volume or not mount.get("readOnly"):
            raise AssertionError(f"unsupported volume mount: {mount} of {volume}")
        data = secrets[volume["secret"]["secretName"]]["data"]
        files[mount["mountPath"]] = {
            item["path"]: base64.b64decode(data[item["key"]]) for item in volume["secret"]["items"]
        }

    context = {**pod.get("securityContext", {}), **container.get("securityContext", {})}
    user = f"{context['runAsUser']}:{context['runAsGroup']}"
    if context.get("runAsNonRoot"):
        assert context["runAsUser"] != 0, "runAsNonRoot with runAsUser 0"
    podman_args = [f"--user={user}"]
    if context.get("readOnlyRootFilesystem"):
        # Kubernetes mounts no tmpfs on /tmp, /run, /var/tmp; podman would by default.
        podman_args += ["--read-only", "--read-only-tmpfs=false"]
    podman_args += [f"--cap-drop={c}" for c in context.get("capabilities", {}).get("drop", [])]
    podman_args += [f"--cap-add={c}" for c in context.get("capabilities", {}).get("add", [])]
    if context.get("allowPrivilegeEscalation") is False:
        podman_args.append("--security-opt=no-new-privileges")

    ports = {p["name"]: p["containerPort"] for p in container.get("ports", [])}
    probes = {
        kind: container[f"{kind}Probe"]["httpGet"]
        for kind in ("startup", "liveness", "readiness")
        if f"{kind}Probe" in container
    }
    [probe_port] = {ports.get(p["port"], p["port"]) for p in probes.values()}
    return PodSettings(
        image=container["image"],
        args=list(container.get("args", [])),
        env=env,
        files=files,
        user=user,
        podman_args=podman_args,
        probe_port=int(probe_port),
        probe_paths={kind: p["path"] for kind, p in probes.items()},
        grace=int(pod.get("terminationGracePeriodSeconds", 30)),
        service_account=pod["serviceAccountName"],
        namespace=namespace,
    )


# ------------------------------------------------------------------ a pod's network namespace


def _enter(path: str) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    with open(path, "rb") as handle:
        if libc.setns(handle.fileno(), CLONE_NEWNET) != 0:
            errno = ctypes.get_errno()
            raise OSError(errno, f"setns({path}): {os.strerror(errno)}")


def socket_in(path: str, make: Callable[[], socket.socket]) -> socket.socket:
    """`make()` run in a thread that entered the network namespace at `path`; the socket
    stays in that namespace after the thread ends."""
    result: Future[socket.socket] = Future()

    def run() -> None:
        try:
            _enter(path)
            result.set_result(make())
        except BaseException as exc:
            result.set_exception(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join()
    return result.result()


def _listener() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    return sock


@dataclass
class PodNetwork:
    """One network namespace, with loopback up, and the bridges into and out of it."""

    name: str
    path: str
    loop: asyncio.AbstractEventLoop
    servers: list[asyncio.AbstractServer] = field(default_factory=list)

    def inward(self, port: int) -> None:
        """127.0.0.1:port in the pod reaches 127.0.0.1:port of this machine."""
        sock = socket_in(self.path, _listener)
        sock.bind(("127.0.0.1", port))
        sock.listen(64)
        sock.setblocking(False)

        async def connect() -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
            return await asyncio.open_connection("127.0.0.1", port)

        self._serve(sock, connect)

    def outward(self, port: int) -> int:
        """A free port of this machine that reaches 127.0.0.1:port in the pod."""
        local = free_port()
        sock = _listener()
        sock.bind(("127.0.0.1", local))
        sock.listen(64)
        sock.setblocking(False)

        async def connect() -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
            inside = socket_in(self.path, lambda: socket.socket(socket.AF_INET))
            inside.setblocking(False)
            try:
                await self.loop.sock_connect(inside, ("127.0.0.1", port))
            except BaseException:
                inside.close()
                raise
            return await asyncio.open_connection(sock=inside)

        self._serve(sock, connect)
        return local

    def _serve(
        self,
        sock: socket.socket,
        connect: Callable[[], Any],
    ) -> None:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                up_reader, up_writer = await connect()
            except OSError:
                writer.close()
                return
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))

        async def start() -> asyncio.AbstractServer:
            return await asyncio.start_server(handle, sock=sock)

        self.servers.append(asyncio.run_coroutine_threadsafe(start(), self.loop).result(10))


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()


@contextlib.contextmanager
def network_namespaces() -> Iterator[Callable[[str], PodNetwork]]:
    """`make(label)` gives a new PodNetwork; all are removed at the end. The bridges run on an
    event loop of their own, so a test that blocks (podman stop) does not stall the pods."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    made: list[PodNetwork] = []

    def make(label: str) -> PodNetwork:
        name = f"kn-{label}-{uuid.uuid4().hex[:6]}"
        subprocess.run(["ip", "netns", "add", name], check=True, capture_output=True)
        network = PodNetwork(name, f"/run/netns/{name}", loop)
        made.append(network)
        subprocess.run(
            ["ip", "-n", name, "link", "set", "lo", "up"], check=True, capture_output=True
        )
        return network

    try:
        yield make
    finally:
        for network in made:
            for server in network.servers:
                loop.call_soon_threadsafe(server.close)
            subprocess.run(["ip", "netns", "delete", network.name], check=False)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


# ------------------------------------------------------------------ running a pod


@dataclass
class Pod:
    """One replica: a podman container from the rendered Deployment, in its own network."""

    name: str
    container: str
    network: PodNetwork
    probe_url: str
    log: Path

    def logs(self) -> str:
        answer = subprocess.run(
            [*podman_command(), "logs", self.container],
            capture_output=True,
            text=True,
            check=False,
        )
        text = answer.stdout + answer.stderr
        self.log.write_text(text)
        return text

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.logs().splitlines()[-lines:]) or "(empty log)"

    def running(self) -> bool:
        answer = subprocess.run(
            [*podman_command(), "inspect", "--format={{.State.Running}}", self.container],
            capture_output=True,
            text=True,
            check=False,
        )
        return answer.stdout.strip() == "true"

    def stop(self, grace: int) -> int:
        """`podman stop` (SIGTERM, SIGKILL after `grace`), as the kubelet stops a pod; the
        container's exit code."""
        subprocess.run(
            [*podman_command(), "stop", f"--time={grace}", self.container],
            capture_output=True,
            check=False,
        )
        answer = subprocess.run(
            [*podman_command(), "inspect", "--format={{.State.ExitCode}}", self.container],
            capture_output=True,
            text=True,
            check=True,
        )
        return int(answer.stdout.strip())

    def remove(self) -> None:
        self.logs()
        subprocess.run(
            [*podman_command(), "rm", "--force", "--time=0", self.container],
            capture_output=True,
            check=False,
        )


def start_pod(
    settings: PodSettings,
    *,
    name: str,
    network: PodNetwork,
    token: str,
    ca: bytes,
    apiserver_port: int,
    directory: Path,
) -> Pod:
    """Starts one replica detached; the kubelet's part (token, CA, Service env) added."""
    root = directory / name
    mounts = dict(settings.files)
    mounts[SERVICE_ACCOUNT_DIR] = {
        "token": token.encode(),
        "ca.crt": ca,
        "namespace": settings.namespace.encode(),
    }
    volume_args = []
    for index, (target, files) in enumerate(sorted(mounts.items())):
        source = root / f"volume-{index}"
        source.mkdir(parents=True)
        source.chmod(0o755)
        for file_name, content in files.items():
            (source / file_name).write_bytes(content)
            (source / file_name).chmod(0o444)
        volume_args.append(f"--volume={source}:{target}:ro")
    env = {
        **settings.env,
        "KUBERNETES_SERVICE_HOST": "127.0.0.1",
        "KUBERNETES_SERVICE_PORT": str(apiserver_port),
    }
    env_file = root / "env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in sorted(env.items())))
    container = f"{name}-{uuid.uuid4().hex[:6]}"
    started = subprocess.run(
        [
            *podman_command(),
            "run",
            "--detach",
            f"--name={container}",
            f"--network=ns:{network.path}",
            "--pull=never",
            f"--stop-timeout={settings.grace}",
            f"--env-file={env_file}",
            *settings.podman_args,
            *ulimits(),
            *volume_args,
            settings.image,
            *settings.args,
        ],
        check=False,
        capture_output=True,
        text=True,
    )
    if started.returncode != 0:
        # A container that failed to start is still created: remove it.
        subprocess.run([*podman_command(), "rm", "--force", container], capture_output=True)
        raise AssertionError(f"podman run {name}: {started.stderr.strip()}")
    probe = network.outward(settings.probe_port)
    return Pod(name, container, network, f"http://127.0.0.1:{probe}", root / "container.log")


def token_request_body(seconds: int = 3600) -> dict[str, Any]:
    return {
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenRequest",
        "spec": {"expirationSeconds": seconds},
    }


def kube_paths(obj: Mapping[str, Any]) -> tuple[str, str]:
    """(collection path, object path) of a rendered object on the API server."""
    group_version = obj["apiVersion"]
    base = "/api/v1" if group_version == "v1" else f"/apis/{group_version}"
    plural = {
        "ServiceAccount": "serviceaccounts",
        "Role": "roles",
        "RoleBinding": "rolebindings",
        "ClusterRole": "clusterroles",
        "ClusterRoleBinding": "clusterrolebindings",
        "ConfigMap": "configmaps",
        "Secret": "secrets",
        "Service": "services",
    }[obj["kind"]]
    namespace = obj["metadata"].get("namespace")
    collection = f"{base}/namespaces/{namespace}/{plural}" if namespace else f"{base}/{plural}"
    return collection, f"{collection}/{obj['metadata']['name']}"
