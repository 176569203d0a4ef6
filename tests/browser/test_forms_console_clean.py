"""In a real Chromium, the create forms of clusters and VMs leave the browser console clean:
no warning or error and no failed request while a person fills them in (the quota preview
following every change), comes back to the window (the SSH keys are fetched again) and
submits (the preview never aborted under the submission), with and without an SSH key.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from playwright.sync_api import ConsoleMessage, Page, Request, Route, expect
from playwright.sync_api import Error as PlaywrightError

from tenants.models import User
from tests.clusters.conftest import catalog
from tests.vms.conftest import _kubernetes_off_unless_asked, add_key, vm_catalog

# Fixtures of tests/clusters and tests/vms: their catalogs, and no API server.
__all__ = ["_kubernetes_off_unless_asked", "catalog", "vm_catalog"]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("catalog", "vm_catalog"),
]


@dataclass
class Noise:
    """What the browser reports that a person should never cause: console warnings and
    errors, uncaught exceptions, and requests that failed or were aborted."""

    messages: list[str] = field(default_factory=list)

    def console(self, message: ConsoleMessage) -> None:
        if message.type in {"error", "warning"}:
            self.messages.append(f"console {message.type}: {message.text}")

    def request_failed(self, request: Request) -> None:
        self.messages.append(f"failed {request.method} {request.url}: {request.failure}")

    def page_error(self, error: Exception) -> None:
        self.messages.append(f"uncaught: {error}")


@pytest.fixture
def noise(browser_page: Page) -> Noise:
    heard = Noise()
    browser_page.on("console", heard.console)
    browser_page.on("requestfailed", heard.request_failed)
    browser_page.on("pageerror", heard.page_error)
    return heard


class HeldPreviews:
    """Quota previews held on their way back until ``release()``, as on a slow network: the
    person keeps typing and submits while one is still out."""

    def __init__(self, page: Page) -> None:
        self.holding = True
        self.held: list[Route] = []
        page.route(re.compile(r"/new/\?"), self.arrive)

    def arrive(self, route: Route) -> None:
        if self.holding and route.request.headers.get("hx-target") == "quota-preview":
            self.held.append(route)
        else:
            route.continue_()

    def release(self) -> None:
        self.holding = False
        for route in self.held:
            # The browser may have given it up already (the noise the test then reports).
            with contextlib.suppress(PlaywrightError):
                route.continue_()
        self.held.clear()


def is_preview(request: Request) -> bool:
    return request.headers.get("hx-target") == "quota-preview"


def preview_shows(page: Page, resource: str, amount: str) -> None:
    expect(
        page.locator(f'#quota-preview [data-resource="{resource}"] .quota-row-amount')
    ).to_have_text(amount)


def type_then_submit_while_a_preview_is_out(
    page: Page, number_field: str, values: tuple[str, str], submit: str
) -> None:
    """Type one value (its preview is held on the way), another (its preview comes while the
    first is still out), then submit; only then does the first preview come back."""
    previews = HeldPreviews(page)
    field = page.locator(number_field)
    with page.expect_request(is_preview):
        field.fill(values[0])
        field.press("Tab")  # a change: the preview goes at once
    field.fill(values[1])
    field.press("Tab")
    page.get_by_role("button", name=submit).click()
    previews.release()


def come_back_to_the_window(page: Page) -> None:
    """What the window hears when a person returns from another tab (adding a key there)."""
    with page.expect_response(
        lambda response: response.request.headers.get("hx-target") == "vm-ssh-keys"
    ):
        page.evaluate("window.dispatchEvent(new FocusEvent('focus'))")


def test_the_vm_form_without_a_key_is_quiet_from_filling_to_submitting(
    bob: User, browser_page: Page, login_as: Callable[..., None], noise: Noise
) -> None:
    page = browser_page
    login_as("bob", next_path="/t/acme/vms/new/")
    expect(page.get_by_text("You have no SSH key yet")).to_be_visible()

    come_back_to_the_window(page)
    page.locator("#id_name").fill("web")
    page.locator("#id_disk_gib").fill("30")
    preview_shows(page, "storage_gib", "+30 GiB")
    type_then_submit_while_a_preview_is_out(
        page, "#id_disk_gib", ("40", "50"), "Create virtual machine"
    )

    expect(page).to_have_url(re.compile(r"/t/acme/vms/\d+/$"))
    expect(page.get_by_role("heading", name="web")).to_be_visible()
    assert noise.messages == []


def test_the_vm_form_with_a_key_is_quiet_and_so_is_a_refusal(
    bob: User, browser_page: Page, login_as: Callable[..., None], noise: Noise
) -> None:
    add_key(bob)
    page = browser_page
    login_as("bob", next_path="/t/acme/vms/new/")
    page.get_by_text("laptop").click()

    come_back_to_the_window(page)
    page.locator("#id_name").fill("web")
    page.locator("#id_disk_gib").fill("1200")  # more than the quota: refused on the field
    preview_shows(page, "storage_gib", "+1200 GiB")
    page.get_by_role("button", name="Create virtual machine").click()
    expect(page.locator("#id_disk_gib_error")).to_contain_text("more storage")

    type_then_submit_while_a_preview_is_out(
        page, "#id_disk_gib", ("20", "30"), "Create virtual machine"
    )
    expect(page).to_have_url(re.compile(r"/t/acme/vms/\d+/$"))
    assert noise.messages == []


def test_the_cluster_form_is_quiet_from_filling_to_submitting(
    bob: User, browser_page: Page, login_as: Callable[..., None], noise: Noise
) -> None:
    page = browser_page
    login_as("bob", next_path="/t/acme/clusters/new/")

    page.locator("#id_name").fill("web")
    page.locator("#id_worker_count").fill("2")
    preview_shows(page, "worker_nodes", "+2")
    type_then_submit_while_a_preview_is_out(page, "#id_worker_count", ("3", "1"), "Create cluster")

    expect(page).to_have_url(re.compile(r"/t/acme/clusters/\d+/$"))
    expect(page.get_by_role("heading", name="web")).to_be_visible()
    assert noise.messages == []
