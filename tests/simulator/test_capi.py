"""Cluster API with the Kamaji control plane and KubeVirt infrastructure (STATUS.md §10)."""

from __future__ import annotations

import base64
import re

import pytest

from butler_portal.kube.adapter import KubeClient
from butler_portal.simulator import FAIL_ANNOTATION, Simulator
from tests.simulator.conftest import (
    Manifest,
    condition,
    example,
    fetch,
    get,
    is_true,
    reach,
    status,
)
from tests.simulator_fixtures import wait_for

pytestmark = pytest.mark.k8s

CAPI = "cluster.x-k8s.io/v1beta2"
KCP = "controlplane.cluster.x-k8s.io/v1alpha2"
INFRA = "infrastructure.cluster.x-k8s.io/v1alpha1"
KAMAJI = "kamaji.clastix.io/v1alpha1"


def cluster_manifests(namespace: str) -> dict[str, Manifest]:
    """The example's objects by kind (one each)."""
    return {doc["kind"]: doc for doc in example("capi-kamaji-kubevirt-cluster.yaml", namespace)}


def machines(k8s: KubeClient, namespace: str) -> list[Manifest]:
    return k8s.list(CAPI, "Machine", namespace).items


def available_cluster(k8s: KubeClient, manifests: dict[str, Manifest]) -> Manifest:
    for manifest in manifests.values():
        k8s.apply(manifest)
    return reach(k8s, manifests["Cluster"], lambda c: is_true(c, "Available"))


def test_the_example_cluster_becomes_available(
    k8s: KubeClient, k8s_namespace: str, address_pool: Manifest, simulator: Simulator
) -> None:
    manifests = cluster_manifests(k8s_namespace)

    cluster = available_cluster(k8s, manifests)

    assert status(cluster, "phase") == "Provisioned"
    assert status(cluster, "initialization") == {
        "infrastructureProvisioned": True,
        "controlPlaneInitialized": True,
    }
    for type_ in (
        "InfrastructureReady",
        "ControlPlaneInitialized",
        "ControlPlaneAvailable",
        "WorkersAvailable",
        "RemoteConnectionProbe",
    ):
        assert is_true(cluster, type_), condition(cluster, type_)
    assert status(cluster, "workers") == {
        "desiredReplicas": 1,
        "replicas": 1,
        "readyReplicas": 1,
        "availableReplicas": 1,
        "upToDateReplicas": 1,
    }
    kcp = fetch(k8s, manifests["KamajiControlPlane"])
    assert status(kcp, "ready") is True
    assert status(kcp, "version") == "v1.34.1"
    assert is_true(kcp, "KamajiControlPlaneIsInitialized")
    # The provider made the TCP (same name, owned by the KCP) and patched the endpoints in.
    tcp = get(k8s, KAMAJI, "TenantControlPlane", "demo", k8s_namespace)
    assert tcp is not None
    assert tcp["metadata"]["ownerReferences"][0]["kind"] == "KamajiControlPlane"
    host, port = status(tcp, "controlPlaneEndpoint").split(":")
    endpoint = {"host": host, "port": int(port)}
    assert cluster["spec"]["controlPlaneEndpoint"] == endpoint
    infra = fetch(k8s, manifests["KubevirtCluster"])
    assert infra["spec"]["controlPlaneEndpoint"] == endpoint  # type: ignore[index]
    assert status(infra, "ready") is True
    assert kcp["metadata"]["ownerReferences"][0]["kind"] == "Cluster"  # type: ignore[index]
    assert kcp["metadata"]["labels"]["cluster.x-k8s.io/cluster-name"] == "demo"  # type: ignore[index]


def test_the_cluster_kubeconfig_is_kamajis_admin_kubeconfig(
    k8s: KubeClient, k8s_namespace: str, address_pool: Manifest, simulator: Simulator
) -> None:
    available_cluster(k8s, cluster_manifests(k8s_namespace))

    secret = get(k8s, "v1", "Secret", "demo-kubeconfig", k8s_namespace)
    admin = get(k8s, "v1", "Secret", "demo-admin-kubeconfig", k8s_namespace)

    assert secret is not None
    assert admin is not None
    assert secret["type"] == "cluster.x-k8s.io/secret"
    assert secret["metadata"]["labels"]["cluster.x-k8s.io/cluster-name"] == "demo"
    assert secret["data"]["value"] == admin["data"]["admin.conf"]
    assert b"server: https://198.51." in base64.b64decode(secret["data"]["value"])


def test_machines_follow_the_machine_deployment_up_and_down(
    k8s: KubeClient, k8s_namespace: str, address_pool: Manifest, simulator: Simulator
) -> None:
    manifests = cluster_manifests(k8s_namespace)
    available_cluster(k8s, manifests)
    md = manifests["MachineDeployment"]

    md["spec"]["replicas"] = 3
    k8s.apply(md)
    scaled_up = reach(
        k8s, md, lambda d: status(d, "readyReplicas") == 3 and status(d, "phase") == "Running"
    )
    running = machines(k8s, k8s_namespace)
    assert [status(m, "phase") for m in running] == ["Running"] * 3
    assert all(m["status"]["nodeRef"]["name"] == m["metadata"]["name"] for m in running)
    (machine_set,) = k8s.list(CAPI, "MachineSet", k8s_namespace).items
    assert re.fullmatch(r"demo-md-0-[a-z0-9]{5}", machine_set["metadata"]["name"])
    assert all(
        re.fullmatch(rf"{machine_set['metadata']['name']}-[a-z0-9]{{5}}", m["metadata"]["name"])
        for m in running
    )
    assert is_true(scaled_up, "Available")

    md["spec"]["replicas"] = 1
    k8s.apply(md)
    wait_for(lambda: len(machines(k8s, k8s_namespace)) == 1)
    scaled_down = reach(k8s, md, lambda d: status(d, "replicas") == 1)
    assert status(scaled_down, "phase") == "Running"


def test_a_version_upgrade_rolls_the_workers_over_to_a_new_machine_set(
    k8s: KubeClient, k8s_namespace: str, address_pool: Manifest, simulator: Simulator
) -> None:
    manifests = cluster_manifests(k8s_namespace)
    available_cluster(k8s, manifests)
    old = {m["metadata"]["name"] for m in machines(k8s, k8s_namespace)}

    # §10.9: control plane first, then the workers.
    manifests["KamajiControlPlane"]["spec"]["version"] = "v1.35.0"
    k8s.apply(manifests["KamajiControlPlane"])
    reach(k8s, manifests["KamajiControlPlane"], lambda kcp: status(kcp, "version") == "v1.35.0")
    md = manifests["MachineDeployment"]
    md["spec"]["template"]["spec"]["version"] = "v1.35.0"
    k8s.apply(md)

    # §10.9: done when the current generation is observed with every replica up to date.
    done = reach(
        k8s,
        md,
        lambda d: (
            status(d, "observedGeneration") == d["metadata"]["generation"]
            and status(d, "upToDateReplicas") == status(d, "availableReplicas") == 1
            and status(d, "replicas") == 1
            and not is_true(d, "RollingOut")
        ),
    )
    (machine,) = machines(k8s, k8s_namespace)
    assert machine["metadata"]["name"] not in old
    assert machine["spec"]["version"] == "v1.35.0"
    assert is_true(done, "Available")
    wait_for(lambda: len(k8s.list(CAPI, "MachineSet", k8s_namespace).items) == 1)  # old one gone


def test_workers_wait_while_the_control_plane_cannot_come_up(
    k8s: KubeClient, k8s_namespace: str, address_pool: Manifest, simulator: Simulator
) -> None:
    manifests = cluster_manifests(k8s_namespace)
    # The KCP hands its annotations to its TenantControlPlane, which then never gets Ready.
    manifests["KamajiControlPlane"]["metadata"]["annotations"] = {
        FAIL_ANNOTATION: "etcd unreachable"
    }
    for manifest in manifests.values():
        k8s.apply(manifest)

    tcp = {**manifests["KamajiControlPlane"], "apiVersion": KAMAJI, "kind": "TenantControlPlane"}
    reach(k8s, tcp, lambda t: status(t, "kubernetesResources", "version", "status") == "NotReady")
    blocked = reach(
        k8s,
        manifests["MachineDeployment"],
        lambda d: "preflight" in condition(d, "ScalingUp").get("message", ""),
    )
    assert "is provisioning" in condition(blocked, "ScalingUp")["message"]
    assert machines(k8s, k8s_namespace) == []
    cluster = fetch(k8s, manifests["Cluster"])
    assert condition(cluster, "ControlPlaneInitialized")["status"] == "False"
    assert condition(cluster, "Available")["status"] == "False"


def test_an_injected_cluster_failure_shows_in_its_conditions(
    k8s: KubeClient, k8s_namespace: str, address_pool: Manifest, simulator: Simulator
) -> None:
    manifests = cluster_manifests(k8s_namespace)
    manifests["Cluster"]["metadata"]["annotations"] = {
        FAIL_ANNOTATION: "KubeVirt infrastructure quota exceeded"
    }
    for manifest in manifests.values():
        k8s.apply(manifest)

    failed = reach(
        k8s,
        manifests["Cluster"],
        lambda c: condition(c, "InfrastructureReady").get("status") == "False",
    )

    assert (
        condition(failed, "InfrastructureReady")["message"]
        == "KubeVirt infrastructure quota exceeded"
    )
    assert "KubeVirt infrastructure quota exceeded" in condition(failed, "Available")["message"]
    assert (
        status(failed, "deprecated", "v1beta1", "failureMessage")
        == "KubeVirt infrastructure quota exceeded"
    )


def test_deleting_the_cluster_removes_everything_it_made(
    k8s: KubeClient, k8s_namespace: str, address_pool: Manifest, simulator: Simulator
) -> None:
    manifests = cluster_manifests(k8s_namespace)
    available_cluster(k8s, manifests)

    k8s.delete_manifest(manifests["Cluster"])

    deleting = reach(k8s, manifests["Cluster"], lambda c: status(c, "phase") == "Deleting")
    assert is_true(deleting, "Deleting")
    wait_for(lambda: fetch(k8s, manifests["Cluster"]) is None)
    made_for_it = [
        (CAPI, "MachineDeployment"),
        (CAPI, "MachineSet"),
        (CAPI, "Machine"),
        (KCP, "KamajiControlPlane"),
        (KAMAJI, "TenantControlPlane"),
        (INFRA, "KubevirtCluster"),
        (INFRA, "KubevirtMachineTemplate"),
        ("bootstrap.cluster.x-k8s.io/v1beta2", "KubeadmConfigTemplate"),
        ("v1", "Secret"),
        ("v1", "Service"),
    ]
    wait_for(lambda: not any(k8s.list(api, kind, k8s_namespace).items for api, kind in made_for_it))


def test_a_paused_cluster_says_so_and_waits_until_unpaused(
    k8s: KubeClient, k8s_namespace: str, address_pool: Manifest, simulator: Simulator
) -> None:
    manifests = cluster_manifests(k8s_namespace)
    manifests["Cluster"]["spec"]["paused"] = True
    for manifest in manifests.values():
        k8s.apply(manifest)

    paused = reach(k8s, manifests["Cluster"], lambda c: is_true(c, "Paused"))

    assert status(paused, "phase") is None
    # Nothing was adopted, so the control-plane provider did not start either (§10.4 step 1).
    assert get(k8s, KAMAJI, "TenantControlPlane", "demo", k8s_namespace) is None

    manifests["Cluster"]["spec"]["paused"] = False
    k8s.apply(manifests["Cluster"])
    resumed = reach(k8s, manifests["Cluster"], lambda c: is_true(c, "Available"))
    assert condition(resumed, "Paused")["reason"] == "NotPaused"
