"""A virtual machine's journey in a real Chromium, against the real flow: the portal applies
to the local kube-apiserver, the simulator plays KubeVirt and CDI (and serves KubeVirt's
console as an aggregated API behind that API server), and the watcher (in-process) brings
their status back and pushes it to the open page.

A member creates a VM, watches its disk import and boot without a reload, sees its address,
opens the serial console and meets the login prompt, then stops it; a viewer watches the same
kind of VM, finds no controls and no console, and is refused when posting anyway.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from butler_portal.simulator import SimulatorConfig
from tenants.access import TenantRole
from tenants.audit import Actor
from tenants.models import AuditEvent, Membership, Tenant
from tests.browser.conftest import artifacts_dir
from tests.browser.kube_journey import JOURNEY_PACE, READY_TIMEOUT_MS
from vms.models import VirtualMachine

pytestmark = [pytest.mark.browser, pytest.mark.k8s, pytest.mark.django_db(transaction=True)]

IP_ADDRESS = re.compile(r"\d+\.\d+\.\d+\.\d+")


@pytest.fixture
def journey_pace() -> SimulatorConfig:
    """The disk import slow enough to watch its progress bar move (about four seconds)."""
    delays = dataclasses.replace(JOURNEY_PACE.delays, disk_import=4.0, vm=1.0, console_login=0.3)
    return dataclasses.replace(JOURNEY_PACE, delays=delays)


def snapshot(page: Page, name: str) -> None:
    page.screenshot(path=str(artifacts_dir() / f"test_vms_journey--{name}.png"))


def console_audit(vm_id: int) -> list[str]:
    return list(
        AuditEvent.objects.filter(object_type="virtualmachine", object_id=str(vm_id))
        .filter(action__in=["open_console", "close_console"])
        .order_by("id")
        .values_list("action", flat=True)
    )


def test_a_member_creates_a_vm_watches_it_boot_uses_its_console_and_stops_it(
    tenant_slug: str,
    browser_page: Page,
    login_as: Callable[..., None],
    on_server: Callable[..., Any],
) -> None:
    page = browser_page
    login_as("bob", next_path=f"/t/{tenant_slug}/vms/")
    expect(page.get_by_role("heading", name="No virtual machines yet")).to_be_visible()

    page.get_by_role("link", name="New virtual machine").first.click()
    page.locator("#id_name").fill("web")
    expect(page.locator('#quota-preview [data-resource="vms"] .quota-row-amount')).to_have_text(
        "+1"
    )
    page.get_by_role("button", name="Create virtual machine").click()

    expect(page).to_have_url(re.compile(rf"/t/{tenant_slug}/vms/\d+/$"))
    vm_id = int(re.findall(r"/vms/(\d+)/$", page.url)[0])
    expect(page.locator("#live-status")).to_have_attribute("data-state", "live")
    page.evaluate("window.__marker = 'the same page'")

    # The root disk imports (CDI's progress as a bar), then the guest boots: all pushed live.
    disk = page.get_by_role("progressbar", name="Disk image imported")
    expect(disk).to_be_visible(timeout=READY_TIMEOUT_MS)
    expect(disk).not_to_have_attribute("aria-valuenow", "100", timeout=READY_TIMEOUT_MS)
    snapshot(page, "importing")
    state = page.locator("#vm-state")
    expect(state).to_have_attribute("data-state", "running", timeout=READY_TIMEOUT_MS)
    expect(page.locator(".object-reason")).to_contain_text(IP_ADDRESS, timeout=READY_TIMEOUT_MS)
    facts = page.locator(".vm-facts")
    expect(facts).to_contain_text(IP_ADDRESS)
    expect(page.locator('[data-action="start"]')).to_have_count(0)  # it runs already
    assert page.evaluate("window.__marker") == "the same page"
    snapshot(page, "running")

    # The serial console: xterm.js in the page, KubeVirt's console behind the API server.
    page.get_by_role("link", name="Open console").click()
    expect(page).to_have_url(re.compile(rf"/t/{tenant_slug}/vms/{vm_id}/console/$"))
    expect(page.locator("[data-console-state]")).to_have_attribute("data-console-state", "open")
    screen = page.locator("#vm-console .xterm-rows")
    expect(screen).to_contain_text("web login:", timeout=READY_TIMEOUT_MS)
    page.locator("#vm-console").click()
    page.keyboard.type("ubuntu")
    page.keyboard.press("Enter")
    expect(screen).to_contain_text("Password:")
    page.keyboard.type("not-the-password")
    page.keyboard.press("Enter")
    expect(screen).to_contain_text("Login incorrect")
    expect(screen).not_to_contain_text("not-the-password")  # no echo of a password
    snapshot(page, "console")
    assert on_server(console_audit, vm_id) == ["open_console"]

    # Stop it: the console page hears the guest go away, and the VM page follows to Stopped.
    page.get_by_role("link", name="Back to web").click()
    expect(page).to_have_url(re.compile(rf"/t/{tenant_slug}/vms/{vm_id}/$"))
    page.locator('[data-action="stop"] a').click()
    page.locator("#modal-body button[type=submit]").click()
    expect(state).to_have_attribute("data-state", "stopped", timeout=READY_TIMEOUT_MS)
    expect(page.locator('[data-action="start"]')).to_be_visible()
    expect(page.locator('[data-action="console"]')).to_have_count(0)
    snapshot(page, "stopped")
    assert on_server(console_audit, vm_id) == ["open_console", "close_console"]


def create_vm(slug: str) -> int:
    """A VM asked for by the tenant's member, as the API does; the simulator brings it up."""
    from tests.vms.conftest import spec
    from vms.services import vm_create

    tenant = Tenant.objects.get(slug=slug)
    bob = Membership.objects.get(tenant=tenant, role=TenantRole.MEMBER).user
    return vm_create(actor=Actor(bob), tenant=tenant, spec=spec("db")).pk


def test_a_viewer_can_only_look(
    tenant_slug: str,
    browser_page: Page,
    login_as: Callable[..., None],
    on_server: Callable[..., Any],
) -> None:
    page = browser_page
    login_as("carol", next_path=f"/t/{tenant_slug}/vms/")
    expect(page.get_by_role("heading", name="No virtual machines yet")).to_be_visible()
    expect(page.locator("#live-status")).to_have_attribute("data-state", "live")
    page.evaluate("window.__marker = 'the same list'")

    # A member creates a VM elsewhere: its row appears here and follows it to Running.
    vm_id = on_server(create_vm, tenant_slug)
    row = page.locator(f"#vm-row-{vm_id}")
    expect(row).to_have_attribute("data-state", "running", timeout=READY_TIMEOUT_MS)
    expect(row).to_contain_text(IP_ADDRESS)
    assert page.evaluate("window.__marker") == "the same list"
    expect(page.get_by_role("link", name="New virtual machine")).to_have_count(0)
    expect(page.locator("#create-refusal")).to_have_text("Your role in this tenant is read-only.")

    page.get_by_role("link", name="db", exact=True).click()
    expect(page.locator("#vm-state")).to_have_attribute("data-state", "running")
    expect(page.locator(".action-item")).to_have_count(0)
    expect(page.get_by_text("You have read-only access")).to_be_visible()
    snapshot(page, "viewer")

    csrf = next(c["value"] for c in page.context.cookies() if c["name"] == "csrftoken")
    base = f"/t/{tenant_slug}/vms"
    attempts = {
        "console": page.request.get(f"{base}/{vm_id}/console/"),
        "stop": page.request.post(f"{base}/{vm_id}/stop/", form={"csrfmiddlewaretoken": csrf}),
        "delete": page.request.post(
            f"{base}/{vm_id}/delete/", form={"csrfmiddlewaretoken": csrf, "confirm_name": "db"}
        ),
        "create": page.request.post(
            f"{base}/new/", form={"csrfmiddlewaretoken": csrf, "name": "sneaky"}
        ),
    }
    assert {name: response.status for name, response in attempts.items()} == {
        "console": 403,
        "stop": 403,
        "delete": 403,
        "create": 403,
    }

    # The console socket itself refuses her handshake, whatever the page would have done.
    refused = page.evaluate(
        """(path) => new Promise((resolve) => {
            const socket = new WebSocket(`ws://${location.host}${path}`);
            socket.onopen = () => resolve("opened");
            socket.onclose = (event) => resolve(event.code);
        })""",
        f"/ws/tenants/{tenant_slug}/vms/{vm_id}/console/",
    )
    assert refused == 1006  # the handshake was refused: never accepted
    vm = VirtualMachine.objects.get(pk=vm_id)
    assert (vm.run_strategy, vm.deletion_requested_at) == ("Always", None)
    assert not VirtualMachine.objects.filter(name="sneaky").exists()
