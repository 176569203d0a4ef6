"""The operator console's drift page, against the real API server."""

from __future__ import annotations

import html
import re

import pytest
from django.urls import reverse

from butler_portal.kube.adapter import KubeClient
from butler_portal.kube.errors import NotFound
from tenants.models import AuditEvent, LoadBalancerRange, TenantNetwork, User
from tests.conftest import browser_client_for
from tests.ui.conftest import htmx, page_text, toasts
from tests.watcher.support import ghost_vpc, onboard

DRIFT = reverse("operator-drift")
REPAIR = reverse("operator-drift-repair")


def report_of(user: User) -> str:
    return html.unescape(page_text(user, DRIFT, **htmx("drift-report")))


def rows_of(text: str, table: str) -> list[str]:
    body = re.search(rf'<table class="table" id="{table}">(.*?)</table>', text, re.S)
    assert body, f"no {table} table"
    return [
        re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", row)).strip()
        for row in re.findall(r"<tr>(.*?)</tr>", body.group(1), re.S)
    ]


def test_the_page_comes_at_once_and_the_report_after_it(oscar: User) -> None:
    text = page_text(oscar, DRIFT)

    assert f'hx-get="{DRIFT}" hx-trigger="load"' in text
    assert "Comparing the portal with Kubernetes" in text
    assert 'id="drift-missing"' not in text
    assert 'href="/operator/drift/" aria-current="page"' in text


def test_without_a_management_cluster_the_report_says_so(oscar: User) -> None:
    text = report_of(oscar)

    assert text.lstrip().startswith('<div id="drift-report"')
    assert "The portal runs without a management cluster (KUBE_MODE=off)." in text


def test_auditors_read_it_and_tenant_users_get_no_drift_page(
    audrey: User, alice: User, bob: User
) -> None:
    assert "KUBE_MODE=off" in report_of(audrey)
    assert browser_client_for(audrey).post(REPAIR).status_code == 403
    for user in (alice, bob):
        client = browser_client_for(user)
        assert client.get(DRIFT).status_code == 403
        assert client.get(DRIFT, headers=htmx("drift-report")).status_code == 403
        assert client.post(REPAIR).status_code == 403
    assert not AuditEvent.objects.filter(action="repair_drift").exists()


def test_applying_again_without_a_management_cluster_says_why(oscar: User) -> None:
    client = browser_client_for(oscar)

    response = client.post(REPAIR, follow=True)

    assert toasts(response.content.decode()) == [
        "The portal runs without a management cluster (KUBE_MODE=off)."
    ]
    assert not AuditEvent.objects.filter(action="repair_drift").exists()


@pytest.mark.k8s
@pytest.mark.django_db(transaction=True)
def test_missing_objects_and_orphans_are_listed_and_left_alone(
    portal_k8s: KubeClient, address_space: LoadBalancerRange, oscar: User
) -> None:
    network = TenantNetwork.objects.get(tenant=onboard(oscar, "p-missing"))
    intact = TenantNetwork.objects.get(tenant=onboard(oscar, "p-intact"))
    portal_k8s.delete("kubeovn.io/v1", "Subnet", network.namespace)
    orphan = ghost_vpc(portal_k8s, "p-ghost")

    text = report_of(oscar)

    missing = rows_of(text, "drift-missing")
    assert f"tenant p-missing Subnet.kubeovn.io/v1 {network.namespace} tenant networks" in missing
    assert not [row for row in missing if row.startswith("tenant p-intact")]
    orphans = rows_of(text, "drift-orphans")
    assert f"{orphan} tenant p-ghost no longer exists tenant networks" in orphans
    assert not [row for row in orphans if intact.namespace in row]
    # Only a report: nothing was applied again, nothing removed.
    with pytest.raises(NotFound):
        portal_k8s.get("kubeovn.io/v1", "Subnet", network.namespace)
    portal_k8s.get("kubeovn.io/v1", "Vpc", orphan.name)


@pytest.mark.k8s
@pytest.mark.django_db(transaction=True)
def test_operators_apply_the_missing_objects_again_now_and_it_is_audited(
    portal_k8s: KubeClient, address_space: LoadBalancerRange, oscar: User
) -> None:
    network = TenantNetwork.objects.get(tenant=onboard(oscar, "p-repair"))
    portal_k8s.delete("kubeovn.io/v1", "Subnet", network.namespace)
    client = browser_client_for(oscar)
    assert f'hx-post="{REPAIR}"' in report_of(oscar)  # offered beside what is missing

    response = client.post(REPAIR, headers=htmx("drift-report"))

    assert response["HX-Redirect"] == DRIFT
    subnet = portal_k8s.get("kubeovn.io/v1", "Subnet", network.namespace)
    assert subnet["spec"]["cidrBlock"] == network.subnet_cidr
    event = AuditEvent.objects.get(action="repair_drift")
    assert event.actor_id == oscar.pk
    assert "tenant p-repair" in event.changes["applied_again"]
    (message,) = toasts(client.get(DRIFT).content.decode())
    assert message.startswith("Applied again what ")
