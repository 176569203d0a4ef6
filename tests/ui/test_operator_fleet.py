"""The operator console's fleet: every tenant's clusters and VMs, filtered on the server."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from tenants.models import Tenant, User
from tests.clusters.conftest import make_cluster_row
from tests.conftest import browser_client_for
from tests.ui.conftest import htmx, page_text, queries_for_get, row_of
from tests.vms.conftest import make_running, make_vm_row

pytestmark = pytest.mark.usefixtures("catalog", "vm_catalog")

FLEET = reverse("operator-fleet")
VMS = f"{FLEET}?kind=vms"


def listed(text: str) -> list[tuple[str, str]]:
    """(name, tenant) of each row, in order."""
    return re.findall(
        r'<tr id="fleet-\w+-\d+">\s*<td><a class="cell-main cell-link" href="[^"]+">([^<]+)</a></td>'
        r'\s*<td class="cell-nowrap"><a href="[^"]+">([^<]+)</a></td>',
        text,
    )


def summary(text: str) -> dict[str, int]:
    return {
        label: int(value)
        for value, label in re.findall(
            r'<span class="summary-value">(\d+)</span><span class="summary-label">([^<]+)</span>',
            text,
        )
    }


def test_operators_see_every_tenants_vms_counted_by_state(
    oscar: User, acme: Tenant, globex: Tenant
) -> None:
    web = make_running(make_vm_row(acme, name="web"))
    make_vm_row(globex, name="db")

    text = page_text(oscar, VMS)

    assert listed(text) == [("web", "Acme Corp"), ("db", "Globex Inc")]
    assert summary(text) == {"Running": 1, "In progress": 1, "Need attention": 0, "Stopped": 0}
    row = row_of(text, f"fleet-vm-{web.pk}")
    assert f'href="{reverse("vm-detail", args=["acme", web.pk])}"' in row
    assert 'href="/operator/tenants/acme/"' in row
    assert "Ubuntu 24.04 LTS · m1.small · 20 GiB" in row
    assert 'data-state="running"' in row
    assert 'data-live-url="/ws/platform/"' in text
    assert 'href="/operator/fleet/" aria-current="page"' in text


def test_clusters_come_first(oscar: User, acme: Tenant) -> None:
    prod = make_cluster_row(acme, name="prod", worker_count=3)

    text = page_text(oscar, FLEET)

    assert listed(text) == [("prod", "Acme Corp")]
    assert "v1.35.4 · 3 × m1.medium" in row_of(text, f"fleet-cluster-{prod.pk}")
    assert '<a href="?kind=clusters" aria-current="page">' in text


def test_search_state_and_tenant_narrow_the_table_in_place(
    oscar: User, acme: Tenant, globex: Tenant
) -> None:
    make_running(make_vm_row(acme, name="web-1"))
    make_vm_row(acme, name="web-2")
    make_running(make_vm_row(globex, name="web-3"))
    make_vm_row(globex, name="db")
    client = browser_client_for(oscar)

    def names(**params: str) -> list[str]:
        response = client.get(FLEET, {"kind": "vms", **params}, headers=htmx("fleet-results"))
        text = response.content.decode()
        assert "<html" not in text
        return [name for name, _ in listed(text)]

    assert names(q="web") == ["web-1", "web-2", "web-3"]
    assert names(q="web", state="running") == ["web-1", "web-3"]
    assert names(q="web", state="running", tenant="globex") == ["web-3"]
    assert names(tenant="no-such-tenant") == ["web-1", "web-2", "db", "web-3"]  # ignored
    assert "Nothing matches" in client.get(VMS, {"q": "zzz"}).content.decode()


def test_the_table_is_paginated_at_a_constant_query_cost(oscar: User, acme: Tenant) -> None:
    client = browser_client_for(oscar)
    for number in range(3):
        make_vm_row(acme, name=f"vm-{number:02}")
    few = queries_for_get(client, VMS)
    for number in range(3, 30):
        make_vm_row(acme, name=f"vm-{number:02}")

    assert queries_for_get(client, VMS) == few
    first = page_text(oscar, VMS)
    second = page_text(oscar, f"{VMS}&page=2")
    assert len(listed(first)) == 25
    assert [name for name, _ in listed(second)] == [f"vm-{n}" for n in range(25, 30)]
    assert "26–30 of 30" in second


def test_auditors_see_the_fleet_and_tenant_users_do_not(
    audrey: User, alice: User, bob: User, carol: User, acme: Tenant
) -> None:
    make_vm_row(acme, name="web")

    assert listed(page_text(audrey, VMS)) == [("web", "Acme Corp")]
    for user in (alice, bob, carol):
        assert browser_client_for(user).get(VMS).status_code == 403
    anonymous = browser_client_for(None).get(VMS)
    assert anonymous.status_code == 302
    assert anonymous["Location"].startswith(reverse("login"))
