"""Pytest plugin: the infrastructure simulator against the session's local API server.

Register it with ``pytest_plugins = ["tests.kube_fixtures", "tests.simulator_fixtures"]``.

- ``simulator``: a ``Simulator`` started against ``local_k8s`` with fast steps (0.05 s), for
  one test; it stops writing at teardown, and fails the test if it hit an error (a write the
  API server rejected is a simulator bug). Objects applied during the test progress as
  ``../shared/crds/STATUS.md`` describes (see ``butler_portal.simulator``).
- ``wait_for(predicate, timeout)``: poll until ``predicate()`` returns something truthy and
  return it; fail with the last value seen. Tests wait on state, never on sleeps.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

import pytest

from butler_portal.kube.adapter import KubeClient
from butler_portal.kube.localcp import LocalControlPlane
from butler_portal.simulator import Delays, Simulator, SimulatorConfig

T = TypeVar("T")

STEP_SECONDS = 0.05
FAST = SimulatorConfig(
    # A disk import spans its progress steps (5 here): still the slowest thing, as in life,
    # so a test has time to see a VM Provisioning or to mark a DataVolume to fail.
    delays=dataclasses.replace(Delays.uniform(STEP_SECONDS), disk_import=10 * STEP_SECONDS),
    import_progress_steps=5,
    # Bounds how long informer threads outlive a test (they write nothing after stop()).
    watch_timeout_seconds=5,
)


@pytest.fixture(scope="session")
def _simulator_client(local_k8s: LocalControlPlane) -> Iterator[KubeClient]:
    # One client for every test's simulator: API discovery is done once, and the informer
    # threads a stopped simulator leaves behind (until their watch ends) keep a usable client.
    with local_k8s.client() as client:
        yield client


@pytest.fixture
def simulator(local_k8s: LocalControlPlane, _simulator_client: KubeClient) -> Iterator[Simulator]:
    with Simulator(_simulator_client, server_url=local_k8s.server_url, config=FAST) as running:
        yield running
    # A write the API server rejected, or an exception, is a simulator bug: fail loudly.
    assert running.errors == [], f"the simulator failed: {running.errors}"


def wait_for(predicate: Callable[[], T | None], timeout: float = 30.0, interval: float = 0.05) -> T:
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"still not true after {timeout}s (last value: {result!r})")
        time.sleep(interval)
