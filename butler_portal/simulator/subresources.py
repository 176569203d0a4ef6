"""KubeVirt's subresource API (``subresources.kubevirt.io/v1``), served as an aggregated API.

In production virt-api serves this group behind the management cluster's kube-apiserver
(``butler_portal/kube/crds/STATUS.md`` §5). The simulator serves it the same way, so the portal
reaches a VM's serial console by the very path it takes in production::

    portal ──wss──▶ kube-apiserver ──(aggregation layer)──▶ this server, on 127.0.0.1
                    authenticates the caller, checks RBAC (get virtualmachineinstances/console)

What it serves:

- discovery: ``/apis``, ``/apis/subresources.kubevirt.io`` and the ``APIResourceList`` of
  ``/apis/subresources.kubevirt.io/v1``, which the API server's availability check fetches;
- ``GET …/namespaces/{ns}/virtualmachineinstances/{name}/console``: a websocket
  (subprotocol ``plain.kubevirt.io``) carrying the guest's serial console as raw bytes in
  binary frames, while the VMI runs (played by ``serial.Getty``); the console closes
  (1000) when the VMI stops or is replaced. Refusals are virt-api's, as ``Status`` bodies:
  404 no such VMI, 400 "VMI is not running", 409 "VMI is in failed status";
- ``…/vnc`` is listed, as virt-api lists it, but answers 501: no framebuffer is simulated.

How the API server reaches it: an ``APIService`` ``v1.subresources.kubevirt.io`` names the
Service ``kubevirt/virt-api`` and this server's port. The Service is of type ExternalName
with ``127.0.0.1``: the aggregation layer resolves such a Service to
``<externalName>:<port>`` by itself, whereas a ClusterIP Service leads nowhere without
kube-proxy, and Endpoints may not name loopback addresses.

Trust, both ways, as for any aggregated server: the serving certificate comes from a CA of
its own, given to the API server as the APIService's ``caBundle`` (valid for
``virt-api.kubevirt.svc``, the name the aggregation layer checks); and only the API
server's front-proxy client certificate (CA and names from
``kube-system/extension-apiserver-authentication``) gets an answer, so nothing else on the
machine can open a console by knocking on the port directly.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ipaddress
import json
import logging
import re
import ssl
import tempfile
import threading
import time
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from typing import Any

from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.typing import Subprotocol

from butler_portal.kube import pki
from butler_portal.kube.adapter import KubeClient
from butler_portal.kube.errors import KubeError, NotFound
from butler_portal.simulator.base import FIELD_MANAGER
from butler_portal.simulator.config import SimulatorConfig
from butler_portal.simulator.objects import Manifest, dig
from butler_portal.simulator.serial import Getty, Pause, image_source, operating_system

logger = logging.getLogger(__name__)
# The websocket library's own lines ("connection open", "HTTP response sent") for every
# request are protocol detail: shown only when this logger is turned up on purpose.
protocol_logger = logging.getLogger(f"{__name__}.protocol")
protocol_logger.setLevel(logging.WARNING)

LOOPBACK = "127.0.0.1"
GROUP, VERSION = "subresources.kubevirt.io", "v1"
GROUP_VERSION = f"{GROUP}/{VERSION}"
API_SERVICE = f"{VERSION}.{GROUP}"
API_SERVICE_VERSION = "apiregistration.k8s.io/v1"
# virt-api's own Service, as virt-operator installs it.
SERVICE_NAMESPACE, SERVICE_NAME = "kubevirt", "virt-api"
SUBPROTOCOL = Subprotocol("plain.kubevirt.io")
KUBEVIRT_API_VERSION = "kubevirt.io/v1"
CDI_API_VERSION = "cdi.kubevirt.io/v1beta1"
# Where kube-apiserver publishes how it proxies (its --requestheader-* flags).
AUTHENTICATION_CONFIG_MAP = ("kube-system", "extension-apiserver-authentication")

AVAILABLE_TIMEOUT_SECONDS = 15.0
START_TIMEOUT_SECONDS = 10.0
# How often an open console checks that its VMI still runs (a stopped guest's console ends).
LIVENESS_INTERVAL_SECONDS = 0.5

_SUBRESOURCE_PATH = re.compile(
    rf"^/apis/{re.escape(GROUP_VERSION)}/namespaces/(?P<namespace>[^/]+)"
    r"/virtualmachineinstances/(?P<name>[^/]+)/(?P<subresource>[a-z]+)$"
)


# --- Discovery ------------------------------------------------------------------------------

_PREFERRED = {"groupVersion": GROUP_VERSION, "version": VERSION}
_GROUP = {"name": GROUP, "versions": [_PREFERRED], "preferredVersion": _PREFERRED}
# virt-api's list names its subresources only; the websocket ones are read with "get".
_RESOURCES = [
    {
        "name": f"virtualmachineinstances/{subresource}",
        "singularName": "",
        "namespaced": True,
        "kind": "",
        "verbs": ["get"],
    }
    for subresource in ("console", "vnc")
]
DISCOVERY: dict[str, Manifest] = {
    "/apis": {"kind": "APIGroupList", "apiVersion": "v1", "groups": [_GROUP]},
    f"/apis/{GROUP}": {"kind": "APIGroup", "apiVersion": "v1", **_GROUP},
    f"/apis/{GROUP_VERSION}": {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": GROUP_VERSION,
        "resources": _RESOURCES,
    },
}
HEALTH_PATHS = frozenset({"/healthz", "/readyz", "/livez"})


# --- Answers --------------------------------------------------------------------------------


def _response(status: HTTPStatus, body: bytes, content_type: str) -> Response:
    headers = Headers(
        [
            ("Content-Type", content_type),
            ("Content-Length", str(len(body))),
            ("Connection", "close"),
        ]
    )
    return Response(status.value, status.phrase, headers, body)


def json_response(document: Mapping[str, Any], status: HTTPStatus = HTTPStatus.OK) -> Response:
    return _response(status, json.dumps(document).encode(), "application/json")


def status_response(
    status: HTTPStatus, message: str, *, name: str = "", kind: str = ""
) -> Response:
    """A ``kind: Status`` failure, as the API machinery (and so virt-api) answers one."""
    reason = {
        HTTPStatus.BAD_REQUEST: "BadRequest",
        HTTPStatus.UNAUTHORIZED: "Unauthorized",
        HTTPStatus.FORBIDDEN: "Forbidden",
        HTTPStatus.NOT_FOUND: "NotFound",
        HTTPStatus.CONFLICT: "Conflict",
    }.get(status, "InternalError" if status >= 500 else status.phrase.replace(" ", ""))
    details = {"name": name, "group": "kubevirt.io", "kind": kind} if name else {}
    body = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        **({"details": details} if details else {}),
        "code": status.value,
    }
    return json_response(body, status)


def _vmi_not_found(name: str) -> Response:
    message = f'virtualmachineinstance.kubevirt.io "{name}" not found'
    return status_response(HTTPStatus.NOT_FOUND, message, name=name, kind="virtualmachineinstance")


def _vmi_conflict(name: str, why: str) -> Response:
    message = f'Operation cannot be fulfilled on virtualmachineinstance.kubevirt.io "{name}": {why}'
    return status_response(HTTPStatus.CONFLICT, message, name=name, kind="virtualmachineinstance")


# --- The guest behind a console -------------------------------------------------------------


@dataclass(frozen=True)
class Guest:
    """A running VMI whose console was asked for."""

    namespace: str
    name: str
    uid: str
    operating_system: str


def console_refusal(vmi: Manifest) -> Response | None:
    """virt-api's checks before it connects a serial console (None: go ahead)."""
    name = str(vmi["metadata"]["name"])
    if dig(vmi, "spec", "domain", "devices", "autoattachSerialConsole") is False:
        return status_response(HTTPStatus.BAD_REQUEST, "No serial consoles are present.")
    phase = dig(vmi, "status", "phase", default="")
    if phase == "Failed":
        return _vmi_conflict(name, "VMI is in failed status")
    if phase != "Running":
        return status_response(HTTPStatus.BAD_REQUEST, "VMI is not running")
    return None


def root_disk_source(client: KubeClient, vmi: Manifest) -> str:
    """Where the guest's first disk came from: its container disk, or its DataVolume's source."""
    namespace = vmi["metadata"]["namespace"]
    for volume in dig(vmi, "spec", "volumes", default=[]):
        if image := dig(volume, "containerDisk", "image"):
            return str(image)
        if data_volume := dig(volume, "dataVolume", "name"):
            try:
                found = client.get(CDI_API_VERSION, "DataVolume", data_volume, namespace)
            except KubeError:
                return ""  # gone, or CDI not installed: a generic guest
            return image_source(found)
    return ""


# --- Registration ---------------------------------------------------------------------------


@dataclass(frozen=True)
class FrontProxy:
    """Who may call an aggregated server: the API server's proxy client certificate."""

    ca_pem: bytes
    allowed_names: frozenset[str]  # empty: any certificate the CA signed


def front_proxy_of(client: KubeClient) -> FrontProxy | None:
    """The API server's front-proxy settings, or None when it has none configured."""
    namespace, name = AUTHENTICATION_CONFIG_MAP
    try:
        config_map = client.get("v1", "ConfigMap", name, namespace)
    except NotFound:
        return None
    data = config_map.get("data") or {}
    ca_pem = data.get("requestheader-client-ca-file")
    if not ca_pem:
        return None
    names = json.loads(data.get("requestheader-allowed-names") or "[]")
    return FrontProxy(ca_pem.encode(), frozenset(names))


def registration_manifests(host: str, port: int, ca_pem: bytes) -> list[Manifest]:
    """The Service and APIService that route ``subresources.kubevirt.io`` to ``host:port``."""
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": SERVICE_NAMESPACE}},
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": SERVICE_NAME, "namespace": SERVICE_NAMESPACE},
            "spec": {"type": "ExternalName", "externalName": host},
        },
        {
            "apiVersion": API_SERVICE_VERSION,
            "kind": "APIService",
            "metadata": {"name": API_SERVICE},
            "spec": {
                "group": GROUP,
                "version": VERSION,
                # virt-operator's priorities for this group.
                "groupPriorityMinimum": 1000,
                "versionPriority": 15,
                "service": {"namespace": SERVICE_NAMESPACE, "name": SERVICE_NAME, "port": port},
                "caBundle": base64.b64encode(ca_pem).decode(),
            },
        },
    ]


def is_available(api_service: Manifest) -> bool:
    conditions = dig(api_service, "status", "conditions", default=[])
    return any(c["type"] == "Available" and c["status"] == "True" for c in conditions)


# --- The server -----------------------------------------------------------------------------


def _server_tls(serving: pki.KeyPair, front_proxy: FrontProxy) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    with tempfile.TemporaryDirectory(prefix="butler-virt-api-") as folder:
        certificate, key = Path(folder, "tls.crt"), Path(folder, "tls.key")
        certificate.write_bytes(serving.certificate_pem)
        key.write_bytes(serving.private_key_pem)
        context.load_cert_chain(certificate, key)
    context.load_verify_locations(cadata=front_proxy.ca_pem.decode())
    context.verify_mode = ssl.CERT_REQUIRED
    # Websockets need HTTP/1.1 upgrades: never let the API server pick HTTP/2.
    context.set_alpn_protocols(["http/1.1"])
    return context


def _common_name(connection: ServerConnection) -> str:
    ssl_object = connection.transport.get_extra_info("ssl_object")
    certificate = ssl_object.getpeercert() if ssl_object is not None else None
    for attributes in (certificate or {}).get("subject", ()):
        for key, value in attributes:
            if key == "commonName":
                return str(value)
    return ""


class SubresourceServer:
    """The aggregated ``subresources.kubevirt.io`` server: an asyncio loop in a thread.

    ``start()`` serves on ``host`` (loopback only) and registers the APIService, waiting
    until the API server reports it Available; ``stop()`` unregisters it (if it is still
    this server's) and closes every open console (1001). Without a front-proxy CA on the
    API server there is nothing to trust: it logs why and serves nothing.
    """

    def __init__(self, client: KubeClient, config: SimulatorConfig, *, host: str = LOOPBACK):
        if not ipaddress.ip_address(host).is_loopback:
            raise ValueError(f"the simulated virt-api serves on loopback only, not {host}")
        self.client = client
        self.config = config
        self.host = host
        self.port = 0
        self.ca = pki.CertificateAuthority("butler-simulator-virt-api-ca")
        # What reached the server, for tests: console requests, and consoles open now.
        self.console_requests = 0
        self.open_consoles = 0
        self._front_proxy: FrontProxy | None = None
        # The guest each accepted upgrade is for, from the request's checks to its handler
        # (weak: a handshake that fails after the checks leaves nothing behind).
        self._guests: weakref.WeakKeyDictionary[ServerConnection, Guest] = (
            weakref.WeakKeyDictionary()
        )
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_serving: asyncio.Event | None = None
        self._bound = threading.Event()
        self._failure: BaseException | None = None

    @property
    def serving(self) -> bool:
        return self.port != 0

    # --- Lifecycle ---------------------------------------------------------------------

    def start(self) -> SubresourceServer:
        try:
            self._front_proxy = front_proxy_of(self.client)
        except KubeError as error:
            logger.warning("simulator: not serving %s: %s", GROUP, error)
            return self
        if self._front_proxy is None:
            logger.warning(
                "simulator: not serving %s: the API server has no front-proxy CA "
                "(--requestheader-client-ca-file), so nothing could prove it is the caller",
                GROUP,
            )
            return self
        self._thread = threading.Thread(target=self._run, name="simulator:virt-api", daemon=True)
        self._thread.start()
        if not self._bound.wait(START_TIMEOUT_SECONDS) or self._failure is not None:
            self.stop()
            raise RuntimeError(f"the {GROUP} server did not start: {self._failure}")
        try:
            self._register()
        except KubeError as error:
            logger.warning("simulator: could not register %s: %s", API_SERVICE, error)
        return self

    def stop(self) -> None:
        if self.serving:
            self._unregister()
        if self._loop is not None and self._stop_serving is not None:
            with contextlib.suppress(RuntimeError):  # the loop ended already
                self._loop.call_soon_threadsafe(self._stop_serving.set)
        if self._thread is not None:
            self._thread.join(START_TIMEOUT_SECONDS)
            self._thread = None
        self.port = 0

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as error:  # reported to start(), which is waiting for the bind
            self._failure = error
            self._bound.set()

    async def _serve(self) -> None:
        assert self._front_proxy is not None
        serving = self.ca.issue_serving_certificate(
            [self.host, "localhost", f"{SERVICE_NAME}.{SERVICE_NAMESPACE}.svc"]
        )
        self._loop = asyncio.get_running_loop()
        self._stop_serving = asyncio.Event()
        async with serve(
            self._console,
            self.host,
            0,
            ssl=_server_tls(serving, self._front_proxy),
            process_request=self._route,
            select_subprotocol=_select_subprotocol,
            compression=None,  # virt-api's websockets do not compress either
            server_header=None,
            logger=protocol_logger,
        ) as server:
            self.port = next(iter(server.sockets)).getsockname()[1]
            self._bound.set()
            await self._stop_serving.wait()

    def _register(self) -> None:
        for manifest in registration_manifests(self.host, self.port, self.ca.certificate_pem):
            self.client.apply(manifest, field_manager=FIELD_MANAGER)
        deadline = time.monotonic() + AVAILABLE_TIMEOUT_SECONDS
        while True:
            api_service = self.client.get(API_SERVICE_VERSION, "APIService", API_SERVICE)
            if is_available(api_service):
                logger.info("simulator: serving %s on %s:%d", GROUP, self.host, self.port)
                return
            if time.monotonic() > deadline:
                conditions = dig(api_service, "status", "conditions", default=[])
                logger.warning("simulator: %s is not available: %s", API_SERVICE, conditions)
                return
            time.sleep(0.02)

    def _unregister(self) -> None:
        """Remove the APIService if it still routes here (a newer simulator may own it)."""
        try:
            current = self.client.get(API_SERVICE_VERSION, "APIService", API_SERVICE)
            if dig(current, "spec", "service", "port") == self.port:
                self.client.delete(API_SERVICE_VERSION, "APIService", API_SERVICE)
        except KubeError as error:  # the API server may be gone already
            logger.debug("simulator: leaving %s registered: %s", API_SERVICE, error)

    # --- Requests ------------------------------------------------------------------------

    async def _route(self, connection: ServerConnection, request: Request) -> Response | None:
        """Answer everything but an accepted console upgrade (None: go on with the handshake)."""
        assert self._front_proxy is not None
        caller = _common_name(connection)
        if self._front_proxy.allowed_names and caller not in self._front_proxy.allowed_names:
            return status_response(HTTPStatus.FORBIDDEN, f"{caller!r} is not a front proxy")
        path = request.path.split("?", 1)[0].rstrip("/") or "/"
        if path in DISCOVERY:
            return json_response(DISCOVERY[path])
        if path in HEALTH_PATHS:
            return _response(HTTPStatus.OK, b"ok", "text/plain; charset=utf-8")
        match = _SUBRESOURCE_PATH.match(path)
        if match is None:
            return status_response(HTTPStatus.NOT_FOUND, "the server could not find the resource")
        if match["subresource"] == "vnc":
            return status_response(HTTPStatus.NOT_IMPLEMENTED, "VNC is not simulated")
        if match["subresource"] != "console":
            return status_response(HTTPStatus.NOT_FOUND, "the server could not find the resource")
        self.console_requests += 1
        found = await asyncio.to_thread(self._guest, match["namespace"], match["name"])
        if isinstance(found, Response):
            return found
        self._guests[connection] = found
        return None

    def _guest(self, namespace: str, name: str) -> Guest | Response:
        try:
            vmi = self.client.get(KUBEVIRT_API_VERSION, "VirtualMachineInstance", name, namespace)
        except NotFound:
            return _vmi_not_found(name)
        except KubeError as error:
            return status_response(HTTPStatus.INTERNAL_SERVER_ERROR, str(error))
        if refusal := console_refusal(vmi):
            return refusal
        source = root_disk_source(self.client, vmi)
        return Guest(namespace, name, vmi["metadata"]["uid"], operating_system(source))

    def _still_running(self, guest: Guest) -> bool:
        try:
            vmi = self.client.get(
                KUBEVIRT_API_VERSION, "VirtualMachineInstance", guest.name, guest.namespace
            )
        except NotFound:
            return False
        except KubeError:
            return True  # the API server hiccuped: the guest itself is no less alive
        # A restart replaces the VMI: the old instance's console ends with it.
        return vmi["metadata"]["uid"] == guest.uid and console_refusal(vmi) is None

    # --- Consoles ------------------------------------------------------------------------

    async def _console(self, connection: ServerConnection) -> None:
        guest = self._guests.pop(connection)
        getty = Getty(
            guest.name,
            guest.operating_system,
            login_delay=self.config.step_seconds("console_login"),
        )
        caller = connection.request.headers.get("X-Remote-User", "") if connection.request else ""
        # Who and which console, never what was typed: a console carries passwords.
        logger.info("simulator: console of %s/%s opened by %s", guest.namespace, guest.name, caller)
        self.open_consoles += 1
        liveness = asyncio.create_task(self._close_when_stopped(connection, guest))
        try:
            await connection.send(getty.greeting())
            async for message in connection:
                typed = message.encode() if isinstance(message, str) else message
                for output in getty.feed(typed):
                    if isinstance(output, Pause):
                        await asyncio.sleep(output.seconds)
                    else:
                        await connection.send(output)
        except ConnectionClosed:
            pass
        finally:
            liveness.cancel()
            self.open_consoles -= 1
            logger.info("simulator: console of %s/%s closed", guest.namespace, guest.name)

    async def _close_when_stopped(self, connection: ServerConnection, guest: Guest) -> None:
        while await asyncio.to_thread(self._still_running, guest):
            await asyncio.sleep(LIVENESS_INTERVAL_SECONDS)
        await connection.close(1000, "the virtual machine instance stopped")


def _select_subprotocol(
    connection: ServerConnection, offered: Sequence[Subprotocol]
) -> Subprotocol | None:
    """``plain.kubevirt.io`` when offered; like virt-api, no subprotocol is no refusal."""
    return SUBPROTOCOL if SUBPROTOCOL in offered else None
