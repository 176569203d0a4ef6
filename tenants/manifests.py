"""The Kubernetes objects that make up a tenant, as pure functions of portal data.

No database and no API calls here: given the tenant, its quota and its network plan, each
function returns manifests; tests check them without a cluster and apply them to a real
API server to prove them schema-valid.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from butler_portal.labels import SUSPENDED_KEY, portal_labels
from tenants.addressing import gateway_of, reserved_range

Manifest = dict[str, Any]

# Kubernetes quota names for what the portal counts. Object counts use the generic
# `count/<resource>.<group>` form, so they hold whoever creates the object.
OBJECT_COUNT_QUOTAS = {
    "clusters": "count/clusters.cluster.x-k8s.io",
    "vms": "count/virtualmachines.kubevirt.io",
    "load_balancer_ips": "services.loadbalancers",
}


@dataclass(frozen=True)
class TenantPlan:
    """Everything the manifests need to know about one tenant."""

    slug: str
    namespace: str
    suspended: bool
    limits: Mapping[str, int]
    subnet_cidr: str | None
    lb_ranges: Sequence[str]  # "first-last" strings

    @property
    def network_name(self) -> str:
        # Vpc and Subnet are cluster-scoped: the namespace name is already unique.
        return self.namespace


def namespace_manifest(plan: TenantPlan) -> Manifest:
    labels = portal_labels(plan.slug)
    if plan.suspended:
        labels[SUSPENDED_KEY] = "true"
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": plan.namespace, "labels": labels},
    }


def kubernetes_quota(limits: Mapping[str, int], *, suspended: bool) -> dict[str, str]:
    """The portal quota as ResourceQuota `hard` values.

    CPU and memory carry an allowance for what runs beside the tenant's own workloads in
    its namespace (Kamaji control-plane pods, KubeVirt's per-VM launcher overhead), so the
    portal quota, not hidden overhead, is what a tenant runs into. A suspended tenant keeps
    what it has but may not create new clusters, VMs or load balancers.
    """
    overhead = settings.KUBE_QUOTA_OVERHEAD_PERCENT / 100
    cp_cpu_milli = settings.KUBE_CONTROL_PLANE_CPU_MILLI * limits.get("clusters", 0)
    cp_memory_mib = settings.KUBE_CONTROL_PLANE_MEMORY_MIB * limits.get("clusters", 0)
    cpu_milli = round(limits.get("vcpu", 0) * 1000 * (1 + overhead)) + cp_cpu_milli
    memory_mib = round(limits.get("memory_mib", 0) * (1 + overhead)) + cp_memory_mib
    hard = {
        "requests.cpu": f"{cpu_milli}m",
        "requests.memory": f"{memory_mib}Mi",
        "requests.storage": f"{limits.get('storage_gib', 0)}Gi",
    }
    for resource, quota_name in OBJECT_COUNT_QUOTAS.items():
        hard[quota_name] = "0" if suspended else str(limits.get(resource, 0))
    return hard


def resource_quota_manifest(plan: TenantPlan) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {
            "name": "butler-portal-quota",
            "namespace": plan.namespace,
            "labels": portal_labels(plan.slug),
        },
        "spec": {"hard": kubernetes_quota(plan.limits, suspended=plan.suspended)},
    }


def limit_range_manifest(plan: TenantPlan) -> Manifest:
    """Defaults for containers that declare no requests, so the ResourceQuota admits them."""
    return {
        "apiVersion": "v1",
        "kind": "LimitRange",
        "metadata": {
            "name": "butler-portal-defaults",
            "namespace": plan.namespace,
            "labels": portal_labels(plan.slug),
        },
        "spec": {
            "limits": [
                {
                    "type": "Container",
                    "defaultRequest": {"cpu": "100m", "memory": "128Mi"},
                    "default": {"cpu": "1", "memory": "1Gi"},
                }
            ]
        },
    }


def vpc_manifest(plan: TenantPlan) -> Manifest:
    return {
        "apiVersion": "kubeovn.io/v1",
        "kind": "Vpc",
        "metadata": {"name": plan.network_name, "labels": portal_labels(plan.slug)},
        "spec": {"namespaces": [plan.namespace]},
    }


def subnet_manifest(plan: TenantPlan) -> Manifest:
    if plan.subnet_cidr is None:
        raise ValueError(f"tenant {plan.slug} has no subnet allocated")
    return {
        "apiVersion": "kubeovn.io/v1",
        "kind": "Subnet",
        "metadata": {"name": plan.network_name, "labels": portal_labels(plan.slug)},
        "spec": {
            "vpc": plan.network_name,
            "protocol": "IPv4",
            "cidrBlock": plan.subnet_cidr,
            "gateway": gateway_of(plan.subnet_cidr),
            "excludeIps": [reserved_range(plan.subnet_cidr)],
            "namespaces": [plan.namespace],
            "gatewayType": "distributed",
            "natOutgoing": True,
            "private": False,
            "enableDHCP": False,
        },
    }


def address_pool_manifest(plan: TenantPlan) -> Manifest:
    return {
        "apiVersion": "metallb.io/v1beta1",
        "kind": "IPAddressPool",
        "metadata": {
            "name": plan.network_name,
            "namespace": settings.METALLB_NAMESPACE,
            "labels": portal_labels(plan.slug),
        },
        "spec": {
            "addresses": list(plan.lb_ranges),
            "autoAssign": True,
            "avoidBuggyIPs": True,
            # Only Services of this tenant's namespace may take addresses from its share.
            "serviceAllocation": {"priority": 10, "namespaces": [plan.namespace]},
        },
    }


def l2_advertisement_manifest(plan: TenantPlan) -> Manifest:
    return {
        "apiVersion": "metallb.io/v1beta1",
        "kind": "L2Advertisement",
        "metadata": {
            "name": plan.network_name,
            "namespace": settings.METALLB_NAMESPACE,
            "labels": portal_labels(plan.slug),
        },
        "spec": {"ipAddressPools": [plan.network_name]},
    }


def tenant_manifests(plan: TenantPlan) -> list[Manifest]:
    """Everything a tenant needs, in apply order (the namespace first)."""
    manifests = [
        namespace_manifest(plan),
        resource_quota_manifest(plan),
        limit_range_manifest(plan),
        vpc_manifest(plan),
        subnet_manifest(plan),
    ]
    if plan.lb_ranges:
        manifests += [address_pool_manifest(plan), l2_advertisement_manifest(plan)]
    return manifests


def address_share_manifests(plan: TenantPlan) -> list[Manifest]:
    """The MetalLB objects, also for deleting them when a tenant's share drops to zero."""
    return [address_pool_manifest(plan), l2_advertisement_manifest(plan)]
