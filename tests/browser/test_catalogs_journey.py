"""An operator curates a catalog in a real Chromium: the dialog, a refusal, the new default."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

from tenants.models import User
from tests.browser.conftest import artifacts_dir
from tests.vms.conftest import ensure_vm_catalog
from vms.models import StorageClass

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_an_operator_adds_a_default_storage_class_in_a_dialog(
    oscar: User, browser_page: Page, login_as: Callable[..., None]
) -> None:
    ensure_vm_catalog()
    page = browser_page
    login_as("oscar")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Catalogs").click()
    storage = page.locator("#storage-classes")
    expect(storage.get_by_role("heading", name="Storage classes")).to_be_visible()

    storage.get_by_role("link", name="Add storage class").click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_role("heading", name="Add a storage class")).to_be_visible()
    dialog.get_by_label("Name", exact=True).fill("fast")
    dialog.get_by_label("Kubernetes StorageClass").fill("Not a name")
    dialog.get_by_label("Default for new VMs").check()
    dialog.get_by_role("button", name="Add storage class").click()

    # Refused on its field, in the dialog, with what was typed kept.
    expect(dialog.locator("#id_kubernetes_name_error")).to_be_visible()
    expect(dialog.get_by_label("Name", exact=True)).to_have_value("fast")
    expect(dialog.get_by_label("Default for new VMs")).to_be_checked()
    page.screenshot(path=str(artifacts_dir() / "test_catalogs_journey--refused.png"))
    assert not StorageClass.objects.filter(name="fast").exists()

    dialog.get_by_label("Kubernetes StorageClass").fill("linstor-nvme")
    dialog.get_by_role("button", name="Add storage class").click()

    expect(page.locator(".toast").filter(has_text="Storage class fast was added.")).to_be_visible()
    rows = page.locator("#storage-classes-table tbody tr")
    expect(rows.filter(has_text="linstor-nvme")).to_contain_text("Default")
    expect(rows.filter(has_text="linstor-replicated")).to_contain_text("Offered")
    expect(storage).to_be_in_viewport()
    page.screenshot(path=str(artifacts_dir() / "test_catalogs_journey--added.png"))
    assert list(StorageClass.objects.filter(is_default=True).values_list("name", flat=True)) == [
        "fast"
    ]
