"""KubeVirt VMs and CDI DataVolumes (STATUS.md §3–§6), with addresses from Kube-OVN (§7)."""

from __future__ import annotations

import ipaddress
import itertools

import pytest

from butler_portal.kube.adapter import KubeClient
from butler_portal.simulator import DELAY_ANNOTATION, FAIL_ANNOTATION, Simulator
from tests.simulator.conftest import (
    Manifest,
    changes,
    condition,
    example,
    fetch,
    get,
    history,
    reach,
    status,
    unique,
)
from tests.simulator_fixtures import wait_for

pytestmark = pytest.mark.k8s

KUBEVIRT = "kubevirt.io/v1"
CDI = "cdi.kubevirt.io/v1beta1"
KUBEOVN = "kubeovn.io/v1"


def data_volume(namespace: str, **annotations: str) -> Manifest:
    dv = example("cdi-datavolume.yaml", namespace)[0]
    dv["metadata"]["annotations"] = annotations
    return dv


def container_disk_vm(namespace: str, run_strategy: str, **annotations: str) -> Manifest:
    """The example's ephemeral VM (no DataVolume): "vm-2"."""
    vm = example("kubevirt-virtualmachine.yaml", namespace, kind="VirtualMachine")[1]
    vm["spec"]["runStrategy"] = run_strategy
    vm["metadata"]["annotations"] = annotations
    return vm


def printable(vm: Manifest | None) -> str | None:
    shown = status(vm, "printableStatus")
    return str(shown) if shown is not None else None


def instance(k8s: KubeClient, vm: Manifest) -> Manifest | None:
    return get(
        k8s, KUBEVIRT, "VirtualMachineInstance", vm["metadata"]["name"], vm["metadata"]["namespace"]
    )


def running(k8s: KubeClient, vm: Manifest) -> Manifest:
    return reach(k8s, vm, lambda v: printable(v) == "Running" and status(v, "ready"))


def progress(dv: Manifest) -> float | None:
    shown = status(dv, "progress")
    return float(shown.rstrip("%")) if shown and shown != "N/A" else None


def test_a_data_volume_imports_with_rising_progress(
    k8s: KubeClient, k8s_namespace: str, simulator: Simulator
) -> None:
    dv = k8s.apply(data_volume(k8s_namespace))

    seen = history(k8s, dv, until=lambda d: status(d, "phase") == "Succeeded")

    phases = changes([status(d, "phase") for d in seen])
    assert phases == ["Pending", "ImportScheduled", "ImportInProgress", "Succeeded"]
    shown = [p for p in (progress(d) for d in seen) if p is not None]
    assert len(shown) > 3
    assert all(earlier < later for earlier, later in itertools.pairwise(shown))
    assert (shown[0], shown[-1]) == (0, 100)
    done = seen[-1]
    assert condition(done, "Ready")["status"] == "True"
    assert condition(done, "Bound")["status"] == "True"
    assert status(done, "claimName") == dv["metadata"]["name"]


def test_a_failing_import_ends_failed_with_the_importers_message(
    k8s: KubeClient, k8s_namespace: str, simulator: Simulator
) -> None:
    dv = k8s.apply(data_volume(k8s_namespace, **{FAIL_ANNOTATION: "HTTP 404 Not Found"}))

    failed = reach(k8s, dv, lambda d: status(d, "phase") == "Failed")

    assert condition(failed, "Running")["message"] == "Unable to process data: HTTP 404 Not Found"
    assert condition(failed, "Ready")["status"] == "False"
    assert 0 < progress(failed) < 100  # type: ignore[operator]


def test_a_halted_vm_starts_with_an_address_from_its_tenant_subnet(
    k8s: KubeClient, k8s_namespace: str, tenant_subnet: Manifest, simulator: Simulator
) -> None:
    vm = container_disk_vm(k8s_namespace, "Halted")
    k8s.apply(vm)
    reach(k8s, vm, lambda v: printable(v) == "Stopped")
    assert instance(k8s, vm) is None

    vm["spec"]["runStrategy"] = "Always"
    k8s.apply(vm)
    seen = history(k8s, vm, until=lambda v: printable(v) == "Running")

    assert "Starting" in [printable(v) for v in seen]
    assert status(seen[-1], "ready") is True
    vmi = instance(k8s, vm)
    assert status(vmi, "phase") == "Running"
    address = status(vmi, "interfaces")[0]["ipAddress"]
    assert ipaddress.ip_address(address) in ipaddress.ip_network("10.100.0.0/24")
    assert ipaddress.IPv4Address(address) > ipaddress.IPv4Address("10.100.0.10")  # excludeIps
    ip = get(k8s, KUBEOVN, "IP", f"vm-2.{k8s_namespace}")
    assert ip is not None
    assert (ip["spec"]["v4IpAddress"], ip["spec"]["subnet"]) == (
        address,
        tenant_subnet["metadata"]["name"],
    )
    assert wait_for(lambda: status(fetch(k8s, tenant_subnet), "v4usingIPs") == 1)


def test_a_vm_waits_for_its_tenant_subnet_before_running(
    k8s: KubeClient, k8s_namespace: str, simulator: Simulator
) -> None:
    subnet = example("kubeovn-subnet.yaml", k8s_namespace, kind="Subnet")[0]
    subnet["metadata"] |= {"name": unique("subnet"), "annotations": {FAIL_ANNOTATION: "broken"}}
    k8s.apply(subnet)
    vm = k8s.apply(container_disk_vm(k8s_namespace, "Always"))

    # Kube-OVN's CNI cannot wire the pod: the VMI stays Scheduled, the VM Starting.
    wait_for(lambda: status(instance(k8s, vm), "phase") == "Scheduled")
    assert printable(reach(k8s, vm, lambda v: printable(v) == "Starting")) == "Starting"

    subnet["metadata"]["annotations"] = {}
    k8s.apply(subnet)

    running(k8s, vm)
    address = status(instance(k8s, vm), "interfaces")[0]["ipAddress"]
    assert ipaddress.ip_address(address) in ipaddress.ip_network("10.100.0.0/24")


def disk_and_secondary_network_vm(namespace: str) -> Manifest:
    """The example's "vm-1": a DataVolume template and a second NIC on the Multus network
    ``<namespace>/tenant-a-net``."""
    vm = example("kubevirt-virtualmachine.yaml", namespace, kind="VirtualMachine")[0]
    vm["spec"]["runStrategy"] = "Always"
    vm["spec"]["template"]["spec"]["networks"][1]["multus"]["networkName"] = (
        f"{namespace}/tenant-a-net"
    )
    return vm


def test_a_vm_with_a_disk_template_is_provisioning_until_its_import_is_done(
    k8s: KubeClient, k8s_namespace: str, tenant_subnet: Manifest, simulator: Simulator
) -> None:
    vm = disk_and_secondary_network_vm(k8s_namespace)
    k8s.apply(vm)

    seen = history(k8s, vm, until=lambda v: printable(v) == "Running")

    assert changes([printable(v) for v in seen]) == ["Provisioning", "Starting", "Running"]
    dv = get(k8s, CDI, "DataVolume", "vm-1-rootdisk", k8s_namespace)
    assert status(dv, "phase") == "Succeeded"
    assert dv["metadata"]["ownerReferences"][0]["kind"] == "VirtualMachine"  # type: ignore[index]


def test_a_secondary_network_gets_its_address_from_the_subnet_of_its_provider(
    k8s: KubeClient, k8s_namespace: str, tenant_subnet: Manifest, simulator: Simulator
) -> None:
    provider = f"tenant-a-net.{k8s_namespace}.ovn"
    secondary = example("kubeovn-subnet.yaml", k8s_namespace, kind="Subnet")[1]  # 172.30.0.0/24
    secondary["metadata"]["name"] = unique("secondary")
    secondary["spec"]["provider"] = provider
    k8s.apply(secondary)
    vm = disk_and_secondary_network_vm(k8s_namespace)
    k8s.apply(vm)

    running(k8s, vm)

    default, second = status(instance(k8s, vm), "interfaces")
    assert ipaddress.ip_address(default["ipAddress"]) in ipaddress.ip_network("10.100.0.0/24")
    assert ipaddress.ip_address(second["ipAddress"]) in ipaddress.ip_network("172.30.0.0/24")
    assert second["infoSource"] == "domain, multus-status"
    ip = get(k8s, KUBEOVN, "IP", f"vm-1.{k8s_namespace}.{provider}")
    assert ip is not None
    assert ip["spec"]["subnet"] == secondary["metadata"]["name"]


def test_deleting_the_instance_of_a_running_vm_restarts_it_at_the_same_address(
    k8s: KubeClient, k8s_namespace: str, tenant_subnet: Manifest, simulator: Simulator
) -> None:
    vm = k8s.apply(container_disk_vm(k8s_namespace, "Always"))
    running(k8s, vm)
    first = instance(k8s, vm)
    assert first is not None

    k8s.delete_manifest(first)  # §5: a restart without virt-api

    def restarted(v: Manifest) -> bool:
        current = instance(k8s, vm)
        return (
            printable(v) == "Running"
            and current is not None
            and current["metadata"]["uid"] != first["metadata"]["uid"]
        )

    seen = history(k8s, vm, until=restarted)
    assert changes([printable(v) for v in seen]) == ["Running", "Stopping", "Starting", "Running"]
    second = instance(k8s, vm)
    assert second["metadata"]["uid"] != first["metadata"]["uid"]  # type: ignore[index]
    assert (
        status(second, "interfaces")[0]["ipAddress"] == status(first, "interfaces")[0]["ipAddress"]
    )


def test_halting_a_running_vm_stops_it(
    k8s: KubeClient, k8s_namespace: str, tenant_subnet: Manifest, simulator: Simulator
) -> None:
    manifest = container_disk_vm(k8s_namespace, "Always", **{DELAY_ANNOTATION: "0.2"})
    vm = k8s.apply(manifest)
    running(k8s, vm)

    manifest["spec"]["runStrategy"] = "Halted"
    k8s.apply(manifest)
    seen = history(k8s, vm, until=lambda v: printable(v) == "Stopped")

    assert "Stopping" in [printable(v) for v in seen]
    assert status(seen[-1], "ready") is False
    assert instance(k8s, vm) is None
    assert get(k8s, KUBEOVN, "IP", f"vm-2.{k8s_namespace}") is not None  # kept for the next start


def test_manual_start_and_stop_requests_are_followed(
    k8s: KubeClient, k8s_namespace: str, tenant_subnet: Manifest, simulator: Simulator
) -> None:
    vm = k8s.apply(container_disk_vm(k8s_namespace, "Manual"))
    reach(k8s, vm, lambda v: printable(v) == "Stopped")

    k8s.patch_status(
        KUBEVIRT,
        "VirtualMachine",
        "vm-2",
        {"stateChangeRequests": [{"action": "Start"}]},
        k8s_namespace,
    )
    started = running(k8s, vm)
    assert not status(started, "stateChangeRequests")

    k8s.patch_status(
        KUBEVIRT,
        "VirtualMachine",
        "vm-2",
        {"stateChangeRequests": [{"action": "Stop"}]},
        k8s_namespace,
    )
    reach(k8s, vm, lambda v: printable(v) == "Stopped")
    assert instance(k8s, vm) is None


def test_an_unschedulable_vm_says_why(
    k8s: KubeClient, k8s_namespace: str, tenant_subnet: Manifest, simulator: Simulator
) -> None:
    reason = "0/3 nodes are available: 3 Insufficient memory."
    vm = k8s.apply(container_disk_vm(k8s_namespace, "Always", **{FAIL_ANNOTATION: reason}))

    stuck = reach(k8s, vm, lambda v: printable(v) == "ErrorUnschedulable")

    assert condition(stuck, "PodScheduled") | {"lastTransitionTime": None} == {
        "type": "PodScheduled",
        "status": "False",
        "reason": "Unschedulable",
        "message": reason,
        "lastTransitionTime": None,
    }
    assert status(instance(k8s, vm), "phase") == "Scheduling"


def test_a_crashing_vm_backs_off_and_counts_its_failures(
    k8s: KubeClient, k8s_namespace: str, tenant_subnet: Manifest, simulator: Simulator
) -> None:
    vm = k8s.apply(
        container_disk_vm(
            k8s_namespace, "Always", **{FAIL_ANNOTATION: "CrashLoopBackOff: kernel panic"}
        )
    )

    crashing = reach(
        k8s,
        vm,
        lambda v: (
            printable(v) == "CrashLoopBackOff"
            and (status(v, "startFailure") or {}).get("consecutiveFailCount", 0) >= 2
        ),
    )

    assert condition(crashing, "Failure")["message"] == "kernel panic"
    assert status(crashing, "ready") is False
    # Left alone it would crash-loop for the rest of the session, keeping the simulator busy.
    k8s.delete_manifest(vm)
    wait_for(lambda: fetch(k8s, vm) is None)


def test_deleting_a_vm_removes_its_instance_volumes_and_address(
    k8s: KubeClient, k8s_namespace: str, tenant_subnet: Manifest, simulator: Simulator
) -> None:
    vm = disk_and_secondary_network_vm(k8s_namespace)
    k8s.apply(vm)
    running(k8s, vm)

    k8s.delete_manifest(vm)

    wait_for(lambda: fetch(k8s, vm) is None)
    wait_for(lambda: get(k8s, CDI, "DataVolume", "vm-1-rootdisk", k8s_namespace) is None)
    assert instance(k8s, vm) is None
    assert get(k8s, KUBEOVN, "IP", f"vm-1.{k8s_namespace}") is None
    assert wait_for(lambda: status(fetch(k8s, tenant_subnet), "v4usingIPs") == 0) is True
