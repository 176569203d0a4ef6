"""Onboarding a tenant, against the real API server: namespace, quota, network, MetalLB share."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from butler_portal.kube.adapter import KubeClient
from butler_portal.kube.errors import NotFound
from tenants.audit import Actor
from tenants.models import LoadBalancerRange, Tenant, TenantNetwork, User
from tenants.services import quota_update, tenant_create, tenant_delete, tenant_set_state

pytestmark = [pytest.mark.k8s, pytest.mark.django_db(transaction=True)]

LIMITS = {
    "clusters": 2,
    "vms": 4,
    "vcpu": 16,
    "memory_mib": 32768,
    "storage_gib": 500,
    "load_balancer_ips": 4,
}


@pytest.fixture
def operator() -> User:
    return User.objects.create_user("op", password="x", platform_role="operator")


def onboard(operator: User, slug: str, **limits: int) -> Tenant:
    return tenant_create(
        actor=Actor(operator), slug=slug, name=slug.title(), limits={**LIMITS, **limits}
    )


def test_onboarding_applies_namespace_quota_network_and_address_share(
    portal_k8s: KubeClient, address_space: LoadBalancerRange, operator: User
) -> None:
    tenant = onboard(operator, "onb-initech")
    network = TenantNetwork.objects.get(tenant=tenant)

    namespace = portal_k8s.get("v1", "Namespace", "tenant-onb-initech")
    assert namespace["metadata"]["labels"]["butler.io/tenant"] == "onb-initech"
    quota = portal_k8s.get("v1", "ResourceQuota", "butler-portal-quota", "tenant-onb-initech")
    assert quota["spec"]["hard"]["count/virtualmachines.kubevirt.io"] == "4"
    assert quota["spec"]["hard"]["services.loadbalancers"] == "4"
    subnet = portal_k8s.get("kubeovn.io/v1", "Subnet", "tenant-onb-initech")
    assert subnet["spec"]["cidrBlock"] == network.subnet_cidr
    assert subnet["spec"]["namespaces"] == ["tenant-onb-initech"]
    assert portal_k8s.get("kubeovn.io/v1", "Vpc", "tenant-onb-initech")["spec"]["namespaces"] == [
        "tenant-onb-initech"
    ]
    pool = portal_k8s.get(
        "metallb.io/v1beta1", "IPAddressPool", "tenant-onb-initech", "metallb-system"
    )
    assert pool["spec"]["addresses"] == ["192.0.2.10-192.0.2.13"]
    assert pool["spec"]["serviceAllocation"]["namespaces"] == ["tenant-onb-initech"]
    assert network.state == TenantNetwork.State.PROVISIONING  # until the controllers report


def test_two_tenants_never_share_a_subnet_or_an_address(
    portal_k8s: KubeClient, address_space: LoadBalancerRange, operator: User
) -> None:
    first = onboard(operator, "onb-a")
    second = onboard(operator, "onb-b", load_balancer_ips=3)

    pool_a = portal_k8s.get("metallb.io/v1beta1", "IPAddressPool", "tenant-onb-a", "metallb-system")
    pool_b = portal_k8s.get("metallb.io/v1beta1", "IPAddressPool", "tenant-onb-b", "metallb-system")
    assert pool_a["spec"]["addresses"] == ["192.0.2.10-192.0.2.13"]
    assert pool_b["spec"]["addresses"] == ["192.0.2.14-192.0.2.16"]
    assert first.network.subnet_cidr != second.network.subnet_cidr


def test_changing_the_quota_updates_resource_quota_and_share(
    portal_k8s: KubeClient, address_space: LoadBalancerRange, operator: User
) -> None:
    tenant = onboard(operator, "onb-grow")
    quota_update(actor=Actor(operator), tenant=tenant, limits={"vms": 9, "load_balancer_ips": 6})

    quota = portal_k8s.get("v1", "ResourceQuota", "butler-portal-quota", "tenant-onb-grow")
    assert quota["spec"]["hard"]["count/virtualmachines.kubevirt.io"] == "9"
    pool = portal_k8s.get(
        "metallb.io/v1beta1", "IPAddressPool", "tenant-onb-grow", "metallb-system"
    )
    assert pool["spec"]["addresses"] == ["192.0.2.10-192.0.2.15"]

    quota_update(actor=Actor(operator), tenant=tenant, limits={"load_balancer_ips": 0})
    with pytest.raises(NotFound):
        portal_k8s.get("metallb.io/v1beta1", "IPAddressPool", "tenant-onb-grow", "metallb-system")


def test_not_enough_addresses_refuses_the_tenant_whole(
    portal_k8s: KubeClient, address_space: LoadBalancerRange, operator: User
) -> None:
    with pytest.raises(ValidationError) as raised:
        onboard(operator, "onb-greedy", load_balancer_ips=500)
    assert "load_balancer_ips" in raised.value.message_dict
    assert not Tenant.objects.filter(slug="onb-greedy").exists()
    with pytest.raises(NotFound):
        portal_k8s.get("v1", "Namespace", "tenant-onb-greedy")


def test_suspending_blocks_new_objects_in_kubernetes_too(
    portal_k8s: KubeClient, address_space: LoadBalancerRange, operator: User
) -> None:
    tenant = onboard(operator, "onb-pause")
    tenant_set_state(actor=Actor(operator), tenant=tenant, state=Tenant.State.SUSPENDED)

    hard = portal_k8s.get("v1", "ResourceQuota", "butler-portal-quota", "tenant-onb-pause")["spec"][
        "hard"
    ]
    assert hard["count/virtualmachines.kubevirt.io"] == "0"
    assert hard["count/clusters.cluster.x-k8s.io"] == "0"
    namespace = portal_k8s.get("v1", "Namespace", "tenant-onb-pause")
    assert namespace["metadata"]["labels"]["butler.io/suspended"] == "true"

    tenant_set_state(actor=Actor(operator), tenant=tenant, state=Tenant.State.ACTIVE)
    hard = portal_k8s.get("v1", "ResourceQuota", "butler-portal-quota", "tenant-onb-pause")["spec"][
        "hard"
    ]
    assert hard["count/virtualmachines.kubevirt.io"] == "4"


def test_deleting_removes_the_network_then_the_tenant(
    portal_k8s: KubeClient, address_space: LoadBalancerRange, operator: User
) -> None:
    tenant = onboard(operator, "onb-bye")

    assert tenant_delete(actor=Actor(operator), tenant=tenant) is False  # asynchronous

    assert not Tenant.objects.filter(slug="onb-bye").exists()  # the eager task finished it
    for kind, api_version, namespace in [
        ("Subnet", "kubeovn.io/v1", None),
        ("Vpc", "kubeovn.io/v1", None),
        ("IPAddressPool", "metallb.io/v1beta1", "metallb-system"),
    ]:
        with pytest.raises(NotFound):
            portal_k8s.get(api_version, kind, "tenant-onb-bye", namespace)
    # A bare API server has no namespace controller: the namespace stays Terminating.
    assert portal_k8s.get("v1", "Namespace", "tenant-onb-bye")["metadata"].get("deletionTimestamp")
