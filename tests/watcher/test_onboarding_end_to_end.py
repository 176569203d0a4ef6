"""Onboarding with every real part in play: the portal applies, the simulator plays Kube-OVN
and MetalLB, and the watcher brings their status back into the portal."""

from __future__ import annotations

import pytest

from butler_portal.kube.adapter import KubeClient
from butler_portal.simulator import Simulator
from tenants.models import LoadBalancerRange, TenantNetwork, User
from tests.simulator_fixtures import wait_for
from tests.watcher.support import onboard
from tests.watcher.test_watcher import StartWatcher

pytestmark = [pytest.mark.k8s, pytest.mark.django_db(transaction=True)]


def test_a_new_tenant_network_becomes_ready_in_the_portal(
    portal_k8s: KubeClient,
    address_space: LoadBalancerRange,
    operator: User,
    start_watcher: StartWatcher,
    simulator: Simulator,
) -> None:
    watcher = start_watcher()
    assert watcher.wait_until_synced(15)

    tenant = onboard(operator, "e2e-onboard")

    network = wait_for(
        lambda: TenantNetwork.objects.filter(
            tenant=tenant, state=TenantNetwork.State.READY
        ).first(),
        30,
    )
    assert (network.vpc_ready, network.subnet_ready, network.address_pool_ready) == (True,) * 3
    # What Kube-OVN reports for a fresh /24 with the first ten addresses reserved.
    assert network.subnet_available_ips is not None
    assert network.subnet_available_ips > 200
    assert network.lb_available_ips == 4
