"""The end-to-end harness: real etcd and kube-apiserver, and the processes the tests run.

`ControlPlane.start()` generates a PKI with `cryptography` (a CA, a serving certificate for
127.0.0.1 and localhost, an admin client certificate in ``system:masters`` and a
service-account key pair), starts etcd and kube-apiserver on loopback ports, waits for
``/readyz`` and writes an admin kubeconfig. Everything lives in one temporary directory, logs
included; a start that fails raises `StartError` with the last lines of the failing log.

`Process` runs one child with stdout and stderr in files, stops it with SIGTERM then SIGKILL,
and shows the tail of its log; `NetmakerServer` is the real Netmaker (v1.5.1 CE, sqlite, no
message broker) started offline in a directory of its own; `Kube` is a small async client for
the real API with the admin certificate, for what the tests do to the cluster directly.
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import json
import os
import signal
import socket
import ssl
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import httpx2
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

START_TIMEOUT = 120.0  # seconds for kube-apiserver to answer /readyz
STOP_GRACE = 10.0  # seconds between SIGTERM and SIGKILL
SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"
SERVICE_CIDR = "10.96.0.0/24"
TAIL_LINES = 30


class StartError(Exception):
    """A peer did not start; the message says which and ends with the tail of its log."""


def free_port() -> int:
    """A loopback port that was free a moment ago (the peers need a number, not port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# ------------------------------------------------------------------ processes


class Process:
    """One child process; stdout goes to ``<name>.out``, stderr to ``<name>.log``."""

    def __init__(
        self,
        name: str,
        args: Sequence[str],
        *,
        directory: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        one_log: bool = False,
    ) -> None:
        self.name = name
        self.args = list(args)
        self.env = dict(env) if env is not None else None
        self.cwd = cwd
        self.log = directory / f"{name}.log"
        # one_log: stdout goes to the log too, for programs that log on both.
        self.out = self.log if one_log else directory / f"{name}.out"
        self._popen: subprocess.Popen[bytes] | None = None
        self._files: list[IO[bytes]] = []

    def start(self) -> Process:
        err = self.log.open("ab")
        out = err if self.out == self.log else self.out.open("ab")
        self._files = [out, err] if out is not err else [err]
        self._popen = subprocess.Popen(
            self.args,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            env=self.env,
            cwd=self.cwd,
            start_new_session=True,  # a ^C in the terminal reaches pytest only
        )
        return self

    @property
    def popen(self) -> subprocess.Popen[bytes]:
        if self._popen is None:
            raise RuntimeError(f"{self.name} was never started")
        return self._popen

    def running(self) -> bool:
        return self._popen is not None and self._popen.poll() is None

    def wait(self, timeout: float) -> int:
        """The exit code; raises subprocess.TimeoutExpired if still running after timeout."""
        code = self.popen.wait(timeout)
        self._close_files()
        return code

    def terminate(self) -> None:
        """SIGTERM, without waiting."""
        if self.running():
            self.popen.send_signal(signal.SIGTERM)

    def kill(self) -> int:
        """SIGKILL (kill -9) and reap."""
        if self.running():
            self.popen.kill()
        return self.wait(STOP_GRACE)

    def stop(self, grace: float = STOP_GRACE) -> int | None:
        """SIGTERM, then SIGKILL after `grace` seconds; the exit code (None: never started)."""
        if self._popen is None:
            return None
        self.terminate()
        try:
            return self.wait(grace)
        except subprocess.TimeoutExpired:
            return self.kill()

    def tail(self, lines: int = TAIL_LINES) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:]) or "(empty log)"

    def first_line(self, within: float) -> str:
        """The first complete line on stdout, waiting up to `within` seconds for it."""
        give_up = time.monotonic() + within
        while True:
            text = self.out.read_text(errors="replace") if self.out.exists() else ""
            if "\n" in text:
                return text.split("\n", 1)[0].strip()
            if not self.running():
                raise StartError(self.failure("exited before printing anything"))
            if time.monotonic() > give_up:
                raise StartError(self.failure(f"printed nothing within {within:g}s"))
            time.sleep(0.05)

    def failure(self, what: str) -> str:
        code = self._popen.poll() if self._popen else None
        status = "" if code is None else f" (exit code {code})"
        return f"{self.name} {what}{status}; last lines of {self.log}:\n{self.tail()}"

    def _close_files(self) -> None:
        for handle in self._files:
            handle.close()
        self._files = []


# ------------------------------------------------------------------ certificates


@dataclass(frozen=True)
class Pki:
    ca_cert: Path
    serving_cert: Path
    serving_key: Path
    admin_cert: Path
    admin_key: Path
    service_account_public: Path
    service_account_private: Path

    @classmethod
    def create(cls, directory: Path) -> Pki:
        directory.mkdir(parents=True, exist_ok=True)
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kaput-not-e2e-ca")])
        ca = _certificate(ca_name, ca_key.public_key(), ca_name, ca_key, ca=True)
        serving_key = ec.generate_private_key(ec.SECP256R1())
        serving = _certificate(
            x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")]),
            serving_key.public_key(),
            ca_name,
            ca_key,
            usage=ExtendedKeyUsageOID.SERVER_AUTH,
            names=[
                x509.DNSName("localhost"),
                x509.DNSName("kubernetes"),
                x509.DNSName("kubernetes.default"),
                x509.DNSName("kubernetes.default.svc"),
                x509.DNSName("kubernetes.default.svc.cluster.local"),
                x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                x509.IPAddress(ipaddress.ip_address("10.96.0.1")),
            ],
        )
        admin_key = ec.generate_private_key(ec.SECP256R1())
        admin = _certificate(
            x509.Name(
                [
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, "system:masters"),
                    x509.NameAttribute(NameOID.COMMON_NAME, "kaput-not-e2e-admin"),
                ]
            ),
            admin_key.public_key(),
            ca_name,
            ca_key,
            usage=ExtendedKeyUsageOID.CLIENT_AUTH,
        )
        sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pki = cls(
            ca_cert=directory / "ca.crt",
            serving_cert=directory / "apiserver.crt",
            serving_key=directory / "apiserver.key",
            admin_cert=directory / "admin.crt",
            admin_key=directory / "admin.key",
            service_account_public=directory / "sa.pub",
            service_account_private=directory / "sa.key",
        )
        pki.ca_cert.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
        pki.serving_cert.write_bytes(serving.public_bytes(serialization.Encoding.PEM))
        pki.admin_cert.write_bytes(admin.public_bytes(serialization.Encoding.PEM))
        _write_key(pki.serving_key, serving_key)
        _write_key(pki.admin_key, admin_key)
        _write_key(pki.service_account_private, sa_key)
        pki.service_account_public.write_bytes(
            sa_key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
        return pki

    def context(self, *, admin: bool) -> ssl.SSLContext:
        """TLS that trusts our CA; with the admin client certificate when `admin`."""
        context = ssl.create_default_context(cafile=str(self.ca_cert))
        if admin:
            context.load_cert_chain(str(self.admin_cert), str(self.admin_key))
        return context


def _certificate(
    subject: x509.Name,
    public_key: ec.EllipticCurvePublicKey,
    issuer: x509.Name,
    issuer_key: ec.EllipticCurvePrivateKey,
    *,
    ca: bool = False,
    usage: x509.ObjectIdentifier | None = None,
    names: Sequence[x509.GeneralName] = (),
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=ca,
                crl_sign=ca,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
            critical=False,
        )
    )
    if usage is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)


# ------------------------------------------------------------------ the control plane


@dataclass
class ControlPlane:
    directory: Path
    pki: Pki
    etcd: Process
    apiserver: Process
    url: str
    admin_kubeconfig: Path

    @classmethod
    def start(cls, *, etcd_binary: str, apiserver_binary: str, directory: Path) -> ControlPlane:
        """etcd, then kube-apiserver, both ready; on failure both are stopped again."""
        pki = Pki.create(directory / "pki")
        etcd = _etcd(etcd_binary, directory)
        started: list[Process] = [etcd]
        try:
            etcd.start()
            etcd_url = _wait_for_etcd(etcd)
            port = free_port()
            apiserver = _apiserver(apiserver_binary, directory, pki, etcd_url, port)
            started.append(apiserver)
            apiserver.start()
            url = f"https://127.0.0.1:{port}"
            _wait_for_apiserver(apiserver, url, pki)
        except BaseException:
            for process in reversed(started):
                process.stop()
            raise
        plane = cls(directory, pki, etcd, apiserver, url, directory / "admin.kubeconfig")
        plane.write_kubeconfig(
            plane.admin_kubeconfig,
            user={
                "client-certificate": str(pki.admin_cert),
                "client-key": str(pki.admin_key),
            },
        )
        return plane

    def stop(self) -> None:
        self.apiserver.stop()
        self.etcd.stop()

    def write_kubeconfig(self, path: Path, *, user: Mapping[str, str]) -> Path:
        """A kubeconfig for this API server, our CA and the given user entry."""
        document = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "e2e",
                    "cluster": {"server": self.url, "certificate-authority": str(self.pki.ca_cert)},
                }
            ],
            "users": [{"name": "e2e-user", "user": dict(user)}],
            "contexts": [{"name": "e2e", "context": {"cluster": "e2e", "user": "e2e-user"}}],
            "current-context": "e2e",
        }
        path.write_text(json.dumps(document, indent=2))  # JSON is YAML: any reader takes it
        path.chmod(0o600)
        return path

    def kube(self) -> Kube:
        return Kube(self.url, self.pki.context(admin=True))


def _etcd(binary: str, directory: Path) -> Process:
    client, peer = f"http://127.0.0.1:{free_port()}", f"http://127.0.0.1:{free_port()}"
    return Process(
        "etcd",
        [
            binary,
            "--name=e2e",
            f"--data-dir={directory / 'etcd-data'}",
            f"--listen-client-urls={client}",
            f"--advertise-client-urls={client}",
            f"--listen-peer-urls={peer}",
            f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=e2e={peer}",
            "--initial-cluster-state=new",
            "--unsafe-no-fsync",
            "--log-level=warn",
        ],
        directory=directory,
    )


def _wait_for_etcd(etcd: Process) -> str:
    url = next(a.split("=", 1)[1] for a in etcd.args if a.startswith("--listen-client-urls="))
    give_up = time.monotonic() + 30
    with httpx2.Client(timeout=2, trust_env=False) as http:
        while True:
            with contextlib.suppress(httpx2.HTTPError, ValueError):  # not up, or not JSON yet
                if http.get(f"{url}/health").json().get("health") == "true":
                    return url
            if not etcd.running():
                raise StartError(etcd.failure("exited during start-up"))
            if time.monotonic() > give_up:
                raise StartError(etcd.failure("was not healthy within 30s"))
            time.sleep(0.1)


def _apiserver(binary: str, directory: Path, pki: Pki, etcd_url: str, port: int) -> Process:
    certs = directory / "apiserver-certs"
    certs.mkdir(exist_ok=True)
    return Process(
        "kube-apiserver",
        [
            binary,
            f"--etcd-servers={etcd_url}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={port}",
            f"--cert-dir={certs}",
            f"--tls-cert-file={pki.serving_cert}",
            f"--tls-private-key-file={pki.serving_key}",
            f"--client-ca-file={pki.ca_cert}",
            f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
            f"--service-account-key-file={pki.service_account_public}",
            f"--service-account-signing-key-file={pki.service_account_private}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--authorization-mode=Node,RBAC",
            # The "kubernetes" Service's endpoints would name 127.0.0.1, which the endpoint
            # validation refuses; nothing here runs in a pod, so nobody needs them.
            "--endpoint-reconciler-type=none",
            "--profiling=false",
            "--v=1",
        ],
        directory=directory,
    )


def _wait_for_apiserver(apiserver: Process, url: str, pki: Pki) -> None:
    give_up = time.monotonic() + START_TIMEOUT
    last = "no answer yet"
    with httpx2.Client(
        base_url=url, verify=pki.context(admin=True), timeout=5, trust_env=False
    ) as http:
        while True:
            try:
                ready = http.get("/readyz")
                last = f"/readyz: {ready.status_code} {ready.text[-200:]!r}"
                # kube-system appears just after readiness (a post-start controller makes it).
                if ready.status_code == 200:
                    system = http.get("/api/v1/namespaces/kube-system")
                    last = f"GET kube-system: {system.status_code}"
                    if system.status_code == 200:
                        return
            except httpx2.HTTPError as exc:
                last = f"{type(exc).__name__}: {exc}"
            if not apiserver.running():
                raise StartError(apiserver.failure("exited during start-up"))
            if time.monotonic() > give_up:
                raise StartError(
                    apiserver.failure(f"was not ready within {START_TIMEOUT:g}s ({last})")
                )
            time.sleep(0.2)


# ------------------------------------------------------------------ talking to the cluster


class KubeCallError(AssertionError):
    """The API server answered a test's own call with an unexpected status."""


class Kube:
    """The real API with the admin certificate: nodes, Leases and raw calls."""

    def __init__(self, url: str, context: ssl.SSLContext) -> None:
        self.http = httpx2.AsyncClient(base_url=url, verify=context, timeout=30, trust_env=False)

    async def aclose(self) -> None:
        await self.http.aclose()

    async def call(
        self,
        method: str,
        path: str,
        *,
        body: object = None,
        expect: Sequence[int] = (200, 201),
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        content = None if body is None else json.dumps(body).encode()
        sent = {"Content-Type": "application/json", **(headers or {})}
        answer = await self.http.request(method, path, content=content, headers=sent)
        if answer.status_code not in expect:
            raise KubeCallError(
                f"{method} {path} answered {answer.status_code}: {answer.text[:500]}"
            )
        return answer.json() if answer.content else None

    async def create_node(
        self,
        name: str,
        *pod_cidrs: str,
        annotations: Mapping[str, str] | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        spec: dict[str, object] = {}
        if pod_cidrs:
            spec = {"podCIDR": pod_cidrs[0], "podCIDRs": list(pod_cidrs)}
        metadata: dict[str, object] = {"name": name}
        if annotations:
            metadata["annotations"] = dict(annotations)
        if labels:
            metadata["labels"] = dict(labels)
        node = {"apiVersion": "v1", "kind": "Node", "metadata": metadata, "spec": spec}
        created: dict[str, Any] = await self.call("POST", "/api/v1/nodes", body=node)
        return created

    async def patch_node_metadata(self, name: str, **metadata: Mapping[str, str | None]) -> None:
        """A JSON merge patch of the node's metadata (`labels=`, `annotations=`; None removes
        a key), as `kubectl label` / `kubectl annotate` send."""
        await self.call(
            "PATCH",
            f"/api/v1/nodes/{name}",
            body={"metadata": metadata},
            headers={"Content-Type": "application/merge-patch+json"},
        )

    async def delete_node(self, name: str) -> None:
        await self.call("DELETE", f"/api/v1/nodes/{name}")

    async def node_names(self) -> set[str]:
        listing = await self.call("GET", "/api/v1/nodes")
        return {item["metadata"]["name"] for item in listing["items"]}

    async def delete_all_nodes(self) -> None:
        """Every node goes (nodes have no finalizers, so the collection delete is final)."""
        await self.call("DELETE", "/api/v1/nodes")
        left = await self.node_names()
        if left:
            raise KubeCallError(f"nodes left after a collection delete: {sorted(left)}")

    async def lease(self, namespace: str, name: str) -> dict[str, Any] | None:
        path = f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/{name}"
        lease: dict[str, Any] | None = await self.call("GET", path, expect=(200, 404))
        if lease is None or lease.get("kind") == "Status":
            return None
        return lease

    async def holder(self, namespace: str, name: str) -> str | None:
        """The Lease's holderIdentity: None without a Lease, "" when released."""
        lease = await self.lease(namespace, name)
        if lease is None:
            return None
        return str(lease.get("spec", {}).get("holderIdentity") or "")

    async def ensure_namespace(self, name: str) -> None:
        body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
        await self.call("POST", "/api/v1/namespaces", body=body, expect=(201, 409))


# ------------------------------------------------------------------ the Netmaker emulator


@dataclass
class NetmakerServer:
    """A real Netmaker server: v1.5.1 CE on sqlite, no message broker, nothing asked of the
    internet (docs/netmaker-api.md section 7), with its database in ``directory/data``.

    A server started again on the same directory and port keeps its users, hosts and rules.
    """

    process: Process
    url: str
    port: int
    master_key: str

    @classmethod
    def start(
        cls,
        binary: str,
        directory: Path,
        *,
        port: int | None = None,
        master_key: str = "",
        name: str = "netmaker",
        within: float = 30.0,
    ) -> NetmakerServer:
        directory.mkdir(parents=True, exist_ok=True)
        port = port or free_port()
        url = f"http://127.0.0.1:{port}"
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(directory),
            "API_PORT": str(port),
            "MESSAGEQUEUE_BACKEND": "off",
            "DISABLE_REMOTE_IP_CHECK": "on",
            "SERVER_HTTP_HOST": "localhost",
            # Every public-IP lookup asks this first: its own health page answers at once.
            "PUBLIC_IP_SERVICE": f"{url}/api/server/health",
            "TELEMETRY": "off",
            "VERBOSITY": "1",
            "MASTER_KEY": master_key,
        }
        process = Process(name, [binary], directory=directory, env=env, cwd=directory, one_log=True)
        process.start()
        try:
            _wait_for_health(process, f"{url}/api/server/health", within)
        except BaseException:
            process.stop()
            raise
        return cls(process, url, port, master_key)

    def restart(self, within: float = 30.0) -> None:
        """Start the stopped server again on the same port and database."""
        self.process.start()
        _wait_for_health(self.process, f"{self.url}/api/server/health", within)


def _wait_for_health(process: Process, url: str, within: float) -> None:
    give_up = time.monotonic() + within
    while True:
        if not process.running():
            raise StartError(process.failure("exited before it answered"))
        try:
            answer = httpx2.get(url, timeout=2, trust_env=False)
        except httpx2.TransportError:
            pass
        else:
            if answer.status_code == 200:
                return
        if time.monotonic() > give_up:
            raise StartError(process.failure(f"did not answer {url} within {within:g}s"))
        time.sleep(0.05)
