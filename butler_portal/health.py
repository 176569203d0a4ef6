"""Probes: ``/healthz`` (the process is alive) and ``/readyz`` (it can do its work).

Readiness is answered whatever the Host header and over plain HTTP, since kubelets and load
balancers probe pod addresses (``ProbeMiddleware`` runs before host validation and the HTTPS
redirect). Only the database and Redis decide the status code: without them no page works.
Kubernetes problems (unreachable, or kinds not served because a component is missing) make
the answer "degraded" with the reason, but keep the pod in service, so people can still sign
in, read what they have and be told what is wrong.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse

from butler_portal.kube import kube_client
from butler_portal.kube.errors import KubeError
from butler_portal.kube.served import Kind, describe_unserved, unserved_kinds

# A probe every few seconds from every kubelet must not become discovery traffic.
KUBERNETES_CHECK_TTL_SECONDS = 15.0
REDIS_TIMEOUT_SECONDS = 2.0


@dataclass(frozen=True)
class KubernetesHealth:
    """What the portal knows about its management cluster, in plain words."""

    configured: bool
    reachable: bool = False
    detail: str = ""
    unserved: tuple[Kind, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return not self.configured or (self.reachable and not self.unserved)

    @property
    def summary(self) -> str:
        """One sentence for people (the operator console's banner)."""
        if not self.configured:
            return "No management cluster is configured: nothing is provisioned."
        if not self.reachable:
            return f"The management cluster does not answer: {self.detail}"
        if self.unserved:
            return (
                "The management cluster does not serve kinds the portal needs: install "
                f"{describe_unserved(self.unserved)}. Work that needs them waits and is "
                "retried by itself once they are served."
            )
        return "The management cluster serves everything the portal needs."

    @property
    def advice(self) -> str:
        """What to do, for the console's banner under its own heading."""
        if self.unserved:
            return (
                f"Install {describe_unserved(self.unserved)}. Tenants' networks, clusters and "
                "VMs that need them wait, and go on by themselves once they are served."
            )
        return self.summary

    def as_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "configured": self.configured,
            "reachable": self.reachable,
            "detail": self.detail or self.summary,
            "missing_kinds": [
                {**asdict(kind), "component": kind.component} for kind in self.unserved
            ],
        }


_cache_lock = threading.Lock()
_cached: tuple[float, KubernetesHealth] | None = None


def kubernetes_health(*, fresh: bool = False) -> KubernetesHealth:
    """The management cluster's health, looked up at most every few seconds per process."""
    global _cached
    with _cache_lock:
        if not fresh and _cached and time.monotonic() - _cached[0] < KUBERNETES_CHECK_TTL_SECONDS:
            return _cached[1]
    health = _look_at_kubernetes()
    with _cache_lock:
        _cached = (time.monotonic(), health)
    return health


def forget_kubernetes_health() -> None:
    """Drop the remembered answer (tests switch clusters)."""
    global _cached
    with _cache_lock:
        _cached = None


def _look_at_kubernetes() -> KubernetesHealth:
    # Imported here: the registry imports the apps' handler modules, which need the app
    # registry ready; probes run long after that, settings import long before.
    from butler_portal.watcher.registry import handler_modules, required_kinds

    try:
        client = kube_client()
    except Exception as error:  # a broken kubeconfig says so here instead of failing the probe
        return KubernetesHealth(configured=True, detail=str(error))
    if client is None:
        return KubernetesHealth(configured=False)
    try:
        client.server_version()
        unserved = unserved_kinds(client, required_kinds(handler_modules()))
    except KubeError as error:
        return KubernetesHealth(configured=True, detail=error.message)
    return KubernetesHealth(configured=True, reachable=True, unserved=tuple(unserved))


def _check_database() -> dict[str, Any]:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as error:
        return {"ok": False, "detail": f"the database does not answer: {type(error).__name__}"}
    return {"ok": True}


def _check_redis() -> dict[str, Any]:
    if not settings.REDIS_URL:
        return {"ok": True, "detail": "not used (embedded mode)"}
    import redis

    try:
        client = redis.Redis.from_url(
            settings.REDIS_URL,
            socket_timeout=REDIS_TIMEOUT_SECONDS,
            socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
        )
        try:
            client.ping()
        finally:
            client.close()
    except redis.RedisError as error:
        # The URL may hold a password: name the failure, not the address.
        return {"ok": False, "detail": f"Redis does not answer: {type(error).__name__}"}
    return {"ok": True}


def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness for load balancers and the process supervisor: no auth, no database."""
    return JsonResponse({"status": "ok"})


def readyz(request: HttpRequest) -> JsonResponse:
    """Readiness: 200 while the database and Redis answer, 503 otherwise; the body says
    what is degraded and why, Kubernetes included."""
    kubernetes = kubernetes_health()
    checks = {
        "database": _check_database(),
        "redis": _check_redis(),
        "kubernetes": kubernetes.as_json(),
    }
    serving = checks["database"]["ok"] and checks["redis"]["ok"]
    status = "unavailable" if not serving else "ok" if kubernetes.ok else "degraded"
    return JsonResponse({"status": status, "checks": checks}, status=200 if serving else 503)


PROBES: dict[str, Callable[[HttpRequest], HttpResponse]] = {"/healthz": healthz, "/readyz": readyz}


class ProbeMiddleware:
    """Answers the probes before anything looks at the Host header or the scheme."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        probe = PROBES.get(request.path_info)
        if probe is not None and request.method in {"GET", "HEAD"}:
            return probe(request)
        return self.get_response(request)
