"""An operator watches the fleet in a real Chromium: another tenant's VM comes up live."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tenants.models import Tenant, User
from tests.browser.conftest import artifacts_dir
from tests.vms.conftest import make_running, make_vm_row
from vms.models import VirtualMachine

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_fleet_follows_every_tenant_live_without_a_reload(
    oscar: User,
    acme: Tenant,
    globex: Tenant,
    browser_page: Page,
    login_as: Callable[..., None],
    on_server: Callable[..., Any],
) -> None:
    web: VirtualMachine = on_server(make_vm_row, globex, name="web")
    page = browser_page
    login_as("oscar")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Fleet").click()
    page.get_by_role("navigation", name="Kinds of objects").get_by_role(
        "link", name="Virtual machines"
    ).click()

    row = page.locator(f"#fleet-vm-{web.pk}")
    expect(row).to_contain_text("Globex Inc")
    expect(row).to_contain_text("Pending")
    expect(page.locator("#live-status")).to_contain_text("Live")

    on_server(make_running, web)  # the watcher's report, in another tenant than any page's

    expect(page.locator(f"#fleet-vm-{web.pk}")).to_contain_text("Running")
    running = page.locator(".summary-count", has_text="Running")
    expect(running.locator(".summary-value")).to_have_text("1")
    page.screenshot(path=str(artifacts_dir() / "test_fleet_journey--running.png"))
