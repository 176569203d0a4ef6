"""What the watcher follows for tenants, and where each change goes.

Every app with Kubernetes objects has a ``status.py`` like this one; the watcher collects
their ``status_handlers()`` and ``drift_checks()`` (see ``settings.WATCHER_HANDLER_MODULES``). A handler gets the
event type and the object, updates the portal's rows, and publishes tenant events (after
commit: the watcher runs each call in a transaction).
"""

from __future__ import annotations

from django.conf import settings

from butler_portal.kube.adapter import Manifest
from butler_portal.kube.informer import Handler, WatchedKind
from butler_portal.labels import MANAGED_SELECTOR
from butler_portal.watcher.drift import DriftCheck
from tenants import drift
from tenants.network import network_observe


def _network(kind: str) -> Handler:
    def handle(event_type: str, obj: Manifest) -> None:
        if event_type != "DELETED":
            network_observe(kind=kind, obj=obj)

    return handle


def status_handlers() -> dict[WatchedKind, Handler]:
    return {
        WatchedKind("kubeovn.io/v1", "Vpc", label_selector=MANAGED_SELECTOR): _network("Vpc"),
        WatchedKind("kubeovn.io/v1", "Subnet", label_selector=MANAGED_SELECTOR): _network("Subnet"),
        WatchedKind(
            "metallb.io/v1beta1",
            "IPAddressPool",
            namespace=settings.METALLB_NAMESPACE,
            label_selector=MANAGED_SELECTOR,
        ): _network("IPAddressPool"),
    }


def drift_checks() -> list[DriftCheck]:
    return drift.drift_checks()
