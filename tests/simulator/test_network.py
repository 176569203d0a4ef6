"""Kube-OVN Vpc/Subnet status and MetalLB address assignment (STATUS.md §7, §8)."""

from __future__ import annotations

import pytest

from butler_portal.kube.adapter import KubeClient
from butler_portal.simulator import FAIL_ANNOTATION, Simulator
from tests.simulator.conftest import Manifest, condition, example, fetch, get, reach, status, unique
from tests.simulator.test_capi import available_cluster, cluster_manifests, machines
from tests.simulator_fixtures import wait_for

pytestmark = pytest.mark.k8s

METALLB = "metallb.io/v1beta1"


def test_vpc_and_subnet_become_ready_with_their_address_accounting(
    k8s: KubeClient, k8s_namespace: str, simulator: Simulator
) -> None:
    vpc, subnet = example("kubeovn-subnet.yaml", k8s_namespace)[:2]
    vpc["metadata"]["name"] = unique("vpc")
    subnet["metadata"]["name"] = unique("subnet")
    subnet["spec"]["vpc"] = vpc["metadata"]["name"]
    k8s.apply(vpc)
    k8s.apply(subnet)

    ready_vpc = reach(k8s, vpc, lambda v: status(v, "subnets"))
    ready_subnet = reach(k8s, subnet, lambda s: condition(s, "Ready").get("status") == "True")

    assert status(ready_vpc, "standby") is True
    assert status(ready_vpc, "router") == vpc["metadata"]["name"]
    assert status(ready_vpc, "subnets") == [subnet["metadata"]["name"]]
    assert condition(ready_subnet, "Validated")["status"] == "True"
    assert condition(ready_subnet, "Error")["status"] == "False"
    assert condition(ready_subnet, "Ready")["reason"] == "ResetLogicalSwitchAclSuccess"
    # 10.100.0.0/24: 254 hosts, minus 10.100.0.1..10.100.0.10 excluded (the gateway among them).
    assert status(ready_subnet, "v4availableIPs") == 244
    assert status(ready_subnet, "v4usingIPs") == 0
    assert status(ready_subnet, "v4availableIPrange") == "10.100.0.11-10.100.0.254"


def test_a_failing_subnet_reports_the_error(
    k8s: KubeClient, k8s_namespace: str, simulator: Simulator
) -> None:
    subnet = example("kubeovn-subnet.yaml", k8s_namespace, kind="Subnet")[0]
    subnet["metadata"] |= {
        "name": unique("subnet"),
        "annotations": {FAIL_ANNOTATION: "cidr 10.100.0.0/24 conflicts with subnet ovn-default"},
    }
    k8s.apply(subnet)

    failed = reach(k8s, subnet, lambda s: condition(s, "Error").get("status") == "True")

    assert (
        condition(failed, "Error")["message"]
        == "cidr 10.100.0.0/24 conflicts with subnet ovn-default"
    )
    assert condition(failed, "Ready")["status"] == "False"
    assert condition(failed, "Validated")["status"] == "False"


def load_balancer(name: str, namespace: str, annotations: dict[str, str] | None = None) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace, "annotations": annotations or {}},
        "spec": {"type": "LoadBalancer", "ports": [{"port": 6443}], "selector": {"app": name}},
    }


def address_of(service: Manifest | None) -> str | None:
    ingress = status(service, "loadBalancer", "ingress") or []
    return ingress[0]["ip"] if ingress else None


def test_services_get_distinct_addresses_until_the_pool_runs_out(
    k8s: KubeClient, k8s_namespace: str, address_pool: Manifest, simulator: Simulator
) -> None:
    first, second, third = (
        k8s.apply(load_balancer(name, k8s_namespace)) for name in ("first", "second", "third")
    )
    pool_name = address_pool["metadata"]["name"]

    served = [reach(k8s, service, address_of) for service in (first, second)]
    refusal = wait_for(lambda: allocation_failures(k8s, k8s_namespace, "third"))

    addresses = [address_of(service) for service in served]
    assert len(set(addresses)) == 2
    for service in served:
        annotations = service["metadata"]["annotations"]
        assert annotations["metallb.io/ip-allocated-from-pool"] == pool_name
    assert address_of(fetch(k8s, third)) is None
    assert refusal[0]["type"] == "Warning"
    assert (
        refusal[0]["message"]
        == f'Failed to allocate IP for "{k8s_namespace}/third": no available IPs'
    )
    pool = reach(k8s, address_pool, lambda p: status(p, "assignedIPv4") == 2)
    assert status(pool, "availableIPv4") == 0

    # An address set free goes to the Service still waiting for one.
    k8s.delete_manifest(first)
    assert address_of(reach(k8s, third, address_of)) == addresses[0]


def allocation_failures(k8s: KubeClient, namespace: str, service: str) -> list[Manifest]:
    return [
        event
        for event in k8s.list("v1", "Event", namespace).items
        if event["involvedObject"]["name"] == service and event["reason"] == "AllocationFailed"
    ]


def test_a_service_gets_the_address_it_asks_for(
    k8s: KubeClient, k8s_namespace: str, address_pool: Manifest, simulator: Simulator
) -> None:
    wanted = address_pool["spec"]["addresses"][0].split("-")[1]
    service = k8s.apply(
        load_balancer(
            "pinned",
            k8s_namespace,
            {
                "metallb.io/loadBalancerIPs": wanted,
                "metallb.io/address-pool": address_pool["metadata"]["name"],
            },
        )
    )

    assert address_of(reach(k8s, service, address_of)) == wanted


def test_a_pool_outside_metallbs_namespace_is_ignored(
    k8s: KubeClient, k8s_namespace: str, simulator: Simulator
) -> None:
    k8s.apply(
        {
            "apiVersion": METALLB,
            "kind": "IPAddressPool",
            "metadata": {"name": "stray", "namespace": k8s_namespace},
            "spec": {
                "addresses": ["203.0.113.200/32"],
                "serviceAllocation": {"namespaces": [k8s_namespace]},
            },
        }
    )
    k8s.apply(load_balancer("lonely", k8s_namespace))

    wait_for(lambda: allocation_failures(k8s, k8s_namespace, "lonely"))
    assert address_of(get(k8s, "v1", "Service", "lonely", k8s_namespace)) is None


def test_a_clusters_workers_take_addresses_in_the_namespaces_subnet(
    k8s: KubeClient, k8s_namespace: str, address_pool: Manifest, simulator: Simulator
) -> None:
    """A worker is a KubeVirt VM in the tenant's namespace (STATUS.md §10.8): Kube-OVN gives
    it an address of the namespace's Subnet and counts it, as for any VM."""
    subnet = example("kubeovn-subnet.yaml", k8s_namespace, kind="Subnet")[0]
    subnet["metadata"]["name"] = unique("subnet")
    subnet["spec"].pop("vpc")
    k8s.apply(subnet)
    reach(k8s, subnet, lambda s: condition(s, "Ready").get("status") == "True")
    manifests = cluster_manifests(k8s_namespace)
    md = manifests["MachineDeployment"]
    md["spec"]["replicas"] = 2

    available_cluster(k8s, manifests)

    counted = reach(k8s, subnet, lambda s: status(s, "v4usingIPs") == 2)
    assert status(counted, "v4availableIPs") == 242
    addresses = sorted(
        entry["address"]
        for machine in machines(k8s, k8s_namespace)
        for entry in status(machine, "addresses")
        if entry["type"] == "InternalIP"
    )
    assert addresses == ["10.100.0.11", "10.100.0.12"]

    md["spec"]["replicas"] = 1
    k8s.apply(md)
    wait_for(lambda: len(machines(k8s, k8s_namespace)) == 1)
    # The removed worker's VM gives its address back.
    reach(k8s, subnet, lambda s: status(s, "v4usingIPs") == 1)
