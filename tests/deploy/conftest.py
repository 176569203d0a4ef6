"""Fixtures of the deployment tests: the portal running as the chart's ServiceAccount."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pytest_django.fixtures import Settings as SettingsWrapper

from butler_portal.kube import forget_clients
from butler_portal.kube.adapter import KubeClient
from butler_portal.kube.localcp import LocalControlPlane
from butler_portal.kube.platform import prepare_local_platform
from tests.deploy.support import PortalIdentity, install_identity

TakeAway = tuple[str, str, str]  # (api group, resource, verb)
AsChartIdentity = Callable[..., PortalIdentity]


@pytest.fixture(scope="package")
def local_k8s() -> Iterator[LocalControlPlane]:
    """An API server of the deployment tests' own. On the suite's shared one, what earlier
    tests left behind is listed again by every new simulator and by the watcher's first
    sync; late in a full run that took the RBAC journey past its waits."""
    with LocalControlPlane() as control_plane:
        yield control_plane


@pytest.fixture(scope="package")
def _simulator_client(local_k8s: LocalControlPlane) -> Iterator[KubeClient]:
    """The simulators' shared client (as in tests/simulator_fixtures.py), on that server."""
    with local_k8s.client() as client:
        yield client


@pytest.fixture
def as_chart_identity(
    local_k8s: LocalControlPlane, k8s: KubeClient, settings: SettingsWrapper, tmp_path: Path
) -> Iterator[AsChartIdentity]:
    """Point the portal (services, tasks, watcher, consoles) at the local API server as the
    chart's ServiceAccount with the chart's RBAC, optionally minus one verb.

    The platform's own namespaces (MetalLB's, KubeVirt's, ...) exist before the portal
    arrives, as the platform's installs make them: the admin creates them, not the portal.
    """
    identities: list[PortalIdentity] = []

    def install(take_away: TakeAway | None = None) -> PortalIdentity:
        prepare_local_platform(k8s)
        identity = install_identity(k8s, local_k8s, tmp_path, take_away=take_away)
        identities.append(identity)
        settings.KUBE_MODE = "kubeconfig"
        settings.KUBECONFIG = str(identity.kubeconfig)
        settings.WATCHER_LEASE_NAMESPACE = identity.namespace
        forget_clients()
        return identity

    yield install
    forget_clients()
    for identity in identities:
        identity.client.close()
