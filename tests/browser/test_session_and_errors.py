"""In a real Chromium: an open page whose session ends asks to sign in again (instead of
"Offline, retrying" for ever), the portal's own error pages, and the VM console's Reconnect
button, which shows only while it can help."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.sessions.models import Session
from playwright.sync_api import Locator, Page, expect
from pytest_django.fixtures import Settings as SettingsWrapper

from butler_portal.kube.adapter import KubeClient
from butler_portal.realtime import send_tenant_event
from butler_portal.simulator import Simulator
from tenants.models import Membership, Tenant, User
from tenants.owned import namespace_of
from tests.browser.conftest import artifacts_dir
from tests.conftest import PASSWORD
from tests.vms.conftest import make_running, make_vm_row
from tests.vms.test_console import KUBEVIRT, instance

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SESSION_ENDED = "Your session has ended — Sign in again"
#: live.js pings every 25 s; a ping is when the server checks that the session still holds.
NEXT_PING = "00:30"


def end_every_session() -> None:
    """What a restart with sessions gone, an expiry or signing out elsewhere leaves."""
    Session.objects.all().delete()


def session_ended_banner(page: Page) -> Locator:
    return page.get_by_role("alert").filter(has_text="Your session has ended")


def snapshot(page: Page, name: str) -> None:
    page.screenshot(path=str(artifacts_dir() / f"test_session_and_errors--{name}.png"))


def test_an_open_page_whose_session_ended_asks_to_sign_in_again(
    bob: User, browser_page: Page, login_as: Callable[..., None], on_server: Callable[..., Any]
) -> None:
    page = browser_page
    page.clock.install()  # time runs as usual; the test only skips to the next ping
    login_as("bob", next_path="/t/acme/vms/")
    live = page.locator("#live-status")
    expect(live).to_have_attribute("data-state", "live")
    expect(session_ended_banner(page)).to_be_hidden()

    on_server(end_every_session)
    page.clock.fast_forward(NEXT_PING)

    banner = session_ended_banner(page)
    expect(banner).to_be_visible()
    expect(banner).to_have_text(SESSION_ENDED)
    expect(live).to_have_text("Signed out")
    snapshot(page, "session-ended")

    banner.get_by_role("link", name="Sign in again").click()
    expect(page).to_have_url(re.compile(r"/login/\?next=%2Ft%2Facme%2Fvms%2F$"))
    page.get_by_label("Username").fill("bob")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/t/acme/vms/$"))
    expect(page.locator("#live-status")).to_have_attribute("data-state", "live")


def test_a_live_refresh_after_the_session_ended_asks_to_sign_in_in_place(
    acme: Tenant,
    bob: User,
    browser_page: Page,
    login_as: Callable[..., None],
    on_server: Callable[..., Any],
) -> None:
    page = browser_page
    login_as("bob", next_path="/t/acme/")
    expect(page.locator("#live-status")).to_have_attribute("data-state", "live")
    summary = page.locator("#vm-summary")
    expect(summary).not_to_be_empty()

    on_server(end_every_session)
    # The socket is still open: the next event makes the VM card refresh itself, and the
    # server answers that refresh with a redirect to the login page.
    on_server(send_tenant_event, acme.pk, "vm.changed", 1)

    expect(session_ended_banner(page)).to_be_visible()
    expect(page).to_have_url(re.compile(r"/t/acme/$"))  # the page stays where it was
    expect(page.locator("#live-status")).to_have_text("Signed out")
    expect(summary.get_by_label("Password")).to_have_count(0)  # no login form in the card


def test_another_tenants_address_and_a_missing_page_are_the_portals_own(
    acme: Tenant,
    globex: Tenant,
    bob: User,
    browser_page: Page,
    login_as: Callable[..., None],
) -> None:
    page = browser_page
    login_as("bob", next_path="/t/acme/")

    page.goto("/t/acme/vms/999999/")
    expect(page.get_by_role("heading", name="Nothing here")).to_be_visible()
    expect(page.locator(".switcher-name")).to_have_text("Acme Corp")
    main_menu = page.get_by_role("navigation", name="Main")
    expect(main_menu.get_by_role("link", name="Virtual machines")).to_be_visible()

    page.goto("/t/globex/")
    expect(page.get_by_role("heading", name="Nothing here")).to_be_visible()
    expect(page.locator("body")).not_to_contain_text("Globex")
    expect(page.locator("body")).not_to_contain_text("URLconf")


def test_an_htmx_request_refused_says_why_in_a_toast_and_keeps_the_page(
    acme: Tenant,
    bob: User,
    browser_page: Page,
    login_as: Callable[..., None],
    settings: SettingsWrapper,
) -> None:
    # With DEBUG on, as in the embedded mode: django-htmx's debug script would replace the
    # whole page with the response of a failed request.
    settings.DEBUG = True
    page = browser_page
    login_as("bob", next_path="/t/acme/vms/")
    expect(page.get_by_role("heading", name="Virtual machines", level=1)).to_be_visible()

    # bob becomes a viewer while his page is open (no live event tells it).
    Membership.objects.filter(tenant=acme, user=bob).update(role="viewer")
    page.get_by_role("button", name="Stop").click()

    expect(page.locator("#toasts")).to_contain_text("Your role in this tenant is read-only.")
    expect(page.get_by_role("heading", name="Virtual machines", level=1)).to_be_visible()


@pytest.mark.k8s
def test_the_console_offers_reconnect_only_while_disconnected(
    acme: Tenant,
    bob: User,
    portal_k8s: KubeClient,
    simulator: Simulator,
    browser_page: Page,
    login_as: Callable[..., None],
    on_server: Callable[..., Any],
) -> None:
    # On the server: seeding publishes live events, which Playwright's loop here refuses.
    vm = on_server(lambda: make_running(make_vm_row(acme, name="web")))
    namespace = namespace_of(vm)
    portal_k8s.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    portal_k8s.apply(instance(vm.name, namespace))
    page = browser_page
    login_as("bob", next_path=f"/t/acme/vms/{vm.pk}/console/")
    state = page.locator("[data-console-state]")
    reconnect = page.get_by_role("button", name="Reconnect")

    expect(state).to_have_attribute("data-console-state", "open")
    expect(page.locator("#vm-console .xterm-rows")).to_contain_text("web login:")
    expect(reconnect).to_be_hidden()

    # The guest goes away (KubeVirt deletes its instance): the console ends.
    portal_k8s.delete(KUBEVIRT, "VirtualMachineInstance", vm.name, namespace)
    expect(state).to_have_attribute("data-console-state", "closed")
    expect(state).to_contain_text("Disconnected: The console session ended.")
    expect(reconnect).to_be_visible()

    portal_k8s.apply(instance(vm.name, namespace))
    reconnect.click()
    expect(state).to_have_attribute("data-console-state", "open")
    expect(reconnect).to_be_hidden()

    # Once the session has ended, Reconnect cannot help: the page asks to sign in instead.
    portal_k8s.delete(KUBEVIRT, "VirtualMachineInstance", vm.name, namespace)
    expect(reconnect).to_be_visible()
    on_server(end_every_session)
    reconnect.click()
    expect(state).to_have_attribute("data-console-state", "ended")
    expect(state).to_contain_text("Your session has ended")
    expect(session_ended_banner(page)).to_have_text(SESSION_ENDED)
    expect(reconnect).to_be_hidden()
    expect(page.locator("#live-status")).to_have_text("Signed out")  # not "Offline, retrying"
