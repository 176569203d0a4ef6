"""Tenant background work. Thin: an id in, a service call, retries for transient failures."""

from __future__ import annotations

from celery import shared_task

from butler_portal.kube.errors import Transient
from butler_portal.kube.served import RETRYABLE_ERRORS
from butler_portal.tasks import RETRY_BACKOFF_MAX, RETRY_FOREVER, TeardownPending
from tenants import network


@shared_task(
    autoretry_for=RETRYABLE_ERRORS,
    retry_backoff=2,
    retry_backoff_max=RETRY_BACKOFF_MAX,
    max_retries=RETRY_FOREVER,
)
def apply_tenant(tenant_id: int) -> None:
    """Converge the tenant's namespace, quota and network in Kubernetes to the portal's plan."""
    network.network_apply(tenant_id=tenant_id)


@shared_task(
    autoretry_for=(Transient, TeardownPending),
    retry_backoff=2,
    retry_backoff_max=60,
    max_retries=30,
)
def delete_tenant(tenant_id: int) -> None:
    """Remove the tenant's Kubernetes objects, then the tenant itself once they are gone."""
    from tenants.services import tenant_delete_finish

    if not network.network_teardown(tenant_id=tenant_id):
        raise TeardownPending(tenant_id)
    tenant_delete_finish(tenant_id=tenant_id)
