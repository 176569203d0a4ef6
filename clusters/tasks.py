"""Cluster background work. Thin: an id in, a provisioning call, retries for what may pass."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from butler_portal.kube.errors import Transient
from butler_portal.kube.served import RETRYABLE_ERRORS
from butler_portal.tasks import (
    RETRY_BACKOFF_MAX,
    RETRY_FOREVER,
    NamespaceNotReady,
    TeardownPending,
    enqueue_after_commit,
)
from clusters import provisioning
from clusters.models import Cluster
from tenants.owned import waiting_for_namespace


@shared_task(
    autoretry_for=(*RETRYABLE_ERRORS, NamespaceNotReady),
    retry_backoff=2,
    retry_backoff_max=RETRY_BACKOFF_MAX,
    max_retries=RETRY_FOREVER,
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


def provision_those_waiting_for_namespace(sender: object, *, tenant_id: int, **kwargs: Any) -> None:
    """Receiver of ``tenants.signals.tenant_namespace_applied`` (connected in apps.py)."""
    for cluster_id in waiting_for_namespace(Cluster, tenant_id=tenant_id):
        provision_after_commit(cluster_id)
