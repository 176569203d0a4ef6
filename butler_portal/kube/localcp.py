"""A real, local Kubernetes control plane (etcd + kube-apiserver), envtest-style.

Used by the tests, CI and the embedded development mode: a genuine API server with real
validation (OpenAPI + CEL), server-side apply, watches and RBAC, and the upstream CRDs from
the vendored upstream CRDs (``crds/`` beside this module) installed, but no controllers, nodes or containers.

    with LocalControlPlane() as control_plane:
        client = control_plane.client()

Command line (for a Makefile or CI):

    python -m butler_portal.kube.localcp ensure-binaries
    python -m butler_portal.kube.localcp up --dir DIR   # runs until killed

No Django imports: this runs before (and without) any settings.
"""

from __future__ import annotations

import argparse
import atexit
import base64
import contextlib
import http.client
import json
import logging
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, TextIO

import yaml

from butler_portal.kube import binaries, pki
from butler_portal.kube.adapter import KubeClient, Manifest
from butler_portal.kube.errors import KubeError

logger = logging.getLogger(__name__)

ADMIN_USER = "admin"
ADMIN_GROUPS = ("system:masters",)
# The identity the API server proxies aggregated API requests with (kubeadm's name for it).
FRONT_PROXY_CLIENT = "front-proxy-client"
LOOPBACK = "127.0.0.1"
STARTUP_TIMEOUT_SECONDS = 90.0
STOP_TIMEOUT_SECONDS = 10.0
CRD_ESTABLISHED_TIMEOUT_SECONDS = 30.0
CRD_API_VERSION = "apiextensions.k8s.io/v1"
# The CRDs are 5 MB of YAML: libyaml's safe loader reads them in a second, pure Python in ten.
YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


#: The upstream CRDs the local API server serves, vendored with their sources (``SOURCES.md``):
#: the portal reads nothing outside the repository when it runs. ``scripts/sync-crds.sh``
#: refreshes them from the reference copy and ``tests/kube/test_vendored_crds.py`` keeps them
#: identical to it.
VENDORED_CRD_DIR = Path(__file__).resolve().parent / "crds"


def default_crd_dir() -> Path:
    return VENDORED_CRD_DIR


def load_crds(crd_dir: Path) -> list[Manifest]:
    """Every CustomResourceDefinition in ``<crd_dir>/<group>/*.yaml``, ready to apply.

    Some generated files carry an empty top-level ``status``: a client must not send it, so it
    is dropped here (the file itself stays untouched).
    """
    crds: list[Manifest] = []
    for path in sorted(crd_dir.glob("*/*.yaml")):
        if path.parent.name == "examples":
            continue
        for document in yaml.load_all(path.read_text(), Loader=YAML_LOADER):
            if document and document.get("kind") == "CustomResourceDefinition":
                document.pop("status", None)
                crds.append(document)
    return crds


def free_loopback_port() -> int:
    # The port is released before the server binds it; a collision is possible but rare,
    # and the same trade-off envtest makes.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, 0))
        port: int = probe.getsockname()[1]
        return port


class ControlPlaneError(RuntimeError):
    """The local control plane could not start or misbehaved."""


class _ManagedProcess:
    """A child process in its own process group, with its output in a log file."""

    def __init__(self, name: str, command: Sequence[str], log_path: Path) -> None:
        self.name = name
        self.log_path = log_path
        self._log: TextIO = log_path.open("a")
        logger.debug("starting %s: %s", name, " ".join(command))
        # Own session: stopping the group also stops anything the binary spawned, and a
        # Ctrl-C aimed at the parent's terminal does not kill it before we clean up.
        self._process = subprocess.Popen(  # noqa: S603 (our own binaries, our own flags)
            command, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def is_running(self) -> bool:
        return self._process.poll() is None

    def stop(self) -> None:
        if self.is_running():
            self._signal_group(signal.SIGTERM)
            try:
                self._process.wait(STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                self._signal_group(signal.SIGKILL)
                self._process.wait()
        self._log.close()

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def _signal_group(self, signum: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError):  # already gone
            os.killpg(self._process.pid, signum)


class LocalControlPlane:
    """etcd + kube-apiserver on loopback, with an admin kubeconfig and the CRDs installed.

    ``root_dir`` holds certificates, etcd data, logs and kubeconfigs. Without one, a temporary
    folder is created and removed on ``stop()``; a given folder is kept (and its etcd data
    reused on the next start).

    ``watch_cache=False`` makes the API server serve watches from etcd, as it does for a
    resourceVersion its cache no longer holds: with ``compact_etcd()`` a test can then expire
    any earlier resourceVersion at will (with the cache on, only versions older than the
    cache's start, e.g. "1" for a custom resource, answer 410 Gone).
    """

    def __init__(
        self,
        *,
        root_dir: Path | None = None,
        crd_dir: Path | None = None,
        install_crds: bool = True,
        watch_cache: bool = True,
        startup_timeout: float = STARTUP_TIMEOUT_SECONDS,
    ) -> None:
        self._owns_root_dir = root_dir is None
        self.root_dir = root_dir or Path(tempfile.mkdtemp(prefix="butler-localcp-"))
        self.crd_dir = crd_dir or default_crd_dir()
        self.install_crds_on_start = install_crds
        self.watch_cache = watch_cache
        self.startup_timeout = startup_timeout
        self._pki_dir = self.root_dir / "pki"
        self._log_dir = self.root_dir / "logs"
        self._ca: pki.CertificateAuthority | None = None
        self._etcd: _ManagedProcess | None = None
        self._apiserver: _ManagedProcess | None = None
        self._binaries: binaries.Binaries | None = None
        self.etcd_port = 0
        self.apiserver_port = 0

    # --- Addresses ----------------------------------------------------------------------

    @property
    def server_url(self) -> str:
        return f"https://{LOOPBACK}:{self.apiserver_port}"

    @property
    def etcd_url(self) -> str:
        return f"http://{LOOPBACK}:{self.etcd_port}"

    @property
    def kubeconfig_path(self) -> Path:
        """The admin kubeconfig (user ``admin`` in group ``system:masters``)."""
        return self.root_dir / "kubeconfig"

    # --- Lifecycle ----------------------------------------------------------------------

    def start(self) -> LocalControlPlane:
        # A forgotten stop() must not leave etcd and kube-apiserver running after we exit.
        atexit.register(self.stop)
        try:
            self._binaries = binaries.ensure_binaries()
            for folder in (self._pki_dir, self._log_dir):
                folder.mkdir(parents=True, exist_ok=True)
            self._write_pki()
            self.etcd_port = free_loopback_port()
            self.apiserver_port = free_loopback_port()
            self._start_etcd()
            self.start_apiserver()
            self.kubeconfig_for(ADMIN_USER, ADMIN_GROUPS, path=self.kubeconfig_path)
            if self.install_crds_on_start:
                self.install_crds(load_crds(self.crd_dir))
        except BaseException:
            self.stop()
            raise
        logger.info("local control plane ready at %s (%s)", self.server_url, self.kubeconfig_path)
        return self

    def stop(self) -> None:
        """Stop both processes; remove the working folder if this object created it."""
        atexit.unregister(self.stop)
        self.stop_apiserver()
        if self._etcd is not None:
            self._etcd.stop()
            self._etcd = None
        if self._owns_root_dir:
            shutil.rmtree(self.root_dir, ignore_errors=True)

    def __enter__(self) -> LocalControlPlane:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def stop_apiserver(self) -> None:
        if self._apiserver is not None:
            self._apiserver.stop()
            self._apiserver = None

    def start_apiserver(self) -> None:
        """Start kube-apiserver on ``apiserver_port`` against the running etcd; wait for /readyz."""
        if self._binaries is None or self._etcd is None:
            raise ControlPlaneError("start() the control plane first")
        if self._apiserver is not None:
            raise ControlPlaneError("kube-apiserver is already running")
        self._apiserver = _ManagedProcess(
            "kube-apiserver",
            [str(self._binaries.kube_apiserver), *self._apiserver_flags()],
            self._log_dir / "kube-apiserver.log",
        )
        self._wait_until_ready(self._apiserver, self._apiserver_is_ready)

    def restart_apiserver(self) -> None:
        """Stop and start kube-apiserver on the same port and etcd data (clients keep working)."""
        self.stop_apiserver()
        self.start_apiserver()

    # --- Clients and identities ----------------------------------------------------------

    def client(self) -> KubeClient:
        """A client with the admin identity."""
        return KubeClient.from_kubeconfig(self.kubeconfig_path)

    def client_for(self, user: str, groups: Sequence[str] = ()) -> KubeClient:
        """A client authenticated as ``user`` in ``groups`` (RBAC decides what it may do)."""
        return KubeClient.from_kubeconfig(self.kubeconfig_for(user, groups))

    def kubeconfig_for(
        self, user: str, groups: Sequence[str] = (), *, path: Path | None = None
    ) -> Path:
        """Mint a client certificate for ``user``/``groups`` and write a kubeconfig using it."""
        credentials = self._certificate_authority.issue_client_certificate(user, groups)
        file_name = "kubeconfig-" + re.sub(r"[^\w.-]", "_", user)
        path = path or self.root_dir / file_name
        kubeconfig = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "local",
                    "cluster": {
                        "server": self.server_url,
                        "certificate-authority-data": _b64(
                            self._certificate_authority.certificate_pem
                        ),
                    },
                }
            ],
            "users": [
                {
                    "name": user,
                    "user": {
                        "client-certificate-data": _b64(credentials.certificate_pem),
                        "client-key-data": _b64(credentials.private_key_pem),
                    },
                }
            ],
            "contexts": [{"name": "local", "context": {"cluster": "local", "user": user}}],
            "current-context": "local",
        }
        _write_private(path, yaml.safe_dump(kubeconfig).encode())
        return path

    # --- CRDs -----------------------------------------------------------------------------

    def install_crds(self, crds: Sequence[Manifest]) -> None:
        """Apply CRDs and wait until the API server serves each of them."""
        with self.client() as admin:
            for crd in crds:
                admin.apply(crd)
            for crd in crds:
                self._wait_until_established(admin, crd["metadata"]["name"])
        logger.info("installed %d CRDs from %s", len(crds), self.crd_dir)

    def _wait_until_established(self, admin: KubeClient, name: str) -> None:
        deadline = time.monotonic() + CRD_ESTABLISHED_TIMEOUT_SECONDS
        while True:
            crd = admin.get(CRD_API_VERSION, "CustomResourceDefinition", name)
            conditions = (crd.get("status") or {}).get("conditions") or []  # null until set
            if any(c["type"] == "Established" and c["status"] == "True" for c in conditions):
                return
            if time.monotonic() > deadline:
                raise ControlPlaneError(f"CRD {name} not Established: {conditions}")
            time.sleep(0.1)

    # --- etcd -----------------------------------------------------------------------------

    def compact_etcd(self) -> int:
        """Compact etcd history up to its current revision; return that revision.

        Makes older resourceVersions unavailable, as in a long-running cluster; watches see
        it when the API server runs without its watch cache (``watch_cache=False``).
        Uses etcd's JSON gateway (gRPC-gateway: int64 travels as a string, keys as base64).
        """
        any_key = _b64(b"\0")
        revision = int(self._etcd_call("/v3/kv/range", {"key": any_key})["header"]["revision"])
        self._etcd_call("/v3/kv/compaction", {"revision": str(revision), "physical": True})
        return revision

    def _etcd_call(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        status, answer = _loopback_request(
            http.client.HTTPConnection(LOOPBACK, self.etcd_port, timeout=10), "POST", path, body
        )
        if status != 200:
            raise ControlPlaneError(f"etcd {path} answered {status}: {answer}")
        return answer

    def _start_etcd(self) -> None:
        assert self._binaries is not None
        peer_url = f"http://{LOOPBACK}:{free_loopback_port()}"
        self._etcd = _ManagedProcess(
            "etcd",
            [
                str(self._binaries.etcd),
                "--name=local",
                f"--data-dir={self.root_dir / 'etcd'}",
                f"--listen-client-urls={self.etcd_url}",
                f"--advertise-client-urls={self.etcd_url}",
                f"--listen-peer-urls={peer_url}",
                f"--initial-advertise-peer-urls={peer_url}",
                f"--initial-cluster=local={peer_url}",
                # Durability is pointless for throwaway test data, and fsync is the slow part.
                "--unsafe-no-fsync",
                "--log-level=warn",
            ],
            self._log_dir / "etcd.log",
        )
        self._wait_until_ready(self._etcd, self._etcd_is_ready)

    def _etcd_is_ready(self) -> bool:
        connection = http.client.HTTPConnection(LOOPBACK, self.etcd_port, timeout=2)
        try:
            status, health = _loopback_request(connection, "GET", "/health")
        except (OSError, ValueError):
            return False
        return status == 200 and health.get("health") == "true"

    # --- kube-apiserver ---------------------------------------------------------------------

    @property
    def _certificate_authority(self) -> pki.CertificateAuthority:
        if self._ca is None:
            raise ControlPlaneError("start() the control plane first")
        return self._ca

    def _write_pki(self) -> None:
        self._ca = pki.CertificateAuthority()
        serving = self._ca.issue_serving_certificate([LOOPBACK, "localhost"])
        service_account_key = pki.new_private_key()
        files = {
            "ca.crt": self._ca.certificate_pem,
            "apiserver.crt": serving.certificate_pem,
            "apiserver.key": serving.private_key_pem,
            "service-account.key": pki.private_key_pem(service_account_key),
            "service-account.pub": pki.public_key_pem(service_account_key),
        }
        for name, content in files.items():
            _write_private(self._pki_dir / name, content)
        # The readiness probe authenticates as admin, like any client.
        probe = self._ca.issue_client_certificate("readiness-probe", ADMIN_GROUPS)
        _write_private(self._pki_dir / "probe.crt", probe.certificate_pem)
        _write_private(self._pki_dir / "probe.key", probe.private_key_pem)
        # The aggregation layer (kube-aggregator) proxies aggregated APIs, such as KubeVirt's
        # subresources.kubevirt.io, with this client certificate and names the real caller in
        # X-Remote-* headers; the aggregated server trusts those headers only from a client
        # signed by the front-proxy CA. A CA of its own, as kubeadm does: with the client CA,
        # any user's certificate could claim to be any other user.
        front_proxy_ca = pki.CertificateAuthority("butler-local-front-proxy-ca")
        front_proxy = front_proxy_ca.issue_client_certificate(FRONT_PROXY_CLIENT)
        _write_private(self._pki_dir / "front-proxy-ca.crt", front_proxy_ca.certificate_pem)
        _write_private(self._pki_dir / "front-proxy-client.crt", front_proxy.certificate_pem)
        _write_private(self._pki_dir / "front-proxy-client.key", front_proxy.private_key_pem)

    def _apiserver_flags(self) -> list[str]:
        pki_dir = self._pki_dir
        return [
            f"--etcd-servers={self.etcd_url}",
            f"--secure-port={self.apiserver_port}",
            f"--bind-address={LOOPBACK}",
            f"--advertise-address={LOOPBACK}",
            f"--cert-dir={pki_dir}",
            f"--tls-cert-file={pki_dir / 'apiserver.crt'}",
            f"--tls-private-key-file={pki_dir / 'apiserver.key'}",
            f"--client-ca-file={pki_dir / 'ca.crt'}",
            f"--service-account-key-file={pki_dir / 'service-account.pub'}",
            f"--service-account-signing-key-file={pki_dir / 'service-account.key'}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            "--service-cluster-ip-range=10.0.0.0/24",
            "--allow-privileged=true",
            # Open watches (the simulator's, the watcher's) end within a second of SIGTERM;
            # without it the server waits for them until it is killed (10 s at every stop).
            "--shutdown-watch-termination-grace-period=1s",
            "--authorization-mode=RBAC",
            # No controller-manager creates ServiceAccount tokens: this plug-in would reject pods.
            "--disable-admission-plugins=ServiceAccount",
            # Without the cache, watches read etcd directly, so compact_etcd() expires old versions.
            f"--watch-cache={str(self.watch_cache).lower()}",
            # The aggregation layer (see _write_pki): the API server publishes the CA and names
            # in kube-system/extension-apiserver-authentication for aggregated servers to check.
            f"--requestheader-client-ca-file={pki_dir / 'front-proxy-ca.crt'}",
            f"--requestheader-allowed-names={FRONT_PROXY_CLIENT}",
            "--requestheader-username-headers=X-Remote-User",
            "--requestheader-group-headers=X-Remote-Group",
            "--requestheader-extra-headers-prefix=X-Remote-Extra-",
            f"--proxy-client-cert-file={pki_dir / 'front-proxy-client.crt'}",
            f"--proxy-client-key-file={pki_dir / 'front-proxy-client.key'}",
        ]

    def _apiserver_is_ready(self) -> bool:
        context = ssl.create_default_context(cafile=str(self._pki_dir / "ca.crt"))
        context.load_cert_chain(self._pki_dir / "probe.crt", self._pki_dir / "probe.key")
        connection = http.client.HTTPSConnection(
            LOOPBACK, self.apiserver_port, timeout=2, context=context
        )
        try:
            status, _ = _loopback_request(connection, "GET", "/readyz")
        except (OSError, ValueError):
            return False
        return status == 200

    def _wait_until_ready(self, process: _ManagedProcess, is_ready: Callable[[], bool]) -> None:
        started = time.monotonic()
        deadline = started + self.startup_timeout
        while not is_ready():
            if not process.is_running():
                raise ControlPlaneError(f"{process.name} exited:\n{process.log_tail()}")
            if time.monotonic() > deadline:
                raise ControlPlaneError(
                    f"{process.name} not ready after {self.startup_timeout:.0f}s:\n"
                    f"{process.log_tail()}"
                )
            time.sleep(0.2)
        logger.debug("%s ready in %.1fs", process.name, time.monotonic() - started)


def _loopback_request(
    connection: http.client.HTTPConnection,
    method: str,
    path: str,
    body: dict[str, Any] | None = None,
) -> tuple[int, dict[str, Any]]:
    """One JSON request to etcd or kube-apiserver on loopback (no proxy, no client library)."""
    try:
        payload = json.dumps(body).encode() if body is not None else None
        connection.request(method, path, body=payload, headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        raw = response.read()
    finally:
        connection.close()
    try:
        decoded = json.loads(raw)
    except ValueError:
        decoded = {"text": raw.decode(errors="replace")}  # /readyz answers plain "ok"
    return response.status, decoded if isinstance(decoded, dict) else {"value": decoded}


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _write_private(path: Path, content: bytes) -> None:
    """Write a file readable by its owner only (keys, kubeconfigs)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(content)


# --- Command line ---------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m butler_portal.kube.localcp")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("ensure-binaries", help="find, download or build etcd and kube-apiserver")
    up = commands.add_parser("up", help="run a local control plane until killed")
    up.add_argument("--dir", type=Path, required=True, help="working folder (kept, data reused)")
    up.add_argument("--no-crds", action="store_true", help="do not install the vendored CRDs")
    arguments = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")

    if arguments.command == "ensure-binaries":
        found = binaries.ensure_binaries()
        print(f"kube-apiserver: {found.kube_apiserver}")
        print(f"etcd: {found.etcd}")
        return 0

    # SIGTERM (from a process manager or `kill`) must unwind like Ctrl-C so children are stopped.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    control_plane = LocalControlPlane(
        root_dir=arguments.dir.resolve(), install_crds=not arguments.no_crds
    )
    try:
        with control_plane:
            print(f"kubeconfig: {control_plane.kubeconfig_path}", flush=True)
            while True:
                time.sleep(3600)
    except KeyboardInterrupt:
        pass
    except (ControlPlaneError, binaries.BinaryUnavailable, KubeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
