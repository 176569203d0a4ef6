"""Applying a cluster to Kubernetes and taking it down again (called by ``clusters.tasks``).

Idempotent: server-side apply converges whatever exists to what the database says, so a
retried or repeated task does no harm. ``Transient`` errors propagate for the task to retry;
anything else Kubernetes refuses ends the cluster as Failed with the API's own words, and
gives its quota back (a retry reserves it again).
"""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

import yaml
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from butler_portal.kube import kube_client
from butler_portal.kube.errors import KubeError, NotFound
from butler_portal.kube.served import RETRYABLE_ERRORS, waiting_reason
from butler_portal.labels import CLUSTER_KEY, TENANT_KEY
from butler_portal.realtime import publish_tenant_event
from clusters.manifests import (
    PORTAL_KINDS,
    AddonPlan,
    ClusterPlan,
    addon_manifests,
    cluster_manifest,
    cluster_manifests,
)
from clusters.models import Cluster, ClusterAddon, KubernetesVersion
from clusters.status import CLUSTER_EVENT, cluster_refresh
from tenants.audit import Actor, audit_record
from tenants.owned import apply_client, namespace_of, refusal_reason
from tenants.services import quota_release

logger = logging.getLogger(__name__)


# --- The plan -------------------------------------------------------------------------------


def node_image_for(version: KubernetesVersion) -> str:
    return version.node_image or settings.CLUSTER_NODE_IMAGE.format(version=version.version)


def addon_plan(addon: ClusterAddon) -> AddonPlan:
    values = yaml.safe_load(addon.values) if addon.values.strip() else {}
    return AddonPlan(
        name=addon.name,
        repository_url=addon.repository_url,
        chart=addon.chart,
        version=addon.version,
        values=values or {},
        target_namespace=addon.target_namespace,
    )


def cluster_plan(cluster: Cluster) -> ClusterPlan:
    namespace = namespace_of(cluster)
    return ClusterPlan(
        tenant_slug=cluster.tenant.slug,
        namespace=namespace,
        name=cluster.name,
        version=cluster.version.version,
        worker_version=cluster.worker_version.version,
        control_plane_replicas=cluster.control_plane_replicas,
        worker_count=cluster.worker_count,
        hibernated=cluster.hibernated,
        worker_vcpu=cluster.instance_type.vcpu,
        worker_memory_mib=cluster.instance_type.memory_mib,
        worker_disk_gib=cluster.worker_disk_gib,
        node_image=node_image_for(cluster.worker_version),
        # The tenant's MetalLB IPAddressPool is named like its namespace (tenants.manifests).
        address_pool=namespace,
        pod_cidr=settings.CLUSTER_POD_CIDR,
        service_cidr=settings.CLUSTER_SERVICE_CIDR,
        dns_domain=settings.CLUSTER_DNS_DOMAIN,
        storage_class=settings.CLUSTER_WORKER_STORAGE_CLASS,
        datastore=settings.KAMAJI_DATASTORE,
        addons=tuple(addon_plan(addon) for addon in cluster.addons.order_by("name")),
    )


def _load(cluster_id: int) -> Cluster | None:
    return (
        Cluster.objects.select_related("tenant", "version", "worker_version", "instance_type")
        .filter(pk=cluster_id)
        .first()
    )


def _locked(cluster_id: int) -> Cluster | None:
    return (
        Cluster.objects.select_for_update(of=("self",))
        .select_related("tenant", "version", "worker_version")
        .filter(pk=cluster_id)
        .first()
    )


def _note(cluster_id: int, reason: str) -> None:
    """Say why nothing moves, without changing the phase (the portal's own words)."""
    cluster = Cluster.objects.filter(pk=cluster_id).first()
    if cluster is not None and cluster.phase_reason != reason:
        Cluster.objects.filter(pk=cluster_id).update(phase_reason=reason, phase_reason_raw="")
        publish_tenant_event(cluster.tenant_id, CLUSTER_EVENT, cluster_id, phase=cluster.phase)


# --- Applying -------------------------------------------------------------------------------


def cluster_provision(*, cluster_id: int) -> None:
    """Converge the cluster's objects in Kubernetes to the database (create or day 2)."""
    cluster = _load(cluster_id)
    if cluster is None or cluster.deletion_requested_at or cluster.apply_error:
        return
    client = apply_client(cluster, note=partial(_note, cluster_id))
    if client is None:
        return
    manifest: dict[str, Any] = {}
    try:
        for manifest in cluster_manifests(cluster_plan(cluster)):
            client.apply(manifest)
    except RETRYABLE_ERRORS as error:
        _note(cluster_id, waiting_reason(error))  # the task tries again with backoff
        raise
    except KubeError as error:
        cluster_fail(cluster_id=cluster_id, reason=refusal_reason(manifest, error))
        return
    with transaction.atomic():
        locked = _locked(cluster_id)
        if locked is None or locked.deletion_requested_at or locked.apply_error:
            return
        locked.applied_at = timezone.now()
        locked.save(update_fields=["applied_at", "updated_at"])
        cluster_refresh(locked)


@transaction.atomic
def cluster_fail(*, cluster_id: int, reason: str) -> None:
    """End provisioning as Failed with ``reason``; the cluster's quota goes back to the tenant."""
    cluster = _locked(cluster_id)
    if cluster is None or cluster.deletion_requested_at:
        return
    logger.warning("cluster %s/%s failed: %s", cluster.tenant.slug, cluster.name, reason)
    cluster.apply_error = reason
    cluster.save(update_fields=["apply_error", "updated_at"])
    quota_release(tenant=cluster.tenant, subject=cluster.quota_subject)
    audit_record(
        actor=Actor.system(),
        action="fail",
        tenant=cluster.tenant,
        target=cluster,
        changes={"reason": reason},
    )
    cluster_refresh(cluster)


# --- Taking down ----------------------------------------------------------------------------


def cluster_teardown(*, cluster_id: int) -> bool:
    """Delete the cluster's objects; True once Kubernetes has let go of all of them.

    Only the Cluster is deleted at first: Cluster API then removes the workers before the
    control plane (STATUS.md §10.10). The add-on releases go first, while the tenant API
    still answers their uninstall. Once the Cluster is gone, whatever the portal applied
    and is still there (a bare API server has no garbage collector) is deleted too.
    """
    cluster = _load(cluster_id)
    if cluster is None:
        return True
    client = kube_client()
    if client is None:
        cluster_delete_finish(cluster_id=cluster_id)
        return True
    plan = cluster_plan(cluster)
    for manifest in addon_manifests(plan):
        client.delete_manifest(manifest)
    capi_cluster = cluster_manifest(plan)
    client.delete_manifest(capi_cluster)
    try:
        client.get_manifest(capi_cluster)
    except NotFound:
        pass
    else:
        # The watcher's picture says what is left (clusters.lifecycle): a note here would
        # alternate with it on every retry.
        return False
    remaining = _sweep(plan)
    if remaining:
        _note(cluster_id, f"Waiting for Kubernetes to remove {', '.join(remaining[:5])}.")
        return False
    cluster_delete_finish(cluster_id=cluster_id)
    return True


def _sweep(plan: ClusterPlan) -> list[str]:
    """Delete the cluster's leftover objects; what is still there afterwards."""
    client = kube_client()
    assert client is not None
    selector = f"{TENANT_KEY}={plan.tenant_slug},{CLUSTER_KEY}={plan.name}"
    remaining = []
    for api_version, kind in PORTAL_KINDS:
        try:
            found = client.list(api_version, kind, plan.namespace, label_selector=selector).items
        except NotFound:  # a kind this management cluster does not serve
            continue
        for item in found:
            name = item["metadata"]["name"]
            if not item["metadata"].get("deletionTimestamp"):
                client.delete(api_version, kind, name, plan.namespace)
            try:
                client.get(api_version, kind, name, plan.namespace)
            except NotFound:
                continue
            remaining.append(f"{kind} {name}")
    return remaining


@transaction.atomic
def cluster_delete_finish(*, cluster_id: int, audited: bool = True) -> None:
    """The last step of a deletion: Kubernetes let go, so the quota and the row go too.

    ``audited`` records the completion in the cluster's action log; a deletion finished
    within the request that asked for it needs no second entry.
    """
    cluster = _locked(cluster_id)
    if cluster is None or cluster.deletion_requested_at is None:
        return
    quota_release(tenant=cluster.tenant, subject=cluster.quota_subject)
    if audited:
        audit_record(
            actor=Actor.system(), action="delete_complete", tenant=cluster.tenant, target=cluster
        )
    tenant_id, pk = cluster.tenant_id, cluster.pk
    cluster.delete()
    publish_tenant_event(tenant_id, CLUSTER_EVENT, pk, phase="deleted")
