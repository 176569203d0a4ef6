"""The tenant dashboard: quota gauges, state, role, recent activity, extension points."""

from __future__ import annotations

import pytest
from django.db import transaction
from django.urls import reverse

from tenants import services
from tenants.access import Action
from tenants.audit import Actor
from tenants.models import QuotaResource, Tenant, User
from tenants.views import extensions
from tests.conftest import browser_client_for
from tests.ui.conftest import htmx, queries_for_get


def reserve(tenant: Tenant, subject: str, **amounts: int) -> None:
    with transaction.atomic():
        services.quota_reserve(tenant=tenant, subject=subject, amounts=amounts)


def test_every_quota_resource_has_a_gauge_in_human_units(alice: User, acme: Tenant) -> None:
    reserve(acme, "cluster:1", clusters=1, vcpu=12, memory_mib=24576, storage_gib=150)
    text = browser_client_for(alice).get(reverse("tenant-dashboard", args=["acme"])).content
    page = text.decode()
    for label in QuotaResource.labels:
        assert label in page
    assert "<strong>24 GiB</strong>" in page  # memory in GiB, not 24576 MiB
    assert "of 96 GiB" in page
    assert "72 GiB available" in page
    assert 'aria-label="vCPU: 12 of 48 used (25%)"' in page
    assert page.count('class="gauge gauge-') == len(QuotaResource.values)


def test_gauge_colour_follows_the_level(alice: User, acme: Tenant) -> None:
    reserve(acme, "cluster:1", clusters=3, worker_nodes=8)  # 100% and 80%
    page = browser_client_for(alice).get(reverse("tenant-dashboard", args=["acme"])).content
    assert page.count(b"gauge gauge-critical") == 1
    assert page.count(b"gauge gauge-warning") == 1


def test_over_limit_after_a_forced_decrease_is_spelled_out(
    alice: User, oscar: User, acme: Tenant
) -> None:
    reserve(acme, "vm:1", vms=4)
    services.quota_update(actor=Actor(user=oscar), tenant=acme, limits={"vms": 2}, force=True)
    page = browser_client_for(alice).get(reverse("tenant-dashboard", args=["acme"])).content
    assert b"Over the limit by 2" in page


def test_tenant_state_shows_as_a_banner(carol: User, acme: Tenant) -> None:
    client = browser_client_for(carol)
    assert b"is suspended" not in client.get(reverse("tenant-dashboard", args=["acme"])).content
    acme.state = Tenant.State.SUSPENDED
    acme.save()
    page = client.get(reverse("tenant-dashboard", args=["acme"])).content
    assert b"Acme Corp is suspended." in page
    acme.state = Tenant.State.DELETING
    acme.save()
    page = client.get(reverse("tenant-dashboard", args=["acme"])).content
    assert b"Acme Corp is being deleted." in page


@pytest.mark.parametrize(
    ("username", "role_label", "sees_activity"),
    [
        ("alice", "Admin", True),
        ("bob", "Member", False),
        ("carol", "Viewer", False),
        ("oscar", "Operator (platform)", True),
        ("audrey", "Auditor (platform)", True),
    ],
)
def test_role_and_recent_activity(
    username: str, role_label: str, sees_activity: bool, personas: dict[str, User], acme: Tenant
) -> None:
    services.invitation_create(actor=Actor(user=personas["alice"]), tenant=acme, role="viewer")
    page = browser_client_for(personas[username]).get(reverse("tenant-dashboard", args=["acme"]))
    text = page.content.decode()
    assert role_label in text
    assert ("Recent activity" in text) is sees_activity
    assert ("created an invitation" in text) is sees_activity


def test_quota_panel_refreshes_as_a_fragment(bob: User, acme: Tenant) -> None:
    response = browser_client_for(bob).get(
        reverse("tenant-dashboard", args=["acme"]), headers=htmx("quota-panel")
    )
    text = response.content.decode()
    # Only the inside: the panel keeps its element (and its queued refreshes) and swaps this in.
    assert 'class="gauges"' in text
    assert 'id="quota-panel"' not in text
    assert "<html" not in text


def test_dashboard_query_count_does_not_grow_with_usage(alice: User, acme: Tenant) -> None:
    client = browser_client_for(alice)
    reserve(acme, "vm:1", vms=1)
    few = queries_for_get(client, reverse("tenant-dashboard", args=["acme"]))
    for number in range(2, 8):
        reserve(acme, f"vm:{number}", vms=1)
    assert queries_for_get(client, reverse("tenant-dashboard", args=["acme"])) == few


def test_apps_plug_into_navigation_and_dashboard(
    bob: User, acme: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(extensions, "_tenant_nav", list(extensions._tenant_nav))
    monkeypatch.setattr(extensions, "_dashboard_panels", [])
    extensions.register_tenant_nav_item(
        extensions.TenantNavItem("Members again", "members", icon="cluster", order=10)
    )
    extensions.register_tenant_nav_item(
        extensions.TenantNavItem("Admins only", "members", icon="key", action=Action.ADMIN)
    )
    extensions.register_dashboard_panel("components/empty_state.html")

    page = browser_client_for(bob).get(reverse("tenant-dashboard", args=["acme"])).content
    text = page.decode()
    assert "Members again" in text
    assert text.index("Overview") < text.index("Members again") < text.index(">Members<")
    assert "Admins only" not in text  # bob is a member, not an admin
    assert 'class="empty' in text
