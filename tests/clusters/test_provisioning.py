"""Provisioning and deletion against the real API server (tasks run on commit, eagerly)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from butler_portal.kube.adapter import KubeClient, Manifest
from butler_portal.kube.errors import NotFound
from clusters.manifests import PORTAL_KINDS
from clusters.models import Cluster
from clusters.seed import seed_catalog
from clusters.services import cluster_delete, cluster_retry, cluster_scale
from tenants.audit import Actor
from tenants.models import AuditEvent, LoadBalancerRange, Tenant, User
from tenants.selectors import quota_used
from tests.clusters.conftest import request
from tests.provisioning_support import (
    admission_policy,
    onboarded_tenant,
    stray_object,
    wait_until_policy,
)

pytestmark = [pytest.mark.k8s, pytest.mark.django_db(transaction=True)]

LIMITS = {
    "clusters": 2,
    "worker_nodes": 10,
    "vcpu": 40,
    "memory_mib": 81920,
    "storage_gib": 500,
    "load_balancer_ips": 2,
}


@pytest.fixture
def operator() -> User:
    return User.objects.create_user("op", password="x", platform_role="operator")


@pytest.fixture
def tenant(portal_k8s: KubeClient, address_space: LoadBalancerRange, operator: User) -> Tenant:
    """A tenant onboarded for real: its namespace, quota and network exist in Kubernetes."""
    seed_catalog()
    return onboarded_tenant(operator, "prov", LIMITS)


def objects_of(client: KubeClient, tenant: Tenant, cluster: str) -> dict[str, list[str]]:
    selector = f"butler.io/tenant={tenant.slug},butler.io/cluster={cluster}"
    found: dict[str, list[str]] = {}
    for api_version, kind in PORTAL_KINDS:
        items = client.list(
            api_version, kind, f"tenant-{tenant.slug}", label_selector=selector
        ).items
        if items:
            found[kind] = sorted(item["metadata"]["name"] for item in items)
    return found


def test_a_request_applies_every_object_labelled_in_the_tenant_namespace(
    portal_k8s: KubeClient, tenant: Tenant, operator: User
) -> None:
    cluster = request(tenant, operator, "web", worker_count=2)

    cluster.refresh_from_db()
    assert cluster.applied_at is not None
    assert (cluster.phase, cluster.phase_reason) == (
        Cluster.Phase.PROVISIONING,
        "Waiting for Cluster API to pick up the cluster",
    )
    found = objects_of(portal_k8s, tenant, "web")
    assert found.keys() == {kind for _, kind in PORTAL_KINDS} - {"TenantControlPlane"}
    assert found["HelmRelease"] == ["web-cilium", "web-portal-access"]
    namespace = f"tenant-{tenant.slug}"
    kcp = portal_k8s.get(
        "controlplane.cluster.x-k8s.io/v1alpha2", "KamajiControlPlane", "web", namespace
    )
    assert kcp["spec"]["network"]["serviceAnnotations"] == {"metallb.io/address-pool": namespace}

    cluster_scale(actor=Actor(operator), cluster=cluster, worker_count=4)
    deployment = portal_k8s.get(
        "cluster.x-k8s.io/v1beta2", "MachineDeployment", "web-md-0", namespace
    )
    assert deployment["spec"]["replicas"] == 4


def _too_many_workers(tenant: Tenant) -> dict[str, Any]:
    """A MachineDeployment the worker limit refuses (it probes whether the policy bites)."""
    return {
        "apiVersion": "cluster.x-k8s.io/v1beta2",
        "kind": "MachineDeployment",
        "metadata": {"name": "policy-probe", "namespace": f"tenant-{tenant.slug}"},
        "spec": {
            "clusterName": "probe",
            "replicas": 9,
            "selector": {"matchLabels": {"probe": "yes"}},
            "template": {
                "metadata": {"labels": {"probe": "yes"}},
                "spec": {
                    "clusterName": "probe",
                    "bootstrap": {"dataSecretName": "none"},
                    "infrastructureRef": {"apiGroup": "x.io", "kind": "X", "name": "x"},
                },
            },
        },
    }


@pytest.fixture
def worker_limit(portal_k8s: KubeClient, tenant: Tenant) -> Iterator[Manifest]:
    """At most 3 workers per pool in the tenant's namespace; yields the policy's binding."""
    with admission_policy(
        portal_k8s,
        tenant,
        resource="cluster.x-k8s.io/machinedeployments",
        expression="object.spec.replicas <= 3",
        message="at most 3 workers per pool here",
    ) as binding:
        wait_until_policy(portal_k8s, _too_many_workers(tenant), enforced=True)
        yield binding


def test_kubernetes_refusing_an_object_fails_the_cluster_with_its_words_and_frees_the_quota(
    portal_k8s: KubeClient, tenant: Tenant, operator: User, worker_limit: Manifest
) -> None:
    cluster = request(tenant, operator, "big", worker_count=5)

    cluster.refresh_from_db()
    assert cluster.phase == Cluster.Phase.FAILED
    assert cluster.phase_reason.startswith("Kubernetes rejected MachineDeployment big-md-0: ")
    assert "at most 3 workers per pool here" in cluster.phase_reason
    assert quota_used(tenant)["worker_nodes"] == 0
    assert quota_used(tenant)["clusters"] == 0
    failure = AuditEvent.objects.get(object_type="cluster", action="fail")
    assert failure.actor is None
    assert failure.changes == {"reason": cluster.phase_reason}

    # Once the policy is gone, a retry takes the quota again and goes through.
    portal_k8s.delete_manifest(worker_limit)
    wait_until_policy(portal_k8s, _too_many_workers(tenant), enforced=False)
    cluster_retry(actor=Actor(operator), cluster=cluster)
    cluster.refresh_from_db()
    assert (cluster.phase, cluster.apply_error) == (Cluster.Phase.PROVISIONING, "")
    assert quota_used(tenant)["worker_nodes"] == 5


def test_deleting_removes_every_object_then_the_quota_and_the_row(
    portal_k8s: KubeClient, tenant: Tenant, operator: User
) -> None:
    cluster = request(tenant, operator, "gone")
    # What the Kamaji provider would add: a TenantControlPlane carrying the KCP's labels.
    namespace = f"tenant-{tenant.slug}"
    portal_k8s.apply(
        {
            "apiVersion": "kamaji.clastix.io/v1alpha1",
            "kind": "TenantControlPlane",
            "metadata": {
                "name": "gone",
                "namespace": namespace,
                "labels": {"butler.io/tenant": tenant.slug, "butler.io/cluster": "gone"},
            },
            "spec": {
                "controlPlane": {"service": {"serviceType": "LoadBalancer"}},
                "kubernetes": {"version": "v1.35.4", "kubelet": {"cgroupfs": "systemd"}},
                "networkProfile": {"port": 6443},
            },
        }
    )
    assert "TenantControlPlane" in objects_of(portal_k8s, tenant, "gone")

    assert cluster_delete(actor=Actor(operator), cluster=cluster, confirm_name="gone") is False

    # The delete task ran on commit: on a bare API server nothing holds the objects back.
    assert objects_of(portal_k8s, tenant, "gone") == {}
    with pytest.raises(NotFound):
        portal_k8s.get("cluster.x-k8s.io/v1beta2", "Cluster", "gone", namespace)
    assert not Cluster.objects.filter(pk=cluster.pk).exists()
    assert quota_used(tenant)["clusters"] == 0
    assert list(
        AuditEvent.objects.filter(object_type="cluster", object_id=str(cluster.pk))
        .order_by("id")
        .values_list("action", flat=True)
    ) == ["create", "delete", "delete_complete"]


def test_the_reconcile_puts_back_what_went_missing_and_reports_orphans(
    portal_k8s: KubeClient, tenant: Tenant, operator: User
) -> None:
    from butler_portal.watcher.drift import drift_report, reconcile
    from clusters.status import drift_checks

    request(tenant, operator, "kept")
    namespace = f"tenant-{tenant.slug}"
    portal_k8s.delete("cluster.x-k8s.io/v1beta2", "MachineDeployment", "kept-md-0", namespace)
    stray = stray_object(
        "infrastructure.cluster.x-k8s.io/v1alpha1",
        "KubevirtCluster",
        "forgotten",
        tenant,
        {"butler.io/cluster": "forgotten"},
        spec={},
    )
    portal_k8s.apply(stray)

    report = drift_report(portal_k8s, drift_checks()).as_dict()
    ours = [m for m in report["missing"] if m["owner"] == f"cluster {tenant.slug}/kept"]
    assert ours == [
        {
            "check": "clusters",
            "owner": f"cluster {tenant.slug}/kept",
            "objects": [f"MachineDeployment.cluster.x-k8s.io/v1beta2 {namespace}/kept-md-0"],
        }
    ]
    assert {
        "check": "clusters",
        "object": f"KubevirtCluster.infrastructure.cluster.x-k8s.io/v1alpha1 {namespace}/forgotten",
        "reason": f"cluster {tenant.slug}/forgotten no longer exists",
    } in report["orphans"]

    reconcile(portal_k8s, drift_checks())

    assert portal_k8s.get("cluster.x-k8s.io/v1beta2", "MachineDeployment", "kept-md-0", namespace)
    portal_k8s.delete_manifest(stray)
