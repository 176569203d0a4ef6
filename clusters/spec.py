"""What a cluster request asks for, and what it costs in quota.

Shared by the services (which reserve), the selectors (which preview) and the API/UI forms
(which build a ``ClusterSpec`` from validated input).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from django.core.exceptions import NON_FIELD_ERRORS

from clusters.models import ClusterAddon, InstanceType, KubernetesVersion
from tenants.models import QuotaResource


@dataclass(frozen=True)
class ClusterSpec:
    name: str
    version: KubernetesVersion
    instance_type: InstanceType
    worker_count: int = 2
    control_plane_replicas: int = 2
    worker_disk_gib: int = 20
    deletion_protection: bool = False
    #: Optional add-ons on top of the required ones (which every cluster gets).
    addons: Sequence[ClusterAddon] = field(default_factory=tuple)


#: The form field to blame when a quota resource runs out.
QUOTA_FIELDS: Mapping[str, str] = {
    QuotaResource.CLUSTERS: NON_FIELD_ERRORS,
    QuotaResource.WORKER_NODES: "worker_count",
    QuotaResource.VCPU: "instance_type",
    QuotaResource.MEMORY_MIB: "instance_type",
    QuotaResource.STORAGE_GIB: "worker_disk_gib",
    # The control-plane endpoint takes one address from the tenant's MetalLB share.
    QuotaResource.LOAD_BALANCER_IPS: NON_FIELD_ERRORS,
}


def cluster_quota_amounts(
    *, instance_type: InstanceType, worker_count: int, worker_disk_gib: int
) -> dict[str, int]:
    """What a cluster holds of its tenant's quota.

    Workers count in full; the hosted control plane's pods are covered by the per-cluster
    allowance in the tenant's ResourceQuota (``KUBE_CONTROL_PLANE_*`` settings).
    """
    return {
        QuotaResource.CLUSTERS: 1,
        QuotaResource.WORKER_NODES: worker_count,
        QuotaResource.VCPU: worker_count * instance_type.vcpu,
        QuotaResource.MEMORY_MIB: worker_count * instance_type.memory_mib,
        QuotaResource.STORAGE_GIB: worker_count * worker_disk_gib,
        QuotaResource.LOAD_BALANCER_IPS: 1,
    }


def spec_quota_amounts(spec: ClusterSpec) -> dict[str, int]:
    return cluster_quota_amounts(
        instance_type=spec.instance_type,
        worker_count=spec.worker_count,
        worker_disk_gib=spec.worker_disk_gib,
    )
