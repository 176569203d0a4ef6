"""Drift in the API: the report and "apply again now", for the platform's roles only."""

from __future__ import annotations

import pytest
from django.urls import reverse

from butler_portal.kube.adapter import KubeClient
from tenants.models import ApiToken, AuditEvent, LoadBalancerRange, TenantNetwork, User
from tests.api_mixin import token_client_for
from tests.conftest import api_client_for
from tests.watcher.support import ghost_vpc, onboard

DRIFT = reverse("api:drift")
REPAIR = reverse("api:drift-repair")
NO_CLUSTER = "The portal runs without a management cluster (KUBE_MODE=off)."


def test_only_operators_and_auditors_read_it_and_only_operators_repair(
    personas: dict[str, User],
) -> None:
    read_only, _ = token_client_for(personas["oscar"], ApiToken.Scope.READ)

    assert api_client_for(None).get(DRIFT).status_code == 401
    for name in ("alice", "bob", "carol", "gina"):
        client = api_client_for(personas[name])
        assert (client.get(DRIFT).status_code, client.post(REPAIR).status_code) == (403, 403)
    assert api_client_for(personas["audrey"]).post(REPAIR).status_code == 403
    assert read_only.post(REPAIR).status_code == 403
    assert not AuditEvent.objects.filter(action="repair_drift").exists()


def test_without_a_management_cluster_it_is_503_with_the_reason(oscar: User, audrey: User) -> None:
    report = api_client_for(audrey).get(DRIFT)
    repair = api_client_for(oscar).post(REPAIR)

    assert (report.status_code, report.data) == (503, {"detail": NO_CLUSTER})
    assert (repair.status_code, repair.data) == (503, {"detail": NO_CLUSTER})


@pytest.mark.k8s
@pytest.mark.django_db(transaction=True)
def test_the_report_lists_what_is_missing_and_the_orphans_and_repair_applies_again(
    portal_k8s: KubeClient, address_space: LoadBalancerRange, oscar: User, audrey: User
) -> None:
    network = TenantNetwork.objects.get(tenant=onboard(oscar, "a-missing"))
    portal_k8s.delete("kubeovn.io/v1", "Subnet", network.namespace)
    orphan = ghost_vpc(portal_k8s, "a-ghost")
    subnet = f"Subnet.kubeovn.io/v1 {network.namespace}"

    report = api_client_for(audrey).get(DRIFT)
    repaired = api_client_for(oscar).post(REPAIR)
    after = api_client_for(audrey).get(DRIFT)

    assert report.status_code == 200
    assert report.data["clean"] is False
    assert {
        "check": "tenant networks",
        "owner": "tenant a-missing",
        "objects": [subnet],
    } in report.data["missing"]
    assert {
        "check": "tenant networks",
        "object": str(orphan),
        "reason": "tenant a-ghost no longer exists",
    } in report.data["orphans"]
    assert repaired.status_code == 200
    assert "tenant a-missing" in [m["owner"] for m in repaired.data["missing"]]
    assert "tenant a-missing" not in [m["owner"] for m in after.data["missing"]]
    assert str(orphan) in [o["object"] for o in after.data["orphans"]]  # left for a person
    event = AuditEvent.objects.get(action="repair_drift")
    assert event.actor_id == oscar.pk
    assert "tenant a-missing" in event.changes["applied_again"]
