"""Cluster manifests: their shapes (pure), and the real API server accepting every one."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from butler_portal.kube.adapter import KubeClient
from clusters.manifests import (
    AddonPlan,
    ClusterPlan,
    addon_manifests,
    cluster_manifests,
    machine_template_name,
)

CILIUM = AddonPlan(
    name="cilium",
    repository_url="https://helm.cilium.io/",
    chart="cilium",
    version="1.17.x",
    values={"kubeProxyReplacement": False},
    target_namespace="kube-system",
)
FROM_OCI = AddonPlan(
    name="podinfo",
    repository_url="oci://ghcr.io/stefanprodan/charts",
    chart="podinfo",
    version="6.x",
    values={},
    target_namespace="apps",
)
PLAN = ClusterPlan(
    tenant_slug="acme",
    namespace="tenant-acme",
    name="demo",
    version="v1.35.4",
    worker_version="v1.35.4",
    control_plane_replicas=2,
    worker_count=3,
    hibernated=False,
    worker_vcpu=4,
    worker_memory_mib=8192,
    worker_disk_gib=40,
    node_image="quay.io/capk/ubuntu-2404-container-disk:v1.35.4",
    address_pool="tenant-acme",
    pod_cidr="10.244.0.0/16",
    service_cidr="10.96.0.0/16",
    dns_domain="cluster.local",
    storage_class="linstor-r2",
    datastore="default",
    addons=(CILIUM, FROM_OCI),
)


def by_kind(plan: ClusterPlan) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for manifest in cluster_manifests(plan):
        found.setdefault(manifest["kind"], manifest)
    return found


def test_every_object_is_in_the_tenant_namespace_and_labelled_with_its_cluster() -> None:
    manifests = cluster_manifests(PLAN)

    assert [(m["kind"], m["metadata"]["name"]) for m in manifests] == [
        ("Cluster", "demo"),
        ("KamajiControlPlane", "demo"),
        ("KubevirtCluster", "demo"),
        ("KubevirtMachineTemplate", machine_template_name(PLAN)),
        ("KubeadmConfigTemplate", "demo-md-0"),
        ("MachineDeployment", "demo-md-0"),
        ("HelmRepository", "demo-cilium"),
        ("HelmRelease", "demo-cilium"),
        ("HelmRepository", "demo-podinfo"),
        ("HelmRelease", "demo-podinfo"),
    ]
    for manifest in manifests:
        labels = manifest["metadata"]["labels"]
        assert manifest["metadata"]["namespace"] == "tenant-acme"
        assert labels["app.kubernetes.io/managed-by"] == "butler-portal"
        assert labels["butler.io/tenant"] == "acme"
        assert labels["butler.io/cluster"] == "demo"


def test_the_cluster_references_its_parts_the_v1beta2_way() -> None:
    cluster = by_kind(PLAN)["Cluster"]

    assert cluster["apiVersion"] == "cluster.x-k8s.io/v1beta2"
    assert cluster["spec"]["controlPlaneRef"] == {
        "apiGroup": "controlplane.cluster.x-k8s.io",
        "kind": "KamajiControlPlane",
        "name": "demo",
    }
    assert cluster["spec"]["infrastructureRef"] == {
        "apiGroup": "infrastructure.cluster.x-k8s.io",
        "kind": "KubevirtCluster",
        "name": "demo",
    }
    assert cluster["spec"]["clusterNetwork"] == {
        "pods": {"cidrBlocks": ["10.244.0.0/16"]},
        "services": {"cidrBlocks": ["10.96.0.0/16"]},
        "serviceDomain": "cluster.local",
    }


def test_the_control_plane_takes_its_address_from_the_tenants_pool() -> None:
    spec = by_kind(PLAN)["KamajiControlPlane"]["spec"]

    assert (spec["version"], spec["replicas"], spec["dataStoreName"]) == ("v1.35.4", 2, "default")
    assert spec["network"] == {
        "serviceType": "LoadBalancer",
        "serviceAnnotations": {"metallb.io/address-pool": "tenant-acme"},
    }
    assert set(spec["addons"]) == {"coreDNS", "kubeProxy", "konnectivity"}
    assert "dataStoreName" not in by_kind(replace(PLAN, datastore=""))["KamajiControlPlane"]["spec"]


def test_the_infrastructure_cluster_is_left_to_the_kamaji_provider() -> None:
    infrastructure = by_kind(PLAN)["KubevirtCluster"]

    assert infrastructure["metadata"]["annotations"] == {"cluster.x-k8s.io/managed-by": "kamaji"}
    assert infrastructure["spec"] == {}


def test_workers_are_vms_of_the_instance_type_with_a_root_disk_on_the_tenant_network() -> None:
    template = by_kind(PLAN)["KubevirtMachineTemplate"]["spec"]["template"]["spec"]
    vm = template["virtualMachineTemplate"]["spec"]
    domain = vm["template"]["spec"]["domain"]

    assert template["virtualMachineBootstrapCheck"] == {"checkStrategy": "none"}
    assert (domain["cpu"], domain["memory"]) == ({"cores": 4}, {"guest": "8192Mi"})
    assert vm["dataVolumeTemplates"] == [
        {
            "metadata": {"name": "root"},
            "spec": {
                "source": {
                    "registry": {"url": "docker://quay.io/capk/ubuntu-2404-container-disk:v1.35.4"}
                },
                "storage": {
                    "resources": {"requests": {"storage": "40Gi"}},
                    "storageClassName": "linstor-r2",
                },
            },
        }
    ]
    assert vm["template"]["spec"]["volumes"] == [{"name": "root", "dataVolume": {"name": "root"}}]
    assert vm["template"]["spec"]["networks"] == [{"name": "default", "pod": {}}]
    assert template["virtualMachineTemplate"]["metadata"]["namespace"] == "tenant-acme"
    no_class = by_kind(replace(PLAN, storage_class=""))["KubevirtMachineTemplate"]
    root_disk = no_class["spec"]["template"]["spec"]["virtualMachineTemplate"]["spec"]
    assert "storageClassName" not in root_disk["dataVolumeTemplates"][0]["spec"]["storage"]


def test_a_new_boot_image_gets_a_new_template_and_nothing_else_does() -> None:
    upgraded = replace(
        PLAN,
        worker_version="v1.36.3",
        node_image="quay.io/capk/ubuntu-2404-container-disk:v1.36.3",
    )

    assert machine_template_name(upgraded) != machine_template_name(PLAN)
    assert machine_template_name(PLAN).startswith("demo-md-0-")
    for same in (
        replace(PLAN, worker_count=7),
        replace(PLAN, hibernated=True),
        replace(PLAN, version="v1.36.3"),
    ):
        assert machine_template_name(same) == machine_template_name(PLAN)


def test_the_worker_pool_points_at_its_templates_and_matches_its_machines() -> None:
    deployment = by_kind(PLAN)["MachineDeployment"]
    spec = deployment["spec"]

    assert (spec["clusterName"], spec["replicas"]) == ("demo", 3)
    assert spec["template"]["spec"]["version"] == "v1.35.4"
    assert spec["template"]["spec"]["infrastructureRef"] == {
        "apiGroup": "infrastructure.cluster.x-k8s.io",
        "kind": "KubevirtMachineTemplate",
        "name": machine_template_name(PLAN),
    }
    assert spec["template"]["spec"]["bootstrap"]["configRef"]["name"] == "demo-md-0"
    selector = spec["selector"]["matchLabels"]
    assert selector.items() <= spec["template"]["metadata"]["labels"].items()
    # Machines inherit the portal's labels, so the watcher can find their cluster.
    assert spec["template"]["metadata"]["labels"]["butler.io/cluster"] == "demo"
    assert spec["rollout"]["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}


def test_hibernation_scales_control_plane_and_workers_to_zero_and_pauses_add_ons() -> None:
    asleep = by_kind(replace(PLAN, hibernated=True))

    assert asleep["KamajiControlPlane"]["spec"]["replicas"] == 0
    assert asleep["MachineDeployment"]["spec"]["replicas"] == 0
    assert asleep["HelmRelease"]["spec"]["suspend"] is True
    assert by_kind(PLAN)["HelmRelease"]["spec"]["suspend"] is False


def test_add_ons_install_into_the_tenant_cluster_through_its_kubeconfig_secret() -> None:
    repository, release, oci_repository, _ = addon_manifests(PLAN)

    assert repository["spec"] == {"url": "https://helm.cilium.io/", "interval": "1h"}
    assert oci_repository["spec"]["type"] == "oci"
    assert release["spec"]["kubeConfig"] == {
        "secretRef": {"name": "demo-kubeconfig", "key": "value"}
    }
    assert release["spec"]["chart"]["spec"] == {
        "chart": "cilium",
        "version": "1.17.x",
        "sourceRef": {"kind": "HelmRepository", "name": "demo-cilium"},
    }
    assert (release["spec"]["targetNamespace"], release["spec"]["releaseName"]) == (
        "kube-system",
        "cilium",
    )
    assert release["spec"]["values"] == {"kubeProxyReplacement": False}
    assert release["metadata"]["labels"]["butler.io/addon"] == "cilium"


@pytest.mark.k8s
@pytest.mark.django_db
def test_the_api_server_accepts_every_manifest_and_every_day_two_change(
    k8s: KubeClient, k8s_namespace: str
) -> None:
    """Strict field validation, the CRD schemas and their CEL rules all say yes."""
    from clusters.models import ClusterAddon
    from clusters.provisioning import addon_plan
    from clusters.seed import seed_catalog

    seed_catalog()
    seeded = tuple(addon_plan(addon) for addon in ClusterAddon.objects.all())
    plan = replace(PLAN, namespace=k8s_namespace, addons=(*seeded, FROM_OCI))
    day_two = [
        plan,
        replace(plan, worker_count=5),
        replace(plan, version="v1.36.3"),
        replace(
            plan,
            version="v1.36.3",
            worker_version="v1.36.3",
            node_image="quay.io/capk/ubuntu-2404-container-disk:v1.36.3",
        ),
        replace(plan, hibernated=True, storage_class="", datastore=""),
    ]

    for variant in day_two:
        for manifest in cluster_manifests(variant):
            k8s.apply(manifest)

    stored = k8s.get("cluster.x-k8s.io/v1beta2", "MachineDeployment", "demo-md-0", k8s_namespace)
    assert stored["spec"]["replicas"] == 0
    assert stored["spec"]["template"]["spec"]["infrastructureRef"]["name"] == machine_template_name(
        day_two[-1]
    )
    kcp = k8s.get(
        "controlplane.cluster.x-k8s.io/v1alpha2", "KamajiControlPlane", "demo", k8s_namespace
    )
    # Server-side apply removed the DataStore the last plan no longer names.
    assert (kcp["spec"]["replicas"], "dataStoreName" in kcp["spec"]) == (0, False)
    templates = k8s.list(
        "infrastructure.cluster.x-k8s.io/v1alpha1", "KubevirtMachineTemplate", k8s_namespace
    ).items
    assert len(templates) == 3  # the first, the upgraded one, and one without a storage class
