"""Real-browser tests: the portal served over HTTP and websockets, driven by Chromium.

Fixtures for end-to-end journeys (see ``../shared/docs/BROWSER_TESTS.md``)::

    pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

    def test_alice_sees_her_tenant(alice, browser_page, login_as):
        login_as("alice")                                  # fills the sign-in form
        expect(browser_page.get_by_role("heading", name="Overview")).to_be_visible()

- ``live_portal`` (session): the base URL of ``butler_portal.asgi:application`` served by
  uvicorn on a free 127.0.0.1 port in a background thread, with the channel layer the test
  run configures (Redis under ``scripts/test.sh``). Tests need
  ``django_db(transaction=True)``: the server's threads only see committed rows.
- ``browser_page``: a Playwright ``Page`` (sync API) in a fresh browser context whose
  ``base_url`` is the portal, so ``browser_page.goto("/t/acme/")`` works. On teardown a
  screenshot goes to ``$BUTLER_TEST_ARTIFACTS/<module>--<test>.png``; a failed test also
  leaves ``<module>--<test>--failed.png`` (full page) and ``--failed.html``.
- ``login_as(username, password=PASSWORD)``: signs a persona in through the login form.
- ``tenant_slug``: a fresh tenant onboarded on the local kube-apiserver (bob member, carol
  viewer), with the simulator at a watchable pace (``paced_simulator``) and the watcher
  (``watcher``) running in this process, for journeys through the real flow.
- ``on_server(function, *args, **kwargs)``: runs server-side code (a service, an event
  publication) in a worker thread and returns its result. Needed for anything that
  publishes live events: Playwright's sync API keeps its event loop marked as running in
  the test's thread, where ``async_to_sync`` (the channel layer) refuses to run.

Keep journeys deterministic: Playwright's auto-waiting ``expect``, never sleeps.
"""

from __future__ import annotations

import itertools
import os
import re
import shutil
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import pytest
import uvicorn
from django.db import connections
from playwright.sync_api import Page, ViewportSize, expect, sync_playwright

from butler_portal.kube.adapter import KubeClient
from butler_portal.kube.localcp import LocalControlPlane
from butler_portal.simulator import Simulator, SimulatorConfig
from butler_portal.watcher import Watcher
from tenants.models import LoadBalancerRange
from tests.browser.kube_journey import JOURNEY_PACE, onboard
from tests.conftest import PASSWORD

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SERVER_START_TIMEOUT_S = 20
VIEWPORT: ViewportSize = {"width": 1360, "height": 900}

Result = TypeVar("Result")

_reports = pytest.StashKey[dict[str, pytest.TestReport]]()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Keep each phase's report on the test, so teardown knows whether the test failed."""
    report = yield
    item.stash.setdefault(_reports, {})[report.when] = report
    return report


def artifacts_dir() -> Path:
    folder = Path(os.environ.get("BUTLER_TEST_ARTIFACTS", "test-artifacts"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def artifact_stem(item: pytest.Item) -> str:
    module = Path(str(item.path)).stem
    return re.sub(r"[^\w.-]+", "_", f"{module}--{item.name}")


# --- The server ----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def live_portal(django_db_setup: None) -> Iterator[str]:
    """The portal's ASGI app (HTTP and websockets) on a free loopback port; yields its URL."""
    from butler_portal.asgi import application

    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    config = uvicorn.Config(
        application,
        lifespan="off",  # Channels' router speaks HTTP and websockets only
        log_level="warning",
        timeout_graceful_shutdown=3,
    )
    server = uvicorn.Server(config)  # off the main thread it leaves the signals alone
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [listener]}, name="live-portal", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("The live portal did not start; see the log above.")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        listener.close()


# --- The browser ---------------------------------------------------------------------------


@pytest.fixture
def browser_page(
    live_portal: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Page]:
    """A fresh Chromium context and page on the live portal; screenshots on teardown.

    Chromium and Playwright start per test: Playwright's sync API marks an event loop as
    running in this thread for as long as it lives, which must not outlast the browser
    tests (Django and pytest-asyncio refuse to work under a running loop).
    """
    if not shutil.which(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is missing: apt-get install chromium")

    # Playwright's loop never runs Django code in this thread, so the ORM's guard against
    # blocking a running loop does not apply to the test's own setup and checks.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(base_url=live_portal, viewport=VIEWPORT)
        page = context.new_page()
        try:
            yield page
        finally:
            _save_artifacts(request.node, page)
            context.close()
            browser.close()


def _save_artifacts(item: pytest.Item, page: Page) -> None:
    folder, stem = artifacts_dir(), artifact_stem(item)
    reports = item.stash.get(_reports, {})
    failed = any(report.failed for report in reports.values())
    try:
        page.screenshot(path=str(folder / f"{stem}.png"))
        if failed:
            page.screenshot(path=str(folder / f"{stem}--failed.png"), full_page=True)
            (folder / f"{stem}--failed.html").write_text(page.content())
    except Exception as error:  # a crashed page must not hide the test's own failure
        print(f"Could not save the screenshot of {item.nodeid}: {error}")


@pytest.fixture
def login_as(browser_page: Page) -> Callable[..., None]:
    """``login_as("alice")``: sign a persona in through the real form, as a person would."""

    def sign_in(username: str, password: str = PASSWORD, next_path: str = "") -> None:
        browser_page.goto(f"/login/?next={next_path}" if next_path else "/login/")
        browser_page.get_by_label("Username").fill(username)
        browser_page.get_by_label("Password").fill(password)
        browser_page.get_by_role("button", name="Sign in").click()
        expect(browser_page).not_to_have_url(re.compile(r"/login/"))

    return sign_in


# --- Server-side code from a browser test --------------------------------------------------


def run_on_server(function: Callable[..., Result], /, *args: Any, **kwargs: Any) -> Result:
    """Run ``function`` in a worker thread (its own database connection, no event loop)."""

    def call() -> Result:
        try:
            return function(*args, **kwargs)
        finally:
            connections.close_all()  # the thread ends: so does its connection

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="on-server") as pool:
        return pool.submit(call).result()


@pytest.fixture
def on_server() -> Callable[..., Any]:
    return run_on_server


# --- Journeys through the real flow (local kube-apiserver, simulator, watcher) -------------

_address_blocks = itertools.count()


@pytest.fixture
def journey_pace() -> SimulatorConfig:
    """How fast the simulator plays (a journey module overrides it to dwell on a step)."""
    return JOURNEY_PACE


@pytest.fixture
def paced_simulator(
    local_k8s: LocalControlPlane, journey_pace: SimulatorConfig, request: pytest.FixtureRequest
) -> Iterator[Simulator]:
    """The simulator at the journey's pace, on the session's shared simulator client."""
    client: KubeClient = request.getfixturevalue("_simulator_client")
    with Simulator(client, server_url=local_k8s.server_url, config=journey_pace) as sim:
        yield sim
    assert sim.errors == [], f"the simulator failed: {sim.errors}"


@pytest.fixture
def watcher(portal_k8s: KubeClient) -> Iterator[Watcher]:
    """The watcher in this process, following the local API server for the test."""
    running = Watcher(reconcile_interval=None, watch_timeout_seconds=5).start()
    assert running.wait_until_synced(30), "the watcher did not list every kind in time"
    yield running
    running.stop()


@pytest.fixture
def own_addresses(db: None) -> LoadBalancerRange:
    """Load-balancer addresses no earlier test of the session used. The API server outlives
    each test's database, with the Services earlier tests got addresses for; MetalLB never
    hands out an address twice, so a range every test reuses would run dry."""
    block = next(_address_blocks)
    return LoadBalancerRange.objects.create(
        name=f"journey-{block}",
        first_address=f"198.18.{block}.10",
        last_address=f"198.18.{block}.40",
    )


@pytest.fixture
def tenant_slug(
    portal_k8s: KubeClient,
    own_addresses: LoadBalancerRange,
    paced_simulator: Simulator,
    watcher: Watcher,
) -> str:
    """A fresh tenant, onboarded on the server, with bob (member) and carol (viewer)."""
    slug = f"journey-{uuid.uuid4().hex[:6]}"
    run_on_server(onboard, slug)
    return slug
