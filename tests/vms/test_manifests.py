"""The VM's manifests: pure unit checks, then applied to the real API server with the upstream
CRDs (strict field validation: an unknown or mistyped field is a 422)."""

from __future__ import annotations

import base64
import uuid
from dataclasses import replace

import pytest
import yaml

from butler_portal.kube.adapter import KubeClient
from tenants.audit import Actor
from tenants.models import LoadBalancerRange, Tenant, User
from tenants.services import tenant_create
from tests.vms.conftest import add_key, ensure_vm_catalog, image, make_vm_row
from vms.cloudinit import render_user_data
from vms.manifests import (
    PortPlan,
    VMPlan,
    cloud_init_secret_manifest,
    disk_source,
    service_manifest,
    virtual_machine_manifest,
    vm_manifests,
)
from vms.provisioning import vm_plan

PLAN = VMPlan(
    tenant_slug="acme",
    namespace="tenant-acme",
    name="web",
    run_strategy="Always",
    vcpu=2,
    memory_mib=4096,
    disk_gib=30,
    storage_class="linstor-replicated",
    image_source_kind="container-disk",
    image_source="quay.io/containerdisks/ubuntu:24.04",
    user_data="#cloud-config\nhostname: web\n",
    address_pool="tenant-acme",
)
LABELS = {
    "app.kubernetes.io/managed-by": "butler-portal",
    "butler.io/tenant": "acme",
    "butler.io/vm": "web",
}


def test_the_vm_has_a_root_disk_template_from_the_image_in_the_storage_class() -> None:
    vm = virtual_machine_manifest(PLAN)

    assert (vm["apiVersion"], vm["kind"], vm["metadata"]) == (
        "kubevirt.io/v1",
        "VirtualMachine",
        {"name": "web", "namespace": "tenant-acme", "labels": LABELS},
    )
    assert vm["spec"]["runStrategy"] == "Always"
    assert "running" not in vm["spec"]  # never both (STATUS.md §3)
    (template,) = vm["spec"]["dataVolumeTemplates"]
    assert template["metadata"] == {"name": "web-rootdisk", "labels": LABELS}
    assert template["spec"] == {
        "source": {
            "registry": {
                "url": "docker://quay.io/containerdisks/ubuntu:24.04",
                "pullMethod": "node",
            }
        },
        "storage": {
            "resources": {"requests": {"storage": "30Gi"}},
            "storageClassName": "linstor-replicated",
        },
    }


def test_the_vm_template_sizes_the_guest_and_reads_cloud_init_from_the_secret() -> None:
    template = virtual_machine_manifest(PLAN)["spec"]["template"]
    spec = template["spec"]

    assert template["metadata"]["labels"] == LABELS  # the launcher pod carries them
    assert spec["domain"]["cpu"] == {"cores": 2, "sockets": 1, "threads": 1}
    assert spec["domain"]["memory"] == {"guest": "4096Mi"}
    assert spec["domain"]["devices"]["interfaces"] == [{"name": "default", "masquerade": {}}]
    assert spec["networks"] == [{"name": "default", "pod": {}}]
    assert spec["volumes"] == [
        {"name": "rootdisk", "dataVolume": {"name": "web-rootdisk"}},
        {
            "name": "cloudinitdisk",
            "cloudInitNoCloud": {"secretRef": {"name": "web-cloudinit"}},
        },
    ]
    # The user data itself is not in the VM object.
    assert "#cloud-config" not in yaml.safe_dump(virtual_machine_manifest(PLAN))


def test_the_secret_carries_the_user_data() -> None:
    secret = cloud_init_secret_manifest(PLAN)

    assert secret["metadata"] == {
        "name": "web-cloudinit",
        "namespace": "tenant-acme",
        "labels": LABELS,
    }
    assert base64.b64decode(secret["data"]["userdata"]).decode() == PLAN.user_data


@pytest.mark.parametrize(
    ("kind", "source", "expected"),
    [
        ("http", "https://example.test/d.qcow2", {"http": {"url": "https://example.test/d.qcow2"}}),
        (
            "registry",
            "registry.example.test/disks/alma:9",
            {
                "registry": {
                    "url": "docker://registry.example.test/disks/alma:9",
                    "pullMethod": "pod",
                }
            },
        ),
        (
            "container-disk",
            "docker://quay.io/containerdisks/fedora:41",
            {
                "registry": {
                    "url": "docker://quay.io/containerdisks/fedora:41",
                    "pullMethod": "node",
                }
            },
        ),
    ],
)
def test_each_image_source_kind_becomes_its_cdi_source(
    kind: str, source: str, expected: dict[str, object]
) -> None:
    assert disk_source(kind, source) == expected


def test_no_ports_no_service_and_exposed_ports_make_a_load_balancer_in_the_tenant_pool() -> None:
    exposed = replace(PLAN, ports=(PortPlan(22, 22, "TCP"), PortPlan(8443, 443, "TCP")))

    assert [m["kind"] for m in vm_manifests(PLAN)] == ["Secret", "VirtualMachine"]
    assert [m["kind"] for m in vm_manifests(exposed)] == ["Secret", "VirtualMachine", "Service"]
    service = service_manifest(exposed)
    assert service["metadata"]["annotations"] == {"metallb.io/address-pool": "tenant-acme"}
    assert service["spec"] == {
        "type": "LoadBalancer",
        "selector": {"butler.io/vm": "web"},
        "ports": [
            {"name": "tcp-22", "port": 22, "targetPort": 22, "protocol": "TCP"},
            {"name": "tcp-8443", "port": 8443, "targetPort": 443, "protocol": "TCP"},
        ],
    }


def test_the_plan_merges_the_keys_and_the_tenants_cloud_config(acme: Tenant, alice: User) -> None:
    ensure_vm_catalog()
    key = add_key(alice)
    vm = make_vm_row(acme, name="db", authorized_keys=[key.public_key])
    from vms.crypto import encrypt

    vm.user_data_encrypted = encrypt(
        "packages: [postgresql]\nssh_authorized_keys: [ssh-ed25519 AAAA extra]\n"
    )
    vm.save()

    plan = vm_plan(vm)

    assert plan.namespace == "tenant-acme"  # no network row: the namespace by convention
    assert yaml.safe_load(plan.user_data) == {
        "hostname": "db",
        "user": "ubuntu",
        "packages": ["postgresql"],
        "ssh_authorized_keys": [key.public_key, "ssh-ed25519 AAAA extra"],
    }
    assert plan.user_data.startswith("#cloud-config\n")
    assert plan.user_data == render_user_data(
        hostname="db",
        login_user="ubuntu",
        authorized_keys=[key.public_key],
        user_data={"packages": ["postgresql"], "ssh_authorized_keys": ["ssh-ed25519 AAAA extra"]},
    )
    assert (plan.vcpu, plan.memory_mib, plan.storage_class) == (1, 2048, "linstor-replicated")
    assert (plan.image_source_kind, plan.image_source) == ("container-disk", image().source)


# --- Against the real API server --------------------------------------------------------------


@pytest.mark.k8s
@pytest.mark.django_db(transaction=True)
def test_every_manifest_is_accepted_by_the_api_server_in_an_onboarded_tenant(
    portal_k8s: KubeClient, address_space: LoadBalancerRange
) -> None:
    operator = User.objects.create_user("op", password="x", platform_role="operator")
    slug = f"man-{uuid.uuid4().hex[:6]}"
    tenant = tenant_create(
        actor=Actor(operator), slug=slug, name=slug, limits={"vms": 2, "load_balancer_ips": 2}
    )
    plan = replace(
        PLAN,
        tenant_slug=slug,
        namespace=f"tenant-{slug}",
        address_pool=f"tenant-{slug}",
        ports=(PortPlan(22, 22, "TCP"), PortPlan(53, 53, "UDP")),
    )

    applied = [portal_k8s.apply(manifest) for manifest in vm_manifests(plan)]

    assert [obj["kind"] for obj in applied] == ["Secret", "VirtualMachine", "Service"]
    vm = portal_k8s.get("kubevirt.io/v1", "VirtualMachine", "web", plan.namespace)
    assert vm["spec"]["dataVolumeTemplates"][0]["spec"]["storage"]["storageClassName"] == (
        "linstor-replicated"
    )
    assert vm["spec"]["template"]["spec"]["volumes"][1]["cloudInitNoCloud"] == {
        "secretRef": {"name": "web-cloudinit"}
    }
    service = portal_k8s.get("v1", "Service", "web", plan.namespace)
    assert service["spec"]["type"] == "LoadBalancer"
    # The tenant's onboarding made the pool the Service names.
    pool = portal_k8s.get(
        "metallb.io/v1beta1", "IPAddressPool", plan.address_pool, "metallb-system"
    )
    assert pool["spec"]["serviceAllocation"]["namespaces"] == [plan.namespace]
    assert tenant.network.namespace == plan.namespace
