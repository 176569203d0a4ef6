"""The tenant subnet's usage, as a person reads it on the network page: every address in use
counts, a VM's and each cluster worker's (workers are KubeVirt VMs in the tenant's namespace),
as Kube-OVN reports them. Against the real API server, the simulator and the watcher."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from django.urls import reverse

from butler_portal.kube.adapter import KubeClient
from butler_portal.simulator import Simulator
from butler_portal.watcher import Watcher
from butler_portal.watcher.registry import collect_handlers, handler_modules
from clusters.models import Cluster
from tenants.models import LoadBalancerRange, Tenant, TenantNetwork, User
from tests.clusters.conftest import request as request_cluster
from tests.conftest import browser_client_for
from tests.provisioning_support import onboarded_tenant, unused_public_range
from tests.simulator_fixtures import _simulator_client, simulator, wait_for
from tests.ui.conftest import htmx
from tests.vms.conftest import create as create_vm
from tests.vms.conftest import ensure_vm_catalog
from vms.models import VirtualMachine

pytestmark = [pytest.mark.k8s, pytest.mark.django_db(transaction=True)]

__all__ = ["_simulator_client", "simulator"]  # fixtures, brought in by import

#: A whole cluster comes up on the way: generous, for a loaded machine.
TIMEOUT = 180.0
LIMITS = {
    "clusters": 1,
    "worker_nodes": 2,
    "vms": 1,
    "vcpu": 40,
    "memory_mib": 81920,
    "storage_gib": 500,
    "load_balancer_ips": 2,
}


def where_it_stands(tenant: Tenant) -> str:
    """What the portal knows of the subnet, the workers and the VM, for a failure message."""
    network = TenantNetwork.objects.get(tenant=tenant)
    clusters = [(c.name, c.phase, c.phase_reason) for c in Cluster.objects.filter(tenant=tenant)]
    vms = [(v.name, v.state, v.ip_addresses) for v in VirtualMachine.objects.filter(tenant=tenant)]
    return f"subnet {network.subnet_used_ips} used; clusters {clusters}; VMs {vms}"


@pytest.fixture
def operator() -> User:
    return User.objects.create_user("op", password="x", platform_role="operator")


@pytest.fixture
def public_addresses(db: None) -> LoadBalancerRange:
    return unused_public_range("usage-public")


@pytest.fixture
def watcher(portal_k8s: KubeClient, simulator: Simulator) -> Iterator[Watcher]:
    modules = handler_modules(["tenants.status", "clusters.status", "vms.status"])
    with Watcher(
        handlers=collect_handlers(modules), drift_checks=[], reconcile_interval=None
    ) as running:
        assert running.wait_until_synced(30.0)
        yield running


@pytest.mark.usefixtures("watcher")
def test_the_subnet_counts_the_vm_and_both_cluster_workers(
    operator: User, public_addresses: LoadBalancerRange
) -> None:
    ensure_vm_catalog()
    tenant = onboarded_tenant(operator, "usage", LIMITS)
    request_cluster(tenant, operator, "web", worker_count=2)
    create_vm(tenant, operator, "box")

    def counted() -> int | None:
        used = TenantNetwork.objects.get(tenant=tenant).subnet_used_ips
        return used if used == 3 else None

    try:
        wait_for(counted, TIMEOUT)
    except AssertionError as error:
        raise AssertionError(f"{error}; {where_it_stands(tenant)}") from None

    page = (
        browser_client_for(operator)
        .get(reverse("tenant-network", args=[tenant.slug]), headers=htmx("network-panel"))
        .content.decode()
    )
    assert re.search(r'aria-label="Subnet addresses: 3 of \d+ used"', page), page
