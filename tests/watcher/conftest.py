"""Fixtures for the watcher: an operator, a tenant-event listener, watchers that stop after
the test, a Lease of its own per test, and a second API server without watch cache (to force
410 Gone). Helpers are in ``support.py``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from pytest_django.fixtures import Settings as SettingsWrapper

from butler_portal.kube.adapter import KubeClient
from butler_portal.kube.lease import LeaderElectionConfig
from butler_portal.kube.localcp import LocalControlPlane
from butler_portal.watcher import LEASE_NAME, Watcher
from tenants.models import User
from tests.conftest import make_user
from tests.kube_support import portal_pointed_at
from tests.watcher.listener import TenantEventListener


@pytest.fixture
def operator() -> User:
    return make_user("op", "operator")


@pytest.fixture
def listener() -> Iterator[TenantEventListener]:
    listener = TenantEventListener()
    yield listener
    listener.close()


@pytest.fixture
def start_watcher() -> Iterator[Callable[..., Watcher]]:
    """Start watchers (drift reconcile off unless asked for); all are stopped afterwards."""
    started: list[Watcher] = []

    def start(**options: Any) -> Watcher:
        watcher = Watcher(**{"reconcile_interval": None, **options})
        started.append(watcher.start())
        return watcher

    yield start
    for watcher in started:
        watcher.stop()


@pytest.fixture
def lease_config(k8s_namespace: str) -> Callable[[], LeaderElectionConfig]:
    """A fresh Lease per test (its own namespace), with durations short enough for a test to
    see expiry and takeover, and long enough for a loaded CI machine."""
    return lambda: LeaderElectionConfig(
        namespace=k8s_namespace,
        name=LEASE_NAME,
        lease_duration=4.0,
        renew_deadline=3.0,
        retry_period=0.3,
    )


@pytest.fixture(scope="session")
def uncached_k8s() -> Iterator[LocalControlPlane]:
    """An API server that serves watches from etcd: ``compact_etcd()`` then expires any
    earlier resourceVersion, and a watch resumed from one answers 410 Gone."""
    with LocalControlPlane(watch_cache=False) as control_plane:
        yield control_plane


@pytest.fixture
def portal_on_uncached_k8s(
    uncached_k8s: LocalControlPlane, settings: SettingsWrapper
) -> Iterator[KubeClient]:
    with portal_pointed_at(uncached_k8s, settings) as client:
        yield client
