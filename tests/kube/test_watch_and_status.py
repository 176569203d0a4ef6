"""Watches (with resume and 410 Gone) and status subresource writes."""

from __future__ import annotations

from typing import Any

import pytest

from butler_portal.kube.adapter import KubeClient, WatchEvent
from butler_portal.kube.errors import Gone
from butler_portal.kube.localcp import LocalControlPlane

pytestmark = pytest.mark.k8s

VM_API_VERSION = "kubevirt.io/v1"


def virtual_machine(name: str, namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": VM_API_VERSION,
        "kind": "VirtualMachine",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "runStrategy": "Halted",
            "template": {"spec": {"domain": {"devices": {}, "memory": {"guest": "1Gi"}}}},
        },
    }


def collect_events(
    k8s: KubeClient, namespace: str, resource_version: str, until: int
) -> list[WatchEvent]:
    """Watch VirtualMachines from ``resource_version`` until ``until`` object events arrived."""
    events: list[WatchEvent] = []
    for event in k8s.watch(
        VM_API_VERSION,
        "VirtualMachine",
        namespace,
        resource_version=resource_version,
        timeout_seconds=10,
    ):
        if event.type != "BOOKMARK":
            events.append(event)
        if len(events) == until:
            break
    return events


def test_watch_replays_changes_after_the_list(k8s: KubeClient, k8s_namespace: str) -> None:
    items, listed_at = k8s.list(VM_API_VERSION, "VirtualMachine", k8s_namespace)
    assert items == []

    created = k8s.apply(virtual_machine("vm-1", k8s_namespace))
    changed_manifest = virtual_machine("vm-1", k8s_namespace)
    changed_manifest["spec"]["runStrategy"] = "Always"
    changed = k8s.apply(changed_manifest)

    events = collect_events(k8s, k8s_namespace, listed_at, until=2)

    assert [event.type for event in events] == ["ADDED", "MODIFIED"]
    assert [event.resource_version for event in events] == [
        created["metadata"]["resourceVersion"],
        changed["metadata"]["resourceVersion"],
    ]
    assert events[1].object["spec"]["runStrategy"] == "Always"


def test_watch_resumes_from_the_last_seen_resource_version(
    k8s: KubeClient, k8s_namespace: str
) -> None:
    _, listed_at = k8s.list(VM_API_VERSION, "VirtualMachine", k8s_namespace)
    k8s.apply(virtual_machine("first", k8s_namespace))
    (first_event,) = collect_events(k8s, k8s_namespace, listed_at, until=1)

    k8s.apply(virtual_machine("second", k8s_namespace))
    k8s.delete(VM_API_VERSION, "VirtualMachine", "first", k8s_namespace)
    resumed = collect_events(k8s, k8s_namespace, first_event.resource_version, until=2)

    assert [(event.type, event.object["metadata"]["name"]) for event in resumed] == [
        ("ADDED", "second"),
        ("DELETED", "first"),
    ]


def test_watch_from_a_too_old_resource_version_is_gone(k8s: KubeClient, k8s_namespace: str) -> None:
    # Writes make the oldest version the API server still remembers move past "1".
    for index in range(3):
        k8s.apply(virtual_machine(f"vm-{index}", k8s_namespace))

    with pytest.raises(Gone) as caught:
        collect_events(k8s, k8s_namespace, "1", until=1)

    assert caught.value.status_code == 410


def test_watch_from_a_compacted_resource_version_is_gone() -> None:
    # The watch cache would still serve recent versions after compaction; without it, the API
    # server reads etcd, the way it does for versions that fell out of a busy cluster's cache.
    with (
        LocalControlPlane(install_crds=False, watch_cache=False) as control_plane,
        control_plane.client() as client,
    ):
        manifest: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "compacted", "namespace": "default"},
            "data": {"step": "0"},
        }
        seen_at = client.apply(manifest)["metadata"]["resourceVersion"]
        # Two more writes put the compaction point past the first event after `seen_at`.
        # (Compacting exactly at that event makes the server fail with a 500 "PrevKv=nil"
        # instead: it can no longer read the previous state the event needs.)
        for step in ("1", "2"):
            manifest["data"]["step"] = step
            client.apply(manifest)
        control_plane.compact_etcd()

        with pytest.raises(Gone) as caught:
            next(client.watch("v1", "ConfigMap", "default", resource_version=seen_at))

        assert caught.value.reason == "Expired"


def test_recovery_from_gone_is_list_then_watch(k8s: KubeClient, k8s_namespace: str) -> None:
    k8s.apply(virtual_machine("existing", k8s_namespace))
    with pytest.raises(Gone):
        collect_events(k8s, k8s_namespace, "1", until=1)

    items, listed_at = k8s.list(VM_API_VERSION, "VirtualMachine", k8s_namespace)
    k8s.apply(virtual_machine("later", k8s_namespace))
    (event,) = collect_events(k8s, k8s_namespace, listed_at, until=1)

    assert [item["metadata"]["name"] for item in items] == ["existing"]
    assert (event.type, event.object["metadata"]["name"]) == ("ADDED", "later")


# --- Status subresource ------------------------------------------------------------------------


def test_patch_status_merges_into_the_status_subresource(
    k8s: KubeClient, k8s_namespace: str
) -> None:
    created = k8s.apply(virtual_machine("vm-status", k8s_namespace))

    k8s.patch_status(
        VM_API_VERSION,
        "VirtualMachine",
        "vm-status",
        {"printableStatus": "Provisioning", "ready": False},
        k8s_namespace,
    )
    patched = k8s.patch_status(
        VM_API_VERSION, "VirtualMachine", "vm-status", {"ready": True}, k8s_namespace
    )

    assert patched["status"] == {"printableStatus": "Provisioning", "ready": True}
    assert patched["spec"] == created["spec"]
    # Status writes do not bump the generation: only spec changes do.
    assert patched["metadata"]["generation"] == created["metadata"]["generation"]


def test_patch_status_by_server_side_apply(k8s: KubeClient, k8s_namespace: str) -> None:
    k8s.apply(virtual_machine("vm-ssa-status", k8s_namespace))

    patched = k8s.patch_status(
        VM_API_VERSION,
        "VirtualMachine",
        "vm-ssa-status",
        {"printableStatus": "Running", "ready": True},
        k8s_namespace,
        server_side_apply=True,
        field_manager="simulator",
    )

    assert patched["status"] == {"printableStatus": "Running", "ready": True}
    managers = {
        (entry["manager"], entry.get("subresource", ""))
        for entry in patched["metadata"]["managedFields"]
    }
    assert ("simulator", "status") in managers


def test_status_sent_with_the_main_resource_is_ignored(k8s: KubeClient, k8s_namespace: str) -> None:
    manifest = virtual_machine("vm-ignored-status", k8s_namespace)
    manifest["status"] = {"printableStatus": "Running"}

    applied = k8s.apply(manifest)

    assert applied.get("status", {}).get("printableStatus") != "Running"


def test_patch_status_of_a_cluster_scoped_object(k8s: KubeClient) -> None:
    k8s.apply(
        {
            "apiVersion": "kubeovn.io/v1",
            "kind": "Subnet",
            "metadata": {"name": "status-subnet"},
            "spec": {"protocol": "IPv4", "cidrBlock": "10.201.0.0/24"},
        }
    )

    patched = k8s.patch_status("kubeovn.io/v1", "Subnet", "status-subnet", {"v4availableIPs": 253})

    assert patched["status"]["v4availableIPs"] == 253
