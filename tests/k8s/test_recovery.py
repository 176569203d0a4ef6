"""Recovery, not dead ends: work that meets a missing component waits, then goes on by itself.

A management cluster of its own, started without Kube-OVN's CRDs (as a platform where Kube-OVN
is not installed yet): onboarding a tenant waits instead of failing; the cluster and the VM
asked for meanwhile wait for the namespace; once Kube-OVN's CRDs are there, the retried task
applies the network and everything that waited follows.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest
from pytest_django.fixtures import Settings as SettingsWrapper

from butler_portal.kube.adapter import KubeClient
from butler_portal.kube.errors import NotServed
from butler_portal.kube.localcp import VENDORED_CRD_DIR, LocalControlPlane, load_crds
from butler_portal.kube.served import Kind, unserved_kinds
from butler_portal.watcher.registry import handler_modules, required_kinds
from clusters.models import Cluster
from tenants.audit import Actor
from tenants.models import LoadBalancerRange, Tenant, TenantNetwork, User
from tenants.services import membership_add, tenant_create
from tenants.tasks import apply_tenant
from tests.clusters.conftest import catalog
from tests.clusters.conftest import request as request_cluster
from tests.kube.crd_helpers import install_crd
from tests.kube_support import portal_pointed_at
from tests.vms.conftest import create as create_vm
from tests.vms.conftest import vm_catalog
from vms.models import VirtualMachine

pytestmark = [pytest.mark.k8s, pytest.mark.django_db(transaction=True)]

# The catalogs the cluster and VM requests pick from.
__all__ = ["catalog", "vm_catalog"]

MISSING_GROUP = "kubeovn.io"


@pytest.fixture(scope="module")
def cluster_without_kube_ovn(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[LocalControlPlane]:
    crd_dir = tmp_path_factory.mktemp("crds")
    for group in VENDORED_CRD_DIR.iterdir():
        if group.is_dir() and group.name != MISSING_GROUP:
            shutil.copytree(group, crd_dir / group.name)
    with LocalControlPlane(crd_dir=crd_dir) as control_plane:
        yield control_plane


@pytest.fixture
def portal_on_it(
    cluster_without_kube_ovn: LocalControlPlane, settings: SettingsWrapper
) -> Iterator[KubeClient]:
    with portal_pointed_at(cluster_without_kube_ovn, settings) as client:
        yield client


def install_kube_ovn(client: KubeClient) -> None:
    for crd in load_crds(VENDORED_CRD_DIR):
        if crd["spec"]["group"] == MISSING_GROUP:
            install_crd(client, crd)


def test_the_missing_component_is_named(portal_on_it: KubeClient) -> None:
    unserved = unserved_kinds(portal_on_it, required_kinds(handler_modules()))

    assert unserved == [Kind("kubeovn.io/v1", "Subnet"), Kind("kubeovn.io/v1", "Vpc")]
    assert {kind.component for kind in unserved} == {"Kube-OVN"}
    with pytest.raises(NotServed):
        portal_on_it.list("kubeovn.io/v1", "Subnet")


def test_work_waits_for_a_missing_component_and_goes_on_once_it_is_installed(
    portal_on_it: KubeClient,
    address_space: LoadBalancerRange,
    catalog: None,
    vm_catalog: None,
) -> None:
    operator = User.objects.create_user("op", password="x", platform_role="operator")
    member = User.objects.create_user("mem", password="x")
    tenant = tenant_create(
        actor=Actor(operator),
        slug="rec-acme",
        name="Rec Acme",
        limits={
            "clusters": 2,
            "worker_nodes": 6,
            "vms": 2,
            "vcpu": 32,
            "memory_mib": 65536,
            "storage_gib": 500,
            "load_balancer_ips": 4,
        },
    )
    membership_add(actor=Actor(operator), tenant=tenant, user=member, role="member")

    # Onboarding met an unserved kind: still on its way, with the reason in plain words.
    network = TenantNetwork.objects.get(tenant=tenant)
    assert network.state == TenantNetwork.State.PROVISIONING
    assert network.applied_at is None
    assert "Kube-OVN" in network.message
    assert "retried by itself" in network.message

    # Asked for meanwhile: both wait for the namespace instead of failing.
    cluster = request_cluster(tenant, member, name="web")
    vm = create_vm(tenant, member, name="box")
    cluster.refresh_from_db()
    vm.refresh_from_db()
    assert (cluster.apply_error, cluster.applied_at) == ("", None)
    assert (vm.apply_error, vm.applied_at) == ("", None)
    assert cluster.phase != Cluster.Phase.FAILED
    assert "namespace" in cluster.phase_reason

    install_kube_ovn(portal_on_it)
    apply_tenant.delay(tenant.pk)  # what the task's own retry does after its backoff

    applied = TenantNetwork.objects.get(pk=network.pk)
    assert applied.applied_at is not None
    assert applied.message == ""
    assert portal_on_it.get("kubeovn.io/v1", "Subnet", network.namespace)
    # Everything that waited went ahead by itself.
    assert Cluster.objects.get(pk=cluster.pk).applied_at is not None
    assert VirtualMachine.objects.get(pk=vm.pk).applied_at is not None
    assert portal_on_it.get("cluster.x-k8s.io/v1beta2", "Cluster", "web", network.namespace)
    assert portal_on_it.get("kubevirt.io/v1", "VirtualMachine", "box", network.namespace)
    assert VirtualMachine.objects.get(pk=vm.pk).state != VirtualMachine.State.FAILED
    assert Tenant.objects.get(pk=tenant.pk).state == Tenant.State.ACTIVE
