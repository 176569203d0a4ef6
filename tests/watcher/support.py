"""Helpers of the watcher tests: tenants with networks, controller status, waiting."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from butler_portal.kube import kube_client
from butler_portal.kube.adapter import KubeClient
from butler_portal.labels import portal_labels
from butler_portal.watcher import ObjectRef
from tenants.audit import Actor
from tenants.models import Tenant, TenantNetwork, User
from tenants.services import tenant_create
from tests.watcher.listener import Event

LIMITS = {"clusters": 1, "vms": 2, "vcpu": 8, "memory_mib": 16384, "load_balancer_ips": 4}


def onboard(operator: User, slug: str) -> Tenant:
    return tenant_create(actor=Actor(operator), slug=slug, name=slug.title(), limits=LIMITS)


def report_network_ready(
    client: KubeClient, network: TenantNetwork, *, free_ips: int = 250
) -> None:
    """Write what Kube-OVN and MetalLB report once the tenant's network is up."""
    name = network.namespace  # the Vpc, Subnet and pool are named after the namespace
    client.patch_status("kubeovn.io/v1", "Vpc", name, {"standby": True})
    client.patch_status(
        "metallb.io/v1beta1",
        "IPAddressPool",
        name,
        {"assignedIPv4": 0, "availableIPv4": 4, "assignedIPv6": 0, "availableIPv6": 0},
        "metallb-system",
    )
    client.patch_status(
        "kubeovn.io/v1",
        "Subnet",
        name,
        {
            "conditions": [{"type": "Ready", "status": "True", "reason": "SetupFinished"}],
            "v4availableIPs": free_ips,
            "v4usingIPs": 253 - free_ips,
        },
    )


def network_event(network: TenantNetwork, state: str) -> Callable[[Event], bool]:
    def matches(event: Event) -> bool:
        return (event["kind"], event["id"], event.get("state")) == (
            "network.changed",
            network.pk,
            state,
        )

    return matches


class ClientGate:
    """Hands out the portal's client while open and None while closed, as when Kubernetes
    is unreachable, and records which threads asked while it was closed."""

    def __init__(self) -> None:
        self.open = threading.Event()
        self.open.set()
        self._asked_while_closed: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self) -> KubeClient | None:
        if self.open.is_set():
            return kube_client()
        with self._lock:
            self._asked_while_closed.add(threading.current_thread().name)
        return None

    def close(self) -> None:
        with self._lock:
            self._asked_while_closed.clear()
        self.open.clear()

    def held_back(self) -> int:
        """How many threads have found the gate closed since it closed."""
        with self._lock:
            return len(self._asked_while_closed)


def eventually(condition: Callable[[], bool], timeout: float) -> bool:
    """Whether ``condition`` holds within ``timeout`` seconds (checked every 20 ms)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def ghost_vpc(client: KubeClient, slug: str) -> ObjectRef:
    """A managed Vpc of a tenant the portal does not have (deleted behind its back)."""
    client.apply(
        {
            "apiVersion": "kubeovn.io/v1",
            "kind": "Vpc",
            "metadata": {"name": f"tenant-{slug}", "labels": portal_labels(slug)},
            "spec": {"namespaces": [f"tenant-{slug}"]},
        }
    )
    return ObjectRef("kubeovn.io/v1", "Vpc", "", f"tenant-{slug}")
