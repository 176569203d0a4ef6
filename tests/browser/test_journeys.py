"""End-to-end journeys in a real Chromium: sign-in, invitations, live updates, viewer limits."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from django.db import transaction
from playwright.sync_api import Page, expect

from tenants.models import Invitation, Membership, Tenant, User
from tenants.network import network_allocate, network_observe

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_admin_signs_in_sees_the_quota_and_invites_someone(
    alice: User, browser_page: Page, login_as: Callable[..., None], live_portal: str
) -> None:
    page = browser_page
    login_as("alice")

    expect(page).to_have_url(re.compile(r"/t/acme/$"))
    expect(page.get_by_role("heading", name="Quota usage")).to_be_visible()
    expect(page.locator(".gauge")).to_have_count(7)
    expect(page.get_by_role("img", name="Clusters: 0 of 3 used (0%)")).to_be_visible()

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Members").click()
    page.get_by_label("Role", exact=True).select_option("viewer")
    page.get_by_label("Email (optional)").fill("dora@example.test")
    page.get_by_role("button", name="Create invitation link").click()

    link_box = page.locator("#invitation-link")
    expect(link_box).to_have_value(re.compile(rf"^{re.escape(live_portal)}/invitations/\S+/$"))
    expect(page.locator("#invitation-list")).to_contain_text("dora@example.test")
    link = link_box.input_value()

    # Shown once: after a reload the invitation is listed, its link is nowhere.
    page.reload()
    expect(page.locator("#invitation-list")).to_contain_text("dora@example.test")
    expect(page.locator("#invitation-link")).to_have_count(0)
    assert link not in page.content()
    assert Invitation.objects.filter(tenant__slug="acme", email="dora@example.test").count() == 1


def give_acme_a_network(acme: Tenant) -> None:
    with transaction.atomic():
        network_allocate(tenant=acme)


def controllers_report_ready(namespace: str) -> None:
    """What Kube-OVN and MetalLB report once the tenant's VPC, subnet and pool are up."""
    network_observe(kind="Vpc", obj={"metadata": {"name": namespace}, "status": {"standby": True}})
    network_observe(
        kind="Subnet",
        obj={
            "metadata": {"name": namespace},
            "status": {
                "conditions": [{"type": "Ready", "status": "True"}],
                "v4usingIPs": 3,
                "v4availableIPs": 240,
            },
        },
    )
    network_observe(
        kind="IPAddressPool",
        obj={"metadata": {"name": namespace}, "status": {"assignedIPv4": 1, "availableIPv4": 4}},
    )


def test_the_dashboard_follows_the_network_live_without_a_reload(
    carol: User,
    acme: Tenant,
    address_space: Any,
    browser_page: Page,
    login_as: Callable[..., None],
    on_server: Callable[..., Any],
) -> None:
    page = browser_page
    on_server(give_acme_a_network, acme)
    login_as("carol")
    panel = page.locator("#network-panel")
    expect(panel.locator(".network-body")).to_have_attribute("data-state", "pending")
    expect(panel).to_contain_text("Waiting to be set up in Kubernetes.")
    expect(page.locator("#live-status")).to_have_attribute("data-state", "live")
    page.evaluate("window.__marker = 'the same page'")

    on_server(controllers_report_ready, "tenant-acme")

    expect(panel.locator(".network-body")).to_have_attribute("data-state", "ready")
    expect(panel.locator(".network-state")).to_have_text("Ready")
    expect(panel.get_by_role("img", name="Subnet addresses: 3 of 243 used")).to_be_visible()
    expect(page.locator("#toasts .toast-success")).to_contain_text(
        "The network of Acme Corp is ready."
    )
    assert page.evaluate("window.__marker") == "the same page"


def test_a_viewer_sees_no_controls_and_is_refused_when_posting_anyway(
    alice: User, bob: User, carol: User, browser_page: Page, login_as: Callable[..., None]
) -> None:
    page = browser_page
    login_as("carol", next_path="/t/acme/members/")

    expect(page.get_by_role("heading", name="People")).to_be_visible()
    expect(page.locator("table tbody tr")).to_have_count(3)
    expect(
        page.get_by_text("Only tenant admins can change roles or invite people.")
    ).to_be_visible()
    expect(page.locator("select[name=role]")).to_have_count(0)
    expect(page.get_by_role("link", name=re.compile("^Remove"))).to_have_count(0)
    expect(page.get_by_role("button", name=re.compile("invitation link"))).to_have_count(0)

    csrf = next(c["value"] for c in page.context.cookies() if c["name"] == "csrftoken")
    bobs = Membership.objects.get(tenant__slug="acme", user=bob)
    attempts = {
        "remove bob": page.request.post(
            f"/t/acme/members/{bobs.pk}/remove/", form={"csrfmiddlewaretoken": csrf}
        ),
        "invite": page.request.post(
            "/t/acme/invitations/new/", form={"csrfmiddlewaretoken": csrf, "role": "admin"}
        ),
    }
    refusals = {
        name: (response.status, "Only tenant admins can do this." in response.text())
        for name, response in attempts.items()
    }
    assert refusals == {"remove bob": (403, True), "invite": (403, True)}
    assert Membership.objects.filter(pk=bobs.pk).exists()
    assert not Invitation.objects.exists()
