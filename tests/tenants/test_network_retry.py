"""Retrying a tenant network Kubernetes refused: only a Failed one, audited, applied again."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.db import transaction

from tenants.audit import Actor
from tenants.models import AuditEvent, LoadBalancerRange, Tenant, TenantNetwork, User
from tenants.network import NETWORK_EVENT, network_allocate
from tenants.services import tenant_network_retry
from tests.clusters.conftest import published_events

__all__ = ["published_events"]

REFUSAL = "Kubernetes rejected the network: Subnet.kubeovn.io tenant-acme: cidrBlock overlaps"


def network_of(tenant: Tenant, **state: Any) -> TenantNetwork:
    with transaction.atomic():
        network_allocate(tenant=tenant)
    TenantNetwork.objects.filter(tenant=tenant).update(**state)
    return TenantNetwork.objects.get(tenant=tenant)


@pytest.mark.usefixtures("address_space")
def test_a_failed_network_is_applied_again_and_the_retry_audited(
    acme: Tenant,
    oscar: User,
    published_events: list[tuple[int, str, Any, dict[str, Any]]],
    django_capture_on_commit_callbacks: Any,
) -> None:
    network = network_of(acme, state=TenantNetwork.State.FAILED, message=REFUSAL)

    with django_capture_on_commit_callbacks(execute=True):
        retried = tenant_network_retry(actor=Actor(oscar), tenant=acme)
        # Until the apply task runs, the network is on its way again, its failure cleared.
        assert (retried.state, retried.message) == (TenantNetwork.State.PROVISIONING, "")

    event = AuditEvent.objects.get(action="retry", object_type="tenantnetwork")
    assert (event.actor, event.tenant, event.object_id, event.object_repr) == (
        oscar,
        acme,
        str(network.pk),
        "acme network",
    )
    assert event.changes == {"previous_error": REFUSAL}
    # The apply task ran once the retry committed; without Kubernetes it says so.
    network.refresh_from_db()
    assert (network.state, network.message) == (
        TenantNetwork.State.PENDING,
        "No Kubernetes cluster is configured.",
    )
    # Open panels heard of it first, before the task's own report.
    network_events = [e for e in published_events if e[1] == NETWORK_EVENT]
    assert network_events[0][:3] == (acme.pk, NETWORK_EVENT, network.pk)
    assert network_events[0][3]["state"] == TenantNetwork.State.PROVISIONING


@pytest.mark.usefixtures("address_space")
@pytest.mark.parametrize(
    "state",
    [
        TenantNetwork.State.PENDING,
        TenantNetwork.State.PROVISIONING,
        TenantNetwork.State.READY,
        TenantNetwork.State.DELETING,
    ],
)
def test_only_a_failed_network_is_retried(
    acme: Tenant, oscar: User, state: str, django_capture_on_commit_callbacks: Any
) -> None:
    network_of(acme, state=state, message="As it was")

    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(ValidationError) as refused,
    ):
        tenant_network_retry(actor=Actor(oscar), tenant=acme)

    label = TenantNetwork.State(state).label.lower()
    assert refused.value.message_dict == {
        "__all__": [f"Only a failed network can be retried; the network of acme is {label}."]
    }
    assert callbacks == []  # nothing applied
    assert TenantNetwork.objects.get(tenant=acme).state == state
    assert not AuditEvent.objects.filter(action="retry").exists()


def test_a_tenant_without_a_network_has_nothing_to_retry(acme: Tenant, oscar: User) -> None:
    with pytest.raises(ValidationError) as refused:
        tenant_network_retry(actor=Actor(oscar), tenant=acme)

    assert refused.value.message_dict == {"__all__": ["acme has no network to retry."]}


def test_a_suspended_tenants_network_is_retried_too(
    acme: Tenant, oscar: User, address_space: LoadBalancerRange
) -> None:
    """Suspension shrinks what the tenant may hold; its network must still be there."""
    network_of(acme, state=TenantNetwork.State.FAILED, message=REFUSAL)
    Tenant.objects.filter(pk=acme.pk).update(state=Tenant.State.SUSPENDED)

    retried = tenant_network_retry(actor=Actor(oscar), tenant=acme)

    assert retried.state == TenantNetwork.State.PROVISIONING
