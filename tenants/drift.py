"""Drift check of tenant networks: each tenant's namespace, quota, Kube-OVN and MetalLB objects.

A tenant whose network should exist (neither failed nor being deleted) expects exactly what
its manifests describe; when any of it is gone, ``network_request_apply`` applies the whole
set again. Managed objects labelled with a tenant that no longer exists are orphans.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial

from django.conf import settings

from butler_portal.kube.informer import WatchedKind
from butler_portal.labels import MANAGED_SELECTOR
from butler_portal.watcher.drift import DriftCheck, Expectation, ObjectRef, orphans_by_tenant_label
from tenants.manifests import tenant_manifests
from tenants.models import TenantNetwork
from tenants.network import network_request_apply, tenant_plan


def network_kinds() -> list[WatchedKind]:
    metallb = settings.METALLB_NAMESPACE
    return [
        WatchedKind("v1", "Namespace", label_selector=MANAGED_SELECTOR),
        WatchedKind("v1", "ResourceQuota", label_selector=MANAGED_SELECTOR),
        WatchedKind("v1", "LimitRange", label_selector=MANAGED_SELECTOR),
        WatchedKind("kubeovn.io/v1", "Vpc", label_selector=MANAGED_SELECTOR),
        WatchedKind("kubeovn.io/v1", "Subnet", label_selector=MANAGED_SELECTOR),
        WatchedKind("metallb.io/v1beta1", "IPAddressPool", metallb, MANAGED_SELECTOR),
        WatchedKind("metallb.io/v1beta1", "L2Advertisement", metallb, MANAGED_SELECTOR),
    ]


def network_expectations() -> Iterator[Expectation]:
    # A failed network would only fail again (an operator fixes and retries it); a deleting
    # one is on its way out.
    settled = [TenantNetwork.State.FAILED, TenantNetwork.State.DELETING]
    for network in TenantNetwork.objects.exclude(state__in=settled).select_related("tenant"):
        tenant = network.tenant
        yield Expectation(
            owner=f"tenant {tenant.slug}",
            objects=frozenset(ObjectRef.of(m) for m in tenant_manifests(tenant_plan(tenant))),
            repair=partial(network_request_apply, tenant=tenant),
        )


def drift_checks() -> list[DriftCheck]:
    return [
        DriftCheck(
            name="tenant networks",
            kinds=network_kinds(),
            expected=network_expectations,
            orphaned=orphans_by_tenant_label,
        )
    ]
