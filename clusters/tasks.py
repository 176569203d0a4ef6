"""Cluster background work. Thin: an id in, a provisioning call, retries for what may pass."""

from __future__ import annotations

from celery import shared_task

from butler_portal.kube.errors import Transient
from butler_portal.tasks import NamespaceNotReady, TeardownPending, enqueue_after_commit
from clusters import provisioning


@shared_task(
    autoretry_for=(Transient, NamespaceNotReady),
    retry_backoff=2,
    retry_backoff_max=120,
    max_retries=12,
)
def provision_cluster(cluster_id: int) -> None:
    """Apply the cluster's objects (first creation and every day-2 change alike)."""
    provisioning.cluster_provision(cluster_id=cluster_id)


@shared_task(
    autoretry_for=(Transient, TeardownPending),
    retry_backoff=2,
    retry_backoff_max=60,
    max_retries=60,
)
def delete_cluster(cluster_id: int) -> None:
    """Delete the cluster's objects; once Kubernetes confirms, its quota and row go too.

    The watcher also calls this when the CAPI Cluster disappears, so a deletion finishes
    promptly even after this task has given up retrying.
    """
    if not provisioning.cluster_teardown(cluster_id=cluster_id):
        raise TeardownPending(cluster_id)


def provision_after_commit(cluster_id: int) -> None:
    """Apply the cluster once the current transaction commits (never for a rolled-back change)."""
    enqueue_after_commit(provision_cluster, cluster_id)


def delete_after_commit(cluster_id: int) -> None:
    enqueue_after_commit(delete_cluster, cluster_id)
