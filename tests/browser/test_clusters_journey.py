"""A cluster's journey in a real Chromium, against the real flow: the portal applies to the
local kube-apiserver, the simulator plays Kamaji, Cluster API, KubeVirt and Flux, and the
watcher (in-process) brings their status back and pushes it to the open page.

A member creates a cluster, watches it go from Provisioning to Ready without a reload (the
timeline filling in), and downloads a kubeconfig; a viewer watches another cluster's row come
up in the list, finds no controls, and is refused when posting anyway.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from playwright.sync_api import Page, expect

from clusters.models import Cluster
from tenants.access import TenantRole
from tenants.audit import Actor
from tenants.models import Membership, Tenant
from tests.browser.conftest import artifacts_dir
from tests.browser.kube_journey import READY_TIMEOUT_MS

pytestmark = [pytest.mark.browser, pytest.mark.k8s, pytest.mark.django_db(transaction=True)]


def snapshot(page: Page, name: str) -> None:
    page.screenshot(path=str(artifacts_dir() / f"test_clusters_journey--{name}.png"))


def test_a_member_creates_a_cluster_and_watches_it_come_up_live(
    tenant_slug: str, browser_page: Page, login_as: Callable[..., None]
) -> None:
    page = browser_page
    login_as("bob", next_path=f"/t/{tenant_slug}/clusters/")
    expect(page.get_by_role("heading", name="No clusters yet")).to_be_visible()
    expect(page.locator('#cluster-capacity [data-resource="clusters"] strong')).to_have_text("2")

    page.get_by_role("link", name="New cluster").first.click()
    page.locator("#id_name").fill("web")
    page.locator("#id_worker_count").fill("1")
    preview = page.locator("#quota-preview")
    expect(preview.locator('[data-resource="worker_nodes"] .quota-row-amount')).to_have_text("+1")
    expect(preview.locator('[data-resource="load_balancer_ips"]')).to_contain_text(
        "The API server's endpoint address"
    )
    page.get_by_role("button", name="Create cluster").click()

    expect(page).to_have_url(re.compile(rf"/t/{tenant_slug}/clusters/\d+/$"))
    expect(page.locator("#live-status")).to_have_attribute("data-state", "live")
    page.evaluate("window.__marker = 'the same page'")
    badge = page.locator("#cluster-phase")
    expect(badge).to_have_attribute("data-phase", "provisioning")
    expect(page.get_by_role("progressbar")).to_be_visible()
    snapshot(page, "provisioning")

    # The timeline fills in as Kubernetes reports, without a reload.
    for step in ("control-plane", "endpoint", "control-plane-ready", "kubeconfig", "worker-0"):
        expect(page.locator(f'[data-step="{step}"]')).to_have_attribute(
            "data-state", "done", timeout=READY_TIMEOUT_MS
        )
    expect(badge).to_have_attribute("data-phase", "ready", timeout=READY_TIMEOUT_MS)
    # Beside the "requested" toast, if that one is still showing.
    expect(
        page.locator("#toasts .toast-success", has_text=f"Cluster {tenant_slug}/web is ready.")
    ).to_be_visible()
    expect(page.locator(".timeline-step:not(.is-done)")).to_have_count(0)
    expect(page.get_by_role("progressbar")).to_have_count(0)
    expect(page.locator(".object-reason")).to_contain_text("Running: the API server answers at")
    assert page.evaluate("window.__marker") == "the same page"
    snapshot(page, "ready")

    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download kubeconfig").click()
    download = download_info.value
    assert download.suggested_filename == f"{tenant_slug}-web.kubeconfig"
    document = yaml.safe_load(Path(download.path()).read_text())
    assert document["current-context"] == f"{tenant_slug}-web"
    assert document["clusters"][0]["name"] == f"{tenant_slug}-web"
    assert document["clusters"][0]["cluster"]["server"].startswith("https://")
    user = document["users"][0]
    assert user["name"] == f"bob@{tenant_slug}-web"
    assert user["user"]["client-certificate-data"]
    assert user["user"]["client-key-data"]
    assert page.evaluate("window.__marker") == "the same page"  # downloading left the page be


def create_cluster(slug: str) -> int:
    """A cluster asked for by the tenant's member, as the API does; the simulator brings it up."""
    from clusters.services import cluster_request
    from tests.clusters.conftest import spec

    tenant = Tenant.objects.get(slug=slug)
    bob = Membership.objects.get(tenant=tenant, role=TenantRole.MEMBER).user
    return cluster_request(actor=Actor(bob), tenant=tenant, spec=spec("web", worker_count=1)).pk


def test_a_viewer_sees_no_controls_and_is_refused_when_posting_anyway(
    tenant_slug: str,
    browser_page: Page,
    login_as: Callable[..., None],
    on_server: Callable[..., Any],
) -> None:
    page = browser_page
    login_as("carol", next_path=f"/t/{tenant_slug}/clusters/")
    expect(page.get_by_role("heading", name="No clusters yet")).to_be_visible()
    expect(page.locator("#live-status")).to_have_attribute("data-state", "live")
    page.evaluate("window.__marker = 'the same list'")

    # A member asks for a cluster elsewhere: its row appears here and follows it to Ready.
    cluster_id = on_server(create_cluster, tenant_slug)
    row = page.locator(f"#cluster-row-{cluster_id}")
    expect(row).to_have_attribute("data-phase", "provisioning")
    expect(row).to_have_attribute("data-phase", "ready", timeout=READY_TIMEOUT_MS)
    expect(row.locator(".num")).to_have_text("1 / 1")
    assert page.evaluate("window.__marker") == "the same list"

    expect(page.get_by_role("link", name="New cluster")).to_have_count(0)
    expect(page.get_by_role("button", name="New cluster")).to_be_disabled()
    expect(page.locator("#create-refusal")).to_have_text("Your role in this tenant is read-only.")

    page.get_by_role("link", name="web", exact=True).click()
    expect(page.locator("#cluster-phase")).to_have_attribute("data-phase", "ready")
    for control in ("Delete cluster", "Scale workers", "Upgrade", "Hibernate"):
        expect(page.get_by_text(control, exact=True)).to_have_count(0)
    expect(page.get_by_role("link", name="Download kubeconfig")).to_be_visible()
    expect(page.get_by_text("your kubeconfig can look but not change anything")).to_be_visible()

    csrf = next(c["value"] for c in page.context.cookies() if c["name"] == "csrftoken")
    base = f"/t/{tenant_slug}/clusters"
    attempts = {
        "delete": page.request.post(
            f"{base}/{cluster_id}/delete/",
            form={"csrfmiddlewaretoken": csrf, "confirm_name": "web"},
        ),
        "scale": page.request.post(
            f"{base}/{cluster_id}/scale/",
            form={"csrfmiddlewaretoken": csrf, "worker_count": "3"},
        ),
        "create": page.request.post(
            f"{base}/new/", form={"csrfmiddlewaretoken": csrf, "name": "sneaky"}
        ),
    }
    assert {name: response.status for name, response in attempts.items()} == {
        "delete": 403,
        "scale": 403,
        "create": 403,
    }
    cluster = Cluster.objects.get(pk=cluster_id)
    assert (cluster.worker_count, cluster.deletion_requested_at) == (1, None)
    assert not Cluster.objects.filter(name="sneaky").exists()
