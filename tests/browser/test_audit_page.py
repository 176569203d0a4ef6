"""The audit log in a real Chromium with a thousand events: it fits the screen it is on.

A long trail must neither stretch the page to tens of thousands of pixels nor squeeze the
Changes column until values wrap one character per line, and on a wide screen the table
uses the width it has.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from tenants.models import ApiToken, AuditEvent, Tenant, User
from tests.browser.conftest import artifacts_dir

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

EVENTS = 1000
#: One page of the log, filters and header included, at any width.
MAX_PAGE_HEIGHT = 4000
#: Room for a before → after pair of ordinary values on one line.
MIN_CHANGES_WIDTH = 300

LONG_ERROR = (
    "admission webhook vcluster.example.test denied the request: "
    "spec.topology.workers.machineDeployments[0].template.bootstrap.configRef "
    + "x" * 180
    + " is immutable; https://docs.example.test/errors/"
    + "immutable-field-of-a-machine-deployment-template-" * 3
)

#: What services really record: (action, object type, object, changes).
SAMPLES: list[tuple[str, str, str, dict[str, Any]]] = [
    (
        "create",
        "cluster",
        "{tenant}/fleet-{n}",
        {
            "version": "v1.35.4",
            "control_plane_replicas": 1,
            "worker_count": 2,
            "instance_type": "standard-4",
            "worker_disk_gib": 40,
            "addons": ["cilium", "portal-access"],
        },
    ),
    ("scale", "cluster", "{tenant}/fleet-{n}", {"worker_count": [2, 3]}),
    ("change_role", "membership", "bob in {tenant}", {"user": "bob", "role": ["member", "admin"]}),
    ("expose", "virtualmachine", "{tenant}/web-{n}", {"ports": [["22/TCP"], ["22/TCP", "80/TCP"]]}),
    ("retry", "cluster", "{tenant}/fleet-{n}", {"previous_error": LONG_ERROR}),
    ("update", "quota", "{tenant} quota", {"vms": [10, 12], "memory_mib": [32768, 65536]}),
    (
        "create",
        "virtualmachine",
        "{tenant}/web-{n}",
        {
            "image": "debian-12",
            "instance_type": "standard-2",
            "disk_gib": 20,
            "storage_class": "replicated",
            "ssh_keys": ["SHA256:nThbg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8"],
            "user_data": True,
            "run_strategy": "Always",
        },
    ),
    ("download_kubeconfig", "cluster", "{tenant}/fleet-{n}", {"group": "tenant-admins"}),
]


def bulk_audit_trail(count: int, actor: User, token: ApiToken, tenants: list[Tenant]) -> None:
    """``count`` events, one a minute back from now, cycling through the samples."""
    now = timezone.now()
    events = []
    for number in range(count):
        action, object_type, shown, changes = SAMPLES[number % len(SAMPLES)]
        tenant = tenants[number % len(tenants)]
        events.append(
            AuditEvent(
                occurred_at=now - timedelta(minutes=number),
                actor=actor,
                actor_username=actor.username,
                token=token if number % 3 == 0 else None,
                tenant=tenant,
                tenant_slug=tenant.slug,
                object_type=object_type,
                object_id=str(1000 + number),
                object_repr=shown.format(tenant=tenant.slug, n=number % 7),
                action=action,
                changes=changes,
                source_ip="2001:db8:85a3::8a2e:370:7334" if number % 4 == 0 else "10.20.30.40",
            )
        )
    AuditEvent.objects.bulk_create(events, batch_size=500)


def check_the_layout(page: Page, width: int, who: str) -> None:
    page.set_viewport_size({"width": width, "height": 1000})
    page.goto("/audit/")
    results = page.locator("#audit-results")
    expect(results.get_by_role("heading", name=f"{EVENTS:,} events")).to_be_visible()

    height = page.evaluate("document.documentElement.scrollHeight")
    assert height < MAX_PAGE_HEIGHT, f"the page is {height} px tall at {width} px"

    wrap = results.locator(".table-wrap")
    scroll_width, client_width = wrap.evaluate("el => [el.scrollWidth, el.clientWidth]")
    assert scroll_width <= client_width, f"the table is cut off at {width} px"
    source = results.get_by_role("columnheader", name="Source").bounding_box()
    assert source is not None
    assert source["x"] + source["width"] <= width, f"the Source column is cut off at {width} px"

    # The table takes the room beside the navigation, however wide the screen.
    table = results.locator("table").bounding_box()
    assert table is not None
    assert table["width"] >= (width - 232) * 0.9, f"the table is {table['width']} px wide"

    changes = results.get_by_role("columnheader", name="Changes").bounding_box()
    assert changes is not None
    assert changes["width"] >= MIN_CHANGES_WIDTH, f"Changes is {changes['width']} px wide"
    scale = results.locator("tr", has_text="worker count").filter(has_text="2 → 3").first
    pair = scale.locator(".change-value").first
    one_line = pair.evaluate("el => el.getClientRects().length")
    assert one_line == 1, "a short before → after pair wraps"

    # A long value folds into the event's details, which wrap it within the column.
    retry = results.locator("tr", has_text="previous error").first
    full = retry.locator("details .change-full")
    expect(retry.locator(".change-value")).to_contain_text("…")
    expect(full).to_be_hidden()
    retry.get_by_text("Full value").click()
    expect(full).to_be_visible()
    expect(full).to_contain_text(LONG_ERROR)
    scroll_width, client_width = wrap.evaluate("el => [el.scrollWidth, el.clientWidth]")
    assert scroll_width <= client_width, f"an opened long value widens the table at {width} px"
    retry.screenshot(path=str(artifacts_dir() / f"test_audit_page--{who}-{width}px-details.png"))

    page.screenshot(
        path=str(artifacts_dir() / f"test_audit_page--{who}-{width}px.png"), full_page=True
    )


def test_a_thousand_events_read_well_on_a_laptop_and_a_wide_screen(
    oscar: User,
    acme: Tenant,
    globex: Tenant,
    browser_page: Page,
    login_as: Callable[..., None],
) -> None:
    token = ApiToken.objects.create(user=oscar, name="robot", prefix="k3x9q2", digest="0" * 64)
    bulk_audit_trail(EVENTS, oscar, token, [acme, globex])
    page = browser_page
    login_as("oscar")

    for width in (1440, 2560):
        check_the_layout(page, width, "operator")

    results = page.locator("#audit-results")
    pages = results.get_by_role("navigation", name="Pages")
    expect(pages).to_contain_text(f"1–50 of {EVENTS:,}")
    first_on_page_one = results.locator("tbody time").first.get_attribute("datetime")
    pages.get_by_role("link", name="Next").click()
    expect(pages).to_contain_text(f"51–100 of {EVENTS:,}")
    expect(page).to_have_url(re.compile(r"[?&]page=2"))
    assert results.locator("tbody time").first.get_attribute("datetime") != first_on_page_one

    # Fewer a page, on request; the page size is one of those offered.
    results.get_by_label("Per page").select_option("25")
    expect(pages).to_contain_text(f"1–25 of {EVENTS:,}")
    expect(results.locator("tbody tr.audit-row")).to_have_count(25)
    results.get_by_label("Per page").select_option("50")

    # A filter narrows the count, and the next page keeps it.
    page.get_by_label("Action").select_option("scale")
    expect(results.get_by_role("heading", name=f"{EVENTS // len(SAMPLES)} events")).to_be_visible()
    pages.get_by_role("link", name="Next").click()
    expect(pages).to_contain_text(f"51–100 of {EVENTS // len(SAMPLES)}")
    expect(results.locator("tbody tr.audit-row")).to_have_count(50)
    expect(results.locator("tbody .badge", has_text="scale")).to_have_count(50)


def test_a_tenant_admin_reads_only_their_tenant_at_laptop_width(
    alice: User,
    acme: Tenant,
    globex: Tenant,
    browser_page: Page,
    login_as: Callable[..., None],
) -> None:
    token = ApiToken.objects.create(user=alice, name="robot", prefix="a1b2c3", digest="1" * 64)
    bulk_audit_trail(EVENTS, alice, token, [acme])
    bulk_audit_trail(EVENTS // 4, alice, token, [globex])  # another tenant's: not hers
    page = browser_page
    login_as("alice")
    check_the_layout(page, 1440, "tenant-admin")
    expect(page.locator("#audit-results tbody")).not_to_contain_text("globex")


#: Holds back the browser's requests for a page size of 25 without a filter on the action.
SLOW_PAGE_SIZE_REQUESTS = """() => {
  const open = XMLHttpRequest.prototype.open, send = XMLHttpRequest.prototype.send;
  XMLHttpRequest.prototype.open = function (method, url, ...rest) {
    this.slow = /per_page=25/.test(url) && !/action=scale/.test(url);
    return open.call(this, method, url, ...rest);
  };
  XMLHttpRequest.prototype.send = function (body) {
    if (this.slow) { setTimeout(() => send.call(this, body), 1500); } else { send.call(this, body); }
  };
}"""


def test_a_slow_answer_never_overwrites_a_newer_filter(
    oscar: User,
    acme: Tenant,
    globex: Tenant,
    browser_page: Page,
    login_as: Callable[..., None],
) -> None:
    """The page size and the filters ask for the same results: answers come in the order
    asked, so an earlier request that answers late cannot put back what a filter removed."""
    token = ApiToken.objects.create(user=oscar, name="robot", prefix="k3x9q2", digest="0" * 64)
    bulk_audit_trail(200, oscar, token, [acme, globex])
    page = browser_page
    login_as("oscar")
    page.goto("/audit/")
    results = page.locator("#audit-results")
    expect(results.get_by_role("heading", name="200 events")).to_be_visible()

    # The page-size request is slow (held 1.5 s in the browser); the filter asked after it
    # is not, so without ordering its answer would come first and be overwritten.
    page.evaluate(SLOW_PAGE_SIZE_REQUESTS)
    results.get_by_label("Per page").select_option("25")
    page.get_by_label("Action").select_option("scale")

    scaled = 200 // len(SAMPLES)
    expect(results.get_by_role("heading", name=f"{scaled} events")).to_be_visible()
    page.wait_for_timeout(2500)  # past the slow answer
    expect(results.get_by_role("heading", name=f"{scaled} events")).to_be_visible()
    expect(results.locator("tbody tr.audit-row")).to_have_count(scaled)
