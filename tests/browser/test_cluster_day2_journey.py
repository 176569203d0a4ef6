"""A cluster's day 2 in a real Chromium, against the real flow (local kube-apiserver, the
simulator playing Kamaji, Cluster API and Flux, the watcher pushing their status to the page).

A member scales a Ready cluster, upgrades it, puts it to sleep, wakes it up and deletes it,
all through the page. At each stage the badge names the action asked for (never another
one), the status sentence is the portal's own (never a controller's condition), and the
progress bar does not go backwards. What the page shows is sampled every 50 ms by a script in
the page itself, so a state that lasts a moment is caught too.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Page, expect

from butler_portal.simulator import SimulatorConfig
from clusters.lifecycle import ASLEEP
from clusters.models import Cluster
from tests.browser.conftest import artifacts_dir
from tests.browser.kube_journey import JOURNEY_PACE, READY_TIMEOUT_MS
from tests.browser.test_clusters_journey import create_cluster

pytestmark = [pytest.mark.browser, pytest.mark.k8s, pytest.mark.django_db(transaction=True)]

#: Controller words a person must never read on the page (they stay behind "What Kubernetes
#: said"): conditions, field paths, object kinds, Flux's action lines, creation's wording.
RAW = re.compile(
    r"\bstatus\.|\bspec\.|is not True|MachineDeployment|MachineSet|KubeadmConfig|Running '"
    r"|replicas|TenantControlPlane|preflight|Scaling up from"
)

#: Samples what the page shows into sessionStorage (kept across the page's navigations):
#: the badge, the status sentence, the progress bar and the timeline's messages, each time
#: one of them changes.
RECORDER = """
(() => {
  const text = (selector) => {
    const found = document.querySelector(selector);
    return found ? found.textContent.replace(/\\s+/g, " ").trim() : "";
  };
  const sample = () => {
    const badge = document.querySelector("#cluster-phase");
    const bar = document.querySelector("#cluster-panel [role=progressbar]");
    const seen = {
      phase: badge ? badge.dataset.phase : "",
      badge: badge ? badge.textContent.trim() : "",
      reason: text(".object-reason"),
      done: bar ? Number(bar.getAttribute("aria-valuenow")) : null,
      steps: bar ? Number(bar.getAttribute("aria-valuemax")) : null,
      timeline: Array.from(document.querySelectorAll(".timeline-message"), (m) => m.textContent.trim()),
      active: document.querySelectorAll(".timeline-step.is-active").length,
    };
    const log = JSON.parse(sessionStorage.getItem("seen") || "[]");
    const last = log[log.length - 1];
    if (!last || JSON.stringify(last) !== JSON.stringify(seen)) {
      log.push(seen);
      sessionStorage.setItem("seen", JSON.stringify(log));
    }
  };
  window.recordWhatIsShown = sample;
  setInterval(sample, 50);
  document.addEventListener("DOMContentLoaded", sample);
})();
"""


@pytest.fixture
def journey_pace() -> SimulatorConfig:
    """Each stage long enough to be seen (a second or two), short enough for a quick test."""
    delays = dataclasses.replace(JOURNEY_PACE.delays, control_plane=1.5, control_plane_sleep=1.0)
    return dataclasses.replace(JOURNEY_PACE, delays=delays)


@pytest.fixture
def page(browser_page: Page) -> Page:
    browser_page.add_init_script(RECORDER)
    return browser_page


def snapshot(page: Page, name: str) -> None:
    """A screenshot for the test artifacts; one Chromium cannot take in time is left out
    (it shows what was seen, the assertions say whether it was right)."""
    try:
        page.screenshot(
            path=str(artifacts_dir() / f"test_cluster_day2_journey--{name}.png"), timeout=5_000
        )
    except PlaywrightError as error:
        print(f"No screenshot of {name}: {error.message.splitlines()[0]}")


def seen(page: Page) -> list[dict[str, Any]]:
    """What the page showed since the last call (and forget it). It records what it shows
    now first: an expectation may see the page change before the next 50 ms sample does."""
    log: list[dict[str, Any]] = page.evaluate(
        "(() => { if (window.recordWhatIsShown) window.recordWhatIsShown();"
        " const log = JSON.parse(sessionStorage.getItem('seen') || '[]');"
        " sessionStorage.setItem('seen', '[]'); return log; })()"
    )
    return [entry for entry in log if entry["phase"]]  # between two documents: nothing


def phases(samples: list[dict[str, Any]]) -> list[str]:
    """The badge's values in the order they showed, each once per stretch."""
    shown: list[str] = []
    for sample in samples:
        if not shown or shown[-1] != sample["phase"]:
            shown.append(sample["phase"])
    return shown


def assert_plain_words(samples: list[dict[str, Any]]) -> None:
    for sample in samples:
        for text in (sample["reason"], *sample["timeline"]):
            assert not RAW.search(text), f"raw controller text on the page: {text!r}"
        assert "Waiting for Kubernetes to report on it" not in sample["reason"]


def assert_progress_moves_forward(samples: list[dict[str, Any]], phase: str) -> None:
    shares = [
        sample["done"] / sample["steps"]
        for sample in samples
        if sample["phase"] == phase and sample["steps"]
    ]
    assert shares, f"no progress bar while {phase}"
    assert shares == sorted(shares), f"the progress bar went backwards while {phase}: {shares}"


def act(page: Page, action: str, *, fill: Callable[[Page], None] | None = None) -> None:
    """Open an action's dialog from the cluster's page and confirm it."""
    page.locator(f'[data-action="{action}"] a').click()
    dialog = page.locator("#modal-body")
    expect(dialog.locator("button[type=submit]")).to_be_visible()
    if fill is not None:
        fill(page)
    dialog.locator("button[type=submit]").click()


def test_a_member_scales_upgrades_hibernates_wakes_and_deletes_a_cluster(
    tenant_slug: str,
    page: Page,
    login_as: Callable[..., None],
    on_server: Callable[..., Any],
) -> None:
    cluster_id = on_server(create_cluster, tenant_slug)
    login_as("bob", next_path=f"/t/{tenant_slug}/clusters/{cluster_id}/")
    badge = page.locator("#cluster-phase")
    reason = page.locator(".object-reason")
    expect(badge).to_have_attribute("data-phase", "ready", timeout=READY_TIMEOUT_MS)
    expect(page.locator("#live-status")).to_have_attribute("data-state", "live")
    seen(page)

    # Scale from 1 to 2 workers: "Scaling" until the new worker joined, never "Upgrading".
    act(page, "scale", fill=lambda p: p.locator("#id_worker_count").fill("2"))
    expect(badge).to_have_attribute("data-phase", "scaling")
    expect(reason).to_contain_text("Scaling the workers to 2")
    snapshot(page, "scaling")
    expect(badge).to_have_attribute("data-phase", "ready", timeout=READY_TIMEOUT_MS)
    expect(reason).to_contain_text("2 of 2 workers have joined")
    scaling = seen(page)
    assert phases(scaling) in (["scaling", "ready"], ["ready", "scaling", "ready"])
    assert {s["badge"] for s in scaling if s["phase"] == "scaling"} == {"Scaling"}
    assert_progress_moves_forward(scaling, "scaling")
    assert_plain_words(scaling)

    # Upgrade to the next minor: the control plane, then the workers one by one.
    act(page, "upgrade", fill=lambda p: p.get_by_label(re.compile(r"v1\.36\.3")).check())
    expect(badge).to_have_attribute("data-phase", "upgrading")
    expect(reason).to_contain_text("v1.36.3")
    expect(page.locator('[data-step="upgrade-control-plane"]')).to_be_visible()
    snapshot(page, "upgrading")
    expect(page.locator('[data-step="upgrade-worker-1"]')).to_have_attribute(
        "data-state", "active", timeout=READY_TIMEOUT_MS
    )
    snapshot(page, "upgrading-workers")
    expect(badge).to_have_attribute("data-phase", "ready", timeout=READY_TIMEOUT_MS)
    upgrading = seen(page)
    assert phases(upgrading) in (["upgrading", "ready"], ["ready", "upgrading", "ready"])
    reasons = [s["reason"] for s in upgrading if s["phase"] == "upgrading"]
    assert any(r.startswith("Upgrading the control plane") for r in reasons)
    assert any(r.startswith("Replacing workers with v1.36.3") for r in reasons)
    assert_progress_moves_forward(upgrading, "upgrading")
    assert_plain_words(upgrading)
    expect(page.locator(".object-facts")).to_contain_text("v1.36.3")

    # Hibernate: "Hibernating" while things stop, "Hibernated" once asleep, nothing pending.
    act(page, "hibernate")
    expect(badge).to_have_attribute("data-phase", "hibernating")
    expect(badge).to_have_text("Hibernating")
    expect(reason).to_contain_text("Going to sleep: stopping")
    snapshot(page, "hibernating")
    expect(badge).to_have_attribute("data-phase", "hibernated", timeout=READY_TIMEOUT_MS)
    expect(reason).to_have_text(ASLEEP)
    expect(page.locator(".timeline-step")).to_have_count(2)
    expect(page.locator(".timeline-step:not(.is-done)")).to_have_count(0)
    snapshot(page, "hibernated")
    hibernating = seen(page)
    assert phases(hibernating) in (
        ["hibernating", "hibernated"],
        ["ready", "hibernating", "hibernated"],
    )
    assert all(
        s["reason"].startswith("Going to sleep") for s in hibernating if s["phase"] == "hibernating"
    )
    assert_progress_moves_forward(hibernating, "hibernating")
    assert_plain_words(hibernating)

    # Wake up: "Waking up" until the workers and the add-ons are back.
    act(page, "wake")
    expect(badge).to_have_attribute("data-phase", "waking")
    expect(badge).to_have_text("Waking up")
    expect(reason).to_contain_text("Waking up")
    snapshot(page, "waking")
    expect(badge).to_have_attribute("data-phase", "ready", timeout=READY_TIMEOUT_MS)
    waking = seen(page)
    assert phases(waking) in (["waking", "ready"], ["hibernated", "waking", "ready"])
    assert_progress_moves_forward(waking, "waking")
    assert_plain_words(waking)

    # Delete: the deletion's own words, counting down what is left.
    act(page, "delete", fill=lambda p: p.locator("#id_confirm_name").fill("web"))
    expect(badge).to_have_attribute("data-phase", "deleting")
    expect(reason).to_contain_text("Deleting: removing")
    expect(page.locator('[data-step="delete-workers"]')).to_be_visible()
    snapshot(page, "deleting")
    expect(badge).to_have_attribute("data-phase", "deleted", timeout=READY_TIMEOUT_MS)
    expect(page.get_by_text("This cluster is gone")).to_be_visible()
    deleting = seen(page)
    assert phases(deleting) in (["deleting", "deleted"], ["ready", "deleting", "deleted"])
    assert all(s["reason"].startswith("Deleting") for s in deleting if s["phase"] == "deleting")
    assert_progress_moves_forward(deleting, "deleting")
    assert_plain_words(deleting)
    assert not Cluster.objects.filter(pk=cluster_id).exists()
