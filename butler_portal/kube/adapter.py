"""The one place that talks to the Kubernetes API (the only importer of ``kubernetes``).

Objects go in and come out as plain dicts (the JSON the API speaks), addressed by
``apiVersion`` + ``kind`` like in a manifest; the REST path comes from discovery. Every
failure surfaces as a typed error from :mod:`butler_portal.kube.errors`.

The generated client's typed models are deliberately not used: custom resources have none,
and one dict-based path for core kinds and CRDs keeps server-side apply uniform.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import logging
import random
import ssl
import time
import urllib.parse
from collections.abc import AsyncIterator, Callable, Generator, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, NamedTuple, TypeVar, cast

import urllib3
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config
from kubernetes.client.rest import should_bypass_proxies
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.typing import Subprotocol

from butler_portal.kube.errors import (
    Conflict,
    FieldCause,
    Forbidden,
    Gone,
    Invalid,
    KubeError,
    NotFound,
    NotServed,
    Transient,
    Unauthorized,
    error_from_status,
)

__all__ = [
    "CONSOLE_SUBPROTOCOL",
    "FIELD_MANAGER",
    "Conflict",
    "ConsoleStream",
    "FieldCause",
    "Forbidden",
    "Gone",
    "Invalid",
    "KubeClient",
    "KubeError",
    "ListResult",
    "Manifest",
    "NotFound",
    "ResourceInfo",
    "Transient",
    "Unauthorized",
    "WatchEvent",
    "with_retries",
]

logger = logging.getLogger(__name__)

# Every write of the portal is owned by this one field manager, so server-side apply can
# remove fields the portal stops sending and tell the portal's fields from a controller's.
FIELD_MANAGER = "butler-portal"

Manifest = dict[str, Any]
Manifests = list[Manifest]  # an alias: inside KubeClient, `list` names the method
FieldValidation = Literal["Strict", "Warn", "Ignore"]
WatchEventType = Literal["ADDED", "MODIFIED", "DELETED", "BOOKMARK"]

CONNECT_TIMEOUT_SECONDS = 5.0
READ_TIMEOUT_SECONDS = 30.0
# A watch stream ends server-side after timeoutSeconds; the client waits a little longer so the
# orderly end is not mistaken for a dead connection.
WATCH_READ_GRACE_SECONDS = 15.0
LIST_PAGE_SIZE = 500

# KubeVirt's serial console (STATUS.md §5): a websocket of raw bytes in binary frames.
CONSOLE_SUBPROTOCOL = Subprotocol("plain.kubevirt.io")
WEBSOCKET_OPEN_TIMEOUT_SECONDS = 10.0
# A serial console sends what the guest writes, in small pieces; this bounds one frame.
WEBSOCKET_MAX_FRAME_BYTES = 1 << 20

JSON = "application/json"
APPLY_PATCH = "application/apply-patch+yaml"  # JSON is valid YAML, so the body is plain JSON
MERGE_PATCH = "application/merge-patch+json"

T = TypeVar("T")


@dataclass(frozen=True)
class ResourceInfo:
    """Where a kind lives in the REST API, as discovery reports it."""

    api_version: str
    kind: str
    plural: str
    namespaced: bool

    def path(self, namespace: str | None = None, name: str | None = None) -> str:
        prefix = "/api/v1" if self.api_version == "v1" else f"/apis/{self.api_version}"
        if self.namespaced and namespace:
            prefix += f"/namespaces/{urllib.parse.quote(namespace, safe='')}"
        elif self.namespaced and name is not None:
            raise ValueError(f"{self.kind} {name!r} is namespaced: a namespace is required")
        path = f"{prefix}/{self.plural}"
        return f"{path}/{urllib.parse.quote(name, safe='')}" if name is not None else path


class ListResult(NamedTuple):
    items: Manifests
    # Resume a watch from here to see every change after this list, and nothing twice.
    resource_version: str


@dataclass(frozen=True)
class WatchEvent:
    type: WatchEventType
    object: Manifest
    resource_version: str


class ConsoleStream:
    """An open serial console of a VMI: raw bytes both ways, until either side closes.

        async with await client.open_console(namespace, name) as console:
            await console.send(b"root\r")
            while (output := await console.receive()) is not None:
                ...

    ``receive()`` returns None once the console has closed (``close_code`` and
    ``close_reason`` then tell how); bytes sent after that are dropped, as by a hung-up
    line. Nothing here logs or keeps what passes through: a console carries passwords.
    """

    def __init__(self, connection: ClientConnection) -> None:
        self._connection = connection

    async def send(self, data: bytes) -> None:
        with contextlib.suppress(ConnectionClosed):  # receive() reports the end
            await self._connection.send(data)

    async def receive(self) -> bytes | None:
        try:
            message = await self._connection.recv()
        except ConnectionClosed:
            return None
        # KubeVirt sends binary frames; a text frame is the same bytes, decoded.
        return message.encode() if isinstance(message, str) else message

    async def close(self) -> None:
        await self._connection.close()

    @property
    def close_code(self) -> int | None:
        """The websocket close code once closed (1000: the other side ended it cleanly)."""
        return self._connection.close_code

    @property
    def close_reason(self) -> str:
        return self._connection.close_reason or ""

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._chunks()

    async def _chunks(self) -> AsyncIterator[bytes]:
        while (chunk := await self.receive()) is not None:
            yield chunk

    async def __aenter__(self) -> ConsoleStream:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()


# One client serves every thread of a process: each informer holds a connection for its
# watch, and tasks and requests need more beside them (the library's default is 5 per core).
CONNECTION_POOL_SIZE = 64


def _pooled(configuration: k8s_client.Configuration) -> k8s_client.Configuration:
    configuration.connection_pool_maxsize = CONNECTION_POOL_SIZE
    return configuration


class KubeClient:
    """A small typed facade over the Kubernetes REST API.

    Build it with ``from_kubeconfig()``, ``in_cluster()`` or ``LocalControlPlane.client()``.
    """

    def __init__(self, api_client: k8s_client.ApiClient) -> None:
        self._api = api_client
        self._discovery: dict[str, dict[str, ResourceInfo]] = {}
        self._tls: ssl.SSLContext | None = None  # for websockets, built on first use

    @classmethod
    def from_kubeconfig(cls, path: str | Path, *, context: str | None = None) -> KubeClient:
        configuration = k8s_client.Configuration()
        # The config loaders are the untyped corner of the otherwise typed client library.
        k8s_config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=str(path),
            context=context,
            client_configuration=configuration,
            persist_config=False,
        )
        if _is_loopback(configuration.host):
            # Like client-go, never send loopback traffic to an HTTPS_PROXY from the environment.
            configuration.proxy = None
        return cls(k8s_client.ApiClient(_pooled(configuration)))

    @classmethod
    def in_cluster(cls) -> KubeClient:
        """Use the pod's ServiceAccount token and CA (the production setup)."""
        configuration = k8s_client.Configuration()
        k8s_config.load_incluster_config(  # type: ignore[no-untyped-call]
            client_configuration=configuration
        )
        return cls(k8s_client.ApiClient(_pooled(configuration)))

    def close(self) -> None:
        self._api.close()  # type: ignore[no-untyped-call]

    def __enter__(self) -> KubeClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # --- Reads ---------------------------------------------------------------------------

    def server_version(self) -> str:
        """The API server's version, e.g. "v1.35.4" (also a cheap reachability check)."""
        return str(self._request_json("GET", "/version")["gitVersion"])

    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> Manifest:
        resource = self.resource(api_version, kind)
        return self._request_json("GET", resource.path(namespace, name))

    def list(
        self,
        api_version: str,
        kind: str,
        namespace: str | None = None,
        label_selector: str | None = None,
    ) -> ListResult:
        """All objects of a kind (in a namespace, or everywhere) and the list's resourceVersion."""
        resource = self.resource(api_version, kind)
        items: Manifests = []
        query: dict[str, str] = {"limit": str(LIST_PAGE_SIZE)}
        if label_selector:
            query["labelSelector"] = label_selector
        while True:
            page = self._request_json("GET", resource.path(namespace), query=query)
            # Items of a list omit apiVersion/kind for built-in kinds; make them manifests again.
            items += [{"apiVersion": api_version, "kind": kind, **item} for item in page["items"]]
            metadata = page.get("metadata", {})
            if not metadata.get("continue"):
                return ListResult(items, str(metadata.get("resourceVersion", "")))
            query["continue"] = metadata["continue"]

    def watch(
        self,
        api_version: str,
        kind: str,
        namespace: str | None = None,
        *,
        resource_version: str | None = None,
        label_selector: str | None = None,
        timeout_seconds: int = 300,
        allow_bookmarks: bool = True,
    ) -> Generator[WatchEvent, None, None]:
        """Stream changes after ``resource_version`` until the server ends the watch.

        The request is sent on the first ``next()``. To stop early, ``close()`` the generator
        (or drop it after a ``break``): its connection is closed, not returned to the pool.

        Raises ``Gone`` when that resourceVersion is too old (HTTP 410 or an ERROR event
        with code 410): the caller must list again and watch from the new list's version.
        """
        resource = self.resource(api_version, kind)
        query = {
            "watch": "true",
            "timeoutSeconds": str(timeout_seconds),
            "allowWatchBookmarks": "true" if allow_bookmarks else "false",
        }
        if resource_version:
            query["resourceVersion"] = resource_version
        if label_selector:
            query["labelSelector"] = label_selector
        response = self._send(
            "GET",
            resource.path(namespace),
            query=query,
            read_timeout=timeout_seconds + WATCH_READ_GRACE_SECONDS,
        )
        try:
            for line in _stream_lines(response):
                yield _parse_watch_event(line)
        finally:
            # A watch connection cannot be reused mid-stream: close it rather than pool it.
            response.close()

    def resource(self, api_version: str, kind: str) -> ResourceInfo:
        """Plural and scope of a kind, from API discovery (cached per apiVersion)."""
        resources = self._discovery.get(api_version)
        if resources is None or kind not in resources:
            # Unknown so far: a CRD may have been installed since the last look.
            try:
                resources = self._discover(api_version)
            except NotFound:  # the whole group/version is not served
                raise NotServed(api_version, kind) from None
        try:
            return resources[kind]
        except KeyError:
            raise NotServed(api_version, kind) from None

    def served_kinds(self, api_version: str) -> tuple[str, ...]:
        """The kinds the API server serves under ``api_version``, asked afresh (a component
        may have been installed since); ``NotFound`` when it serves none."""
        return tuple(self._discover(api_version))

    def api_resources(self, api_version: str) -> tuple[str, ...]:
        """The names an apiVersion's discovery lists, subresources included ("pods/log");
        ``NotFound`` when the API server does not serve it (e.g. an APIService is missing)."""
        listing = self._request_json("GET", _discovery_path(api_version))
        return tuple(str(entry["name"]) for entry in listing.get("resources", ()))

    def _discover(self, api_version: str) -> dict[str, ResourceInfo]:
        listing = self._request_json("GET", _discovery_path(api_version))
        resources = {
            entry["kind"]: ResourceInfo(
                api_version, entry["kind"], entry["name"], entry["namespaced"]
            )
            for entry in listing.get("resources", ())
            if "/" not in entry["name"]  # skip subresources such as "pods/status"
        }
        self._discovery[api_version] = resources
        return resources

    # --- Streams -------------------------------------------------------------------------

    async def open_console(self, namespace: str, vmi_name: str) -> ConsoleStream:
        """Connect to a VMI's serial console through the API server (virt-api behind it).

        Raises the typed error of the API's refusal: ``Forbidden`` (RBAC: ``get`` on
        ``virtualmachineinstances/console``), ``NotFound`` (no such VMI), a ``KubeError``
        with status 400 ("VMI is not running"), ``Transient`` when it cannot be reached.
        """
        path = (
            f"/apis/subresources.kubevirt.io/v1/namespaces/{urllib.parse.quote(namespace, safe='')}"
            f"/virtualmachineinstances/{urllib.parse.quote(vmi_name, safe='')}/console"
        )
        return ConsoleStream(await self._open_websocket(path, CONSOLE_SUBPROTOCOL))

    async def _open_websocket(self, path: str, subprotocol: Subprotocol) -> ClientConnection:
        """A websocket to ``path`` with this client's TLS, credentials and proxy."""
        configuration = self._api.configuration
        scheme, _, address = configuration.host.partition("://")
        secure = scheme == "https"
        headers = {}
        # Also refreshes a token that expires (in-cluster ServiceAccount tokens rotate).
        if token := configuration.get_api_key_with_prefix("BearerToken", alias="authorization"):
            headers["Authorization"] = token
        proxy = configuration.proxy
        if proxy and should_bypass_proxies(configuration.host, configuration.no_proxy or ""):
            proxy = None
        try:
            connection = await connect(
                f"{'wss' if secure else 'ws'}://{address.rstrip('/')}{path}",
                ssl=self._websocket_tls() if secure else None,
                server_hostname=_tls_server_name(configuration) if secure else None,
                subprotocols=[subprotocol],
                additional_headers=headers,
                proxy=proxy or None,
                compression=None,  # what passes is keystrokes and terminal output
                open_timeout=WEBSOCKET_OPEN_TIMEOUT_SECONDS,
                max_size=WEBSOCKET_MAX_FRAME_BYTES,
            )
        except InvalidStatus as refusal:
            response = refusal.response
            raise _error_from_http(
                response.status_code, response.headers.get("Retry-After"), bytes(response.body)
            ) from refusal
        except (OSError, TimeoutError, InvalidHandshake) as error:
            raise Transient(f"GET {path}: {error}") from error
        if connection.subprotocol != subprotocol:
            await connection.close()
            raise KubeError(f"GET {path}: the server does not speak {subprotocol}")
        return connection

    def _websocket_tls(self) -> ssl.SSLContext:
        """The TLS settings of the REST client (CA, client certificate, verification)."""
        if self._tls is None:
            configuration = self._api.configuration
            context = ssl.create_default_context(
                cafile=configuration.ssl_ca_cert,
                cadata=getattr(configuration, "ca_cert_data", None),
            )
            if configuration.cert_file:
                context.load_cert_chain(configuration.cert_file, configuration.key_file)
            if not configuration.verify_ssl:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            elif configuration.assert_hostname is False:
                context.check_hostname = False
            self._tls = context
        return self._tls

    # --- Writes --------------------------------------------------------------------------

    def apply(
        self,
        manifest: Mapping[str, Any],
        *,
        field_manager: str = FIELD_MANAGER,
        force: bool = True,
        field_validation: FieldValidation = "Strict",
        dry_run: bool = False,
    ) -> Manifest:
        """Server-side apply: create the object or converge the fields this manager owns.

        ``force`` takes over fields another manager set (the portal is the source of truth
        for what it applies). Strict field validation turns unknown fields into ``Invalid``
        instead of silently pruning them. ``dry_run`` has the API server validate, admit and
        authorize the request in full, and store nothing (e.g. to check a chart's output).
        """
        resource, name, namespace = self._locate(manifest)
        query = {
            "fieldManager": field_manager,
            "force": "true" if force else "false",
            "fieldValidation": field_validation,
        }
        if dry_run:
            query["dryRun"] = "All"
        return self._request_json(
            "PATCH",
            resource.path(namespace, name),
            query=query,
            body=dict(manifest),
            content_type=APPLY_PATCH,
        )

    def create(self, manifest: Mapping[str, Any]) -> Manifest:
        resource, _, namespace = self._locate(manifest)
        return self._request_json(
            "POST",
            resource.path(namespace),
            query={"fieldManager": FIELD_MANAGER, "fieldValidation": "Strict"},
            body=dict(manifest),
        )

    def replace(self, manifest: Mapping[str, Any]) -> Manifest:
        """PUT the whole object; given a stale ``metadata.resourceVersion``, ``Conflict``."""
        resource, name, namespace = self._locate(manifest)
        return self._request_json(
            "PUT",
            resource.path(namespace, name),
            query={"fieldManager": FIELD_MANAGER, "fieldValidation": "Strict"},
            body=dict(manifest),
        )

    def patch_status(
        self,
        api_version: str,
        kind: str,
        name: str,
        status: Mapping[str, Any],
        namespace: str | None = None,
        *,
        server_side_apply: bool = False,
        field_manager: str = FIELD_MANAGER,
    ) -> Manifest:
        """Write ``status`` through the status subresource (merge patch, or apply)."""
        resource = self.resource(api_version, kind)
        path = resource.path(namespace, name) + "/status"
        if not server_side_apply:
            return self._request_json(
                "PATCH", path, body={"status": dict(status)}, content_type=MERGE_PATCH
            )
        metadata = {"name": name, **({"namespace": namespace} if namespace else {})}
        return self._request_json(
            "PATCH",
            path,
            query={"fieldManager": field_manager, "force": "true"},
            body={
                "apiVersion": api_version,
                "kind": kind,
                "metadata": metadata,
                "status": dict(status),
            },
            content_type=APPLY_PATCH,
        )

    def delete(
        self,
        api_version: str,
        kind: str,
        name: str,
        namespace: str | None = None,
        *,
        missing_ok: bool = True,
    ) -> None:
        """Delete an object; by default an already missing object counts as deleted."""
        resource = self.resource(api_version, kind)
        try:
            self._request_json(
                "DELETE",
                resource.path(namespace, name),
                # The garbage collector removes dependents in the background, as kubectl does.
                body={"propagationPolicy": "Background"},
            )
        except NotFound:
            if not missing_ok:
                raise

    def get_manifest(self, manifest: Mapping[str, Any]) -> Manifest:
        """The live object that ``manifest`` describes (same kind, name and namespace)."""
        resource, name, namespace = self._locate(manifest)
        return self._request_json("GET", resource.path(namespace, name))

    def delete_manifest(self, manifest: Mapping[str, Any], *, missing_ok: bool = True) -> None:
        """Delete the object that ``manifest`` describes."""
        _, name, namespace = self._locate(manifest)
        self.delete(
            manifest["apiVersion"], manifest["kind"], name, namespace, missing_ok=missing_ok
        )

    def _locate(self, manifest: Mapping[str, Any]) -> tuple[ResourceInfo, str, str | None]:
        metadata = manifest.get("metadata") or {}
        try:
            api_version, kind, name = manifest["apiVersion"], manifest["kind"], metadata["name"]
        except KeyError as missing:
            message = f"a manifest needs apiVersion, kind and metadata.name: {missing} is missing"
            raise ValueError(message) from None
        resource = self.resource(api_version, kind)
        namespace = metadata.get("namespace") if resource.namespaced else None
        return resource, name, namespace

    # --- HTTP ----------------------------------------------------------------------------

    def _request_json(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str] | None = None,
        body: Manifest | None = None,
        content_type: str = JSON,
    ) -> Manifest:
        response = self._send(method, path, query=query, body=body, content_type=content_type)
        try:
            payload: bytes = response.data
        except (urllib3.exceptions.HTTPError, OSError) as error:
            raise Transient(f"{method} {path}: reading the response failed: {error}") from error
        finally:
            response.release_conn()
        decoded: Manifest = json.loads(payload) if payload else {}
        return decoded

    def _send(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str] | None = None,
        body: Manifest | None = None,
        content_type: str = JSON,
        read_timeout: float = READ_TIMEOUT_SECONDS,
    ) -> urllib3.BaseHTTPResponse:
        """Send one request; return the open response on 2xx, raise a typed error otherwise."""
        method, url, headers, serialized_body, _ = self._api.param_serialize(
            method,
            path,
            query_params=list((query or {}).items()),
            header_params={"Accept": JSON, "Content-Type": content_type},
            body=body,
            auth_settings=["BearerToken"],
        )
        try:
            rest_response = self._api.call_api(
                method,
                url,
                header_params=headers,
                body=serialized_body,
                _request_timeout=(CONNECT_TIMEOUT_SECONDS, read_timeout),
            )
        except (urllib3.exceptions.HTTPError, OSError) as error:
            raise Transient(f"{method} {path}: {error}") from error
        except k8s_client.ApiException as error:
            # The REST layer wraps TLS failures (e.g. a server going down mid-handshake) this way.
            raise Transient(f"{method} {path}: {error.reason}") from error
        response: urllib3.BaseHTTPResponse = rest_response.response
        if response.status >= 400:
            try:
                raise _error_from_response(response)
            finally:
                response.release_conn()
        return response


def _is_loopback(url: str) -> bool:
    host = urllib.parse.urlparse(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _discovery_path(api_version: str) -> str:
    return "/api/v1" if api_version == "v1" else f"/apis/{api_version}"


def _tls_server_name(configuration: k8s_client.Configuration) -> str | None:
    """The name the server certificate must carry, when it is not the URL's host."""
    return str(configuration.tls_server_name) if configuration.tls_server_name else None


def _error_from_response(response: urllib3.BaseHTTPResponse) -> KubeError:
    return _error_from_http(response.status, response.headers.get("Retry-After"), response.data)


def _error_from_http(status_code: int, retry_after: str | None, raw: bytes) -> KubeError:
    """The typed error for an HTTP failure whose body is (usually) a ``kind: Status``."""
    retry_after_seconds = float(retry_after) if retry_after and retry_after.isdigit() else None
    try:
        status = json.loads(raw)
    except ValueError:
        status = {"message": raw.decode(errors="replace").strip()}
    if not isinstance(status, dict):
        status = {"message": str(status)}
    return error_from_status(status_code, status, retry_after_seconds=retry_after_seconds)


def _stream_lines(response: urllib3.BaseHTTPResponse) -> Iterator[bytes]:
    """Split a chunked watch response into its newline-delimited JSON events."""
    pending = b""
    try:
        for chunk in response.stream(amt=None, decode_content=True):
            pending += chunk
            *complete, pending = pending.split(b"\n")
            yield from (line for line in complete if line.strip())
    except (urllib3.exceptions.HTTPError, OSError) as error:
        raise Transient(f"watch stream broken: {error}") from error
    if pending.strip():
        yield pending


def _parse_watch_event(line: bytes) -> WatchEvent:
    event = json.loads(line)
    event_type: str = event["type"]
    obj: Manifest = event["object"]
    if event_type == "ERROR":
        # The object is a Status, e.g. code 410 "too old resource version".
        raise error_from_status(int(obj.get("code") or 500), obj)
    if event_type not in ("ADDED", "MODIFIED", "DELETED", "BOOKMARK"):
        raise KubeError(f"unexpected watch event type {event_type!r}")
    resource_version = str(obj.get("metadata", {}).get("resourceVersion", ""))
    return WatchEvent(cast(WatchEventType, event_type), obj, resource_version)


def with_retries(
    operation: Callable[[], T],
    attempts: int = 5,
    backoff: float = 0.5,
    *,
    max_delay: float = 30.0,
) -> T:
    """Call ``operation``; retry it on ``Transient`` errors only, with exponential backoff.

    Permanent errors (Invalid, Forbidden, NotFound, ...) propagate at once: retrying cannot fix
    them. The jitter keeps many workers from hammering a recovering API server in lockstep;
    a server's Retry-After (429/503) is honoured when it asks for longer.
    """
    if attempts < 1:
        raise ValueError("attempts must be at least 1")
    for attempt in range(1, attempts + 1):
        try:
            return operation()
        except Transient as error:
            if attempt == attempts:
                raise
            delay = min(max_delay, backoff * 2 ** (attempt - 1)) * random.uniform(0.5, 1.0)  # noqa: S311 (jitter)
            delay = max(delay, error.retry_after_seconds or 0.0)
            logger.info("transient Kubernetes error (%s); retry %d in %.1fs", error, attempt, delay)
            time.sleep(delay)
    raise AssertionError("unreachable: the last attempt returns or raises")
