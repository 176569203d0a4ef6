"""Drift check of clusters: every applied cluster's objects, and objects of no cluster.

A cluster that was applied (and is neither failed nor being deleted) expects exactly what
its manifests describe; when any of it is gone, provisioning applies the whole set again.
Portal-labelled cluster objects whose tenant and cluster the portal no longer has are
orphans: reported, never deleted (``butler_portal.watcher.drift``).
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial

from butler_portal.kube.informer import WatchedKind
from butler_portal.labels import CLUSTER_KEY, MANAGED_SELECTOR
from butler_portal.watcher.drift import DriftCheck, Expectation, ObjectRef
from clusters.manifests import PORTAL_KINDS, TENANT_CONTROL_PLANE_API, cluster_manifests
from clusters.models import Cluster
from clusters.provisioning import cluster_plan
from clusters.tasks import provision_after_commit
from tenants.owned import orphans_by_owner_label


def cluster_kinds() -> list[WatchedKind]:
    """The kinds the portal applies (Kamaji, not the portal, makes the TenantControlPlane)."""
    return [
        WatchedKind(api_version, kind, label_selector=MANAGED_SELECTOR)
        for api_version, kind in PORTAL_KINDS
        if api_version != TENANT_CONTROL_PLANE_API
    ]


def cluster_expectations() -> Iterator[Expectation]:
    settled = (
        Cluster.objects.filter(
            applied_at__isnull=False, deletion_requested_at__isnull=True, apply_error=""
        )
        .select_related("tenant", "version", "worker_version", "instance_type")
        .prefetch_related("addons")
    )
    for cluster in settled:
        manifests = cluster_manifests(cluster_plan(cluster))
        yield Expectation(
            owner=f"cluster {cluster.tenant.slug}/{cluster.name}",
            objects=frozenset(ObjectRef.of(manifest) for manifest in manifests),
            repair=partial(provision_after_commit, cluster.pk),
        )


def cluster_drift_check() -> DriftCheck:
    return DriftCheck(
        name="clusters",
        kinds=cluster_kinds(),
        expected=cluster_expectations,
        orphaned=partial(
            orphans_by_owner_label, model=Cluster, owner_label=CLUSTER_KEY, owner_kind="cluster"
        ),
    )
