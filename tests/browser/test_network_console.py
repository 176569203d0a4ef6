"""The operator's address plan in a real browser: forms that keep their input, dialogs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tenants import services
from tenants.audit import Actor
from tenants.models import LoadBalancerRange, SubnetPool, User

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_an_operator_adds_a_pool_after_a_refusal_and_removes_a_free_range(
    oscar: User,
    address_space: LoadBalancerRange,
    browser_page: Page,
    login_as: Callable[..., None],
    on_server: Callable[..., Any],
) -> None:
    page = browser_page
    on_server(
        services.tenant_create,
        actor=Actor(oscar),
        slug="acme",
        name="Acme Corp",
        limits={"load_balancer_ips": 3},
    )
    spare = LoadBalancerRange.objects.create(
        name="spare", first_address="198.51.100.1", last_address="198.51.100.20"
    )
    login_as("oscar", next_path="/operator/networks/")
    expect(page.get_by_role("heading", name="Networks", exact=True)).to_be_visible()
    expect(page.locator("#pool-table tbody tr")).to_have_count(1)
    expect(page.locator(f"#range-{address_space.pk}")).to_contain_text("Acme Corp")

    page.evaluate("window.__marker = 'the same page'")
    form = page.locator("#pool-form-card")
    form.get_by_label("Name").fill("dc2")
    form.get_by_label("Network").fill("10.200.64.0/18")
    form.get_by_label("Subnet per tenant").select_option("26")
    form.get_by_role("button", name="Add pool").click()

    # Refused in place: the reason on the field, the input kept, the page not reloaded.
    expect(form.locator("#pool-cidr_error")).to_have_text(
        "Overlaps the subnet pool default (10.200.0.0/16)."
    )
    expect(form.get_by_label("Name")).to_have_value("dc2")
    expect(form.get_by_label("Subnet per tenant")).to_have_value("26")
    assert page.evaluate("window.__marker") == "the same page"
    form.get_by_label("Network").fill("10.201.0.0/16")
    form.get_by_role("button", name="Add pool").click()

    expect(page.locator("#toasts")).to_contain_text("Subnet pool dc2 (10.201.0.0/16) was added.")
    expect(page.locator("#pool-table tbody tr")).to_have_count(2)
    assert SubnetPool.objects.get(name="dc2").subnet_prefix_length == 26

    page.locator(f"#range-{spare.pk}").get_by_role("link", name="Delete spare").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("Delete the load-balancer range spare?")
    dialog.get_by_role("button", name="Delete range").click()
    expect(page.locator("#toasts")).to_contain_text("Load-balancer range spare was deleted.")
    expect(page.locator(f"#range-{spare.pk}")).to_have_count(0)
    assert not LoadBalancerRange.objects.filter(pk=spare.pk).exists()
