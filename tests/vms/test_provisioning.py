"""Provisioning, restart, exposure and deletion against the real API server (tasks run on
commit, eagerly)."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import yaml
from django.utils import timezone

from butler_portal.kube.adapter import KubeClient
from butler_portal.kube.errors import NotFound
from tenants.audit import Actor
from tenants.models import AuditEvent, LoadBalancerRange, Tenant, User
from tenants.selectors import quota_used
from tests.provisioning_support import (
    admission_policy,
    onboarded_tenant,
    stray_object,
    wait_until_policy,
)
from tests.vms.conftest import add_key, create, ensure_vm_catalog, instance_type
from vms.models import VirtualMachine, VMService
from vms.provisioning import vm_restart_instance, vm_teardown
from vms.services import vm_delete, vm_expose, vm_restart, vm_unexpose
from vms.spec import PortSpec

pytestmark = [pytest.mark.k8s, pytest.mark.django_db(transaction=True)]

VM_API = "kubevirt.io/v1"
LIMITS = {"vms": 3, "vcpu": 16, "memory_mib": 32768, "storage_gib": 200, "load_balancer_ips": 2}


@pytest.fixture
def operator() -> User:
    return User.objects.create_user("op", password="x", platform_role="operator")


@pytest.fixture
def tenant(portal_k8s: KubeClient, address_space: LoadBalancerRange, operator: User) -> Tenant:
    """A tenant onboarded for real: its namespace, quota and network exist in Kubernetes."""
    ensure_vm_catalog()
    return onboarded_tenant(operator, "vms", LIMITS)


def namespace_of(tenant: Tenant) -> str:
    return f"tenant-{tenant.slug}"


def get(client: KubeClient, api_version: str, kind: str, name: str, namespace: str) -> Any:
    try:
        return client.get(api_version, kind, name, namespace)
    except NotFound:
        return None


def test_a_request_applies_the_secret_and_the_vm_in_the_tenant_namespace(
    portal_k8s: KubeClient, tenant: Tenant, operator: User
) -> None:
    key = add_key(operator)

    vm = create(tenant, operator, "web", ssh_keys=[key], user_data="packages: [nginx]\n")

    vm.refresh_from_db()
    namespace = namespace_of(tenant)
    assert vm.applied_at is not None
    assert (vm.state, vm.reason) == (
        "provisioning",
        "Waiting for KubeVirt to pick up the virtual machine.",
    )
    applied = portal_k8s.get(VM_API, "VirtualMachine", "web", namespace)
    assert applied["metadata"]["labels"]["butler.io/vm"] == "web"
    assert applied["spec"]["runStrategy"] == "Always"
    secret = portal_k8s.get("v1", "Secret", "web-cloudinit", namespace)
    user_data = base64.b64decode(secret["data"]["userdata"]).decode()
    assert user_data.startswith("#cloud-config\n")
    assert yaml.safe_load(user_data) == {
        "hostname": "web",
        "user": "ubuntu",
        "packages": ["nginx"],
        "ssh_authorized_keys": [key.public_key],
    }
    assert get(portal_k8s, "v1", "Service", "web", namespace) is None


def test_exposing_applies_a_load_balancer_and_withdrawing_removes_it(
    portal_k8s: KubeClient, tenant: Tenant, operator: User
) -> None:
    vm = create(tenant, operator, "web")
    namespace = namespace_of(tenant)

    vm_expose(actor=Actor(operator), vm=vm, ports=[PortSpec("TCP", 22, 22)])

    service = portal_k8s.get("v1", "Service", "web", namespace)
    assert service["metadata"]["annotations"]["metallb.io/address-pool"] == namespace
    assert service["spec"]["selector"] == {"butler.io/vm": "web"}
    exposure = VMService.objects.get(vm=vm)
    assert (exposure.state, quota_used(tenant)["load_balancer_ips"]) == ("waiting", 1)

    vm_unexpose(actor=Actor(operator), vm=vm)

    # A bare API server deletes a Service at once: the address is back in the quota.
    assert get(portal_k8s, "v1", "Service", "web", namespace) is None
    assert not VMService.objects.filter(vm=vm).exists()
    assert quota_used(tenant)["load_balancer_ips"] == 0


@pytest.fixture
def two_vcpu_limit(portal_k8s: KubeClient, tenant: Tenant) -> Iterator[None]:
    """VMs of at most 2 vCPU in the tenant's namespace."""
    with admission_policy(
        portal_k8s,
        tenant,
        resource="kubevirt.io/virtualmachines",
        expression="object.spec.template.spec.domain.cpu.cores <= 2",
        message="at most 2 vCPU per VM here",
    ):
        wait_until_policy(
            portal_k8s,
            {
                "apiVersion": VM_API,
                "kind": "VirtualMachine",
                "metadata": {"name": "policy-probe", "namespace": namespace_of(tenant)},
                "spec": {
                    "runStrategy": "Halted",
                    "template": {"spec": {"domain": {"cpu": {"cores": 8}, "devices": {}}}},
                },
            },
            enforced=True,
        )
        yield


@pytest.fixture
def no_telnet(portal_k8s: KubeClient, tenant: Tenant) -> Iterator[None]:
    """No Service may publish port 23 in the tenant's namespace."""
    with admission_policy(
        portal_k8s,
        tenant,
        resource="/services",
        expression="object.spec.ports.all(p, p.port != 23)",
        message="telnet is not allowed here",
    ):
        wait_until_policy(
            portal_k8s,
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": "policy-probe", "namespace": namespace_of(tenant)},
                "spec": {"ports": [{"port": 23}]},
            },
            enforced=True,
        )
        yield


def test_kubernetes_refusing_the_vm_fails_it_with_its_words_and_frees_the_quota(
    portal_k8s: KubeClient, tenant: Tenant, operator: User, two_vcpu_limit: None
) -> None:
    vm = create(tenant, operator, "big", instance_type=instance_type("m1.large"))

    vm.refresh_from_db()
    assert vm.state == "failed"
    # The operators' policy says why, in their words; Kubernetes' own are one click away.
    assert vm.reason == "A rule of the platform refused it: at most 2 vCPU per VM here."
    assert vm.reason_raw.startswith("Kubernetes rejected VirtualMachine big: ")
    assert quota_used(tenant)["vms"] == 0
    assert quota_used(tenant)["vcpu"] == 0
    failure = AuditEvent.objects.get(object_type="virtualmachine", action="fail")
    assert failure.actor is None
    assert failure.changes == {"reason": vm.apply_error}
    # A small one still goes through.
    small = create(tenant, operator, "small")
    small.refresh_from_db()
    assert small.state == "provisioning"


def test_kubernetes_refusing_the_service_fails_the_exposure_not_the_vm(
    portal_k8s: KubeClient, tenant: Tenant, operator: User, no_telnet: None
) -> None:
    vm = create(tenant, operator, "web")

    vm_expose(actor=Actor(operator), vm=vm, ports=[PortSpec("TCP", 23, 23)])

    exposure = VMService.objects.get(vm=vm)
    assert exposure.state == "failed"
    assert exposure.message.startswith("Kubernetes rejected Service web: ")
    assert "telnet is not allowed here" in exposure.message
    assert quota_used(tenant)["load_balancer_ips"] == 0
    vm.refresh_from_db()
    assert (vm.state, vm.apply_error) == ("provisioning", "")
    # Asked again with another port, it takes its address again and goes through.
    vm_expose(actor=Actor(operator), vm=vm, ports=[PortSpec("TCP", 22, 22)])
    exposure.refresh_from_db()
    assert exposure.state == "failed"  # 23 is still asked for
    vm_unexpose(actor=Actor(operator), vm=vm, ports=[("TCP", 23)])
    exposure.refresh_from_db()
    assert (exposure.state, quota_used(tenant)["load_balancer_ips"]) == ("waiting", 1)
    service = portal_k8s.get("v1", "Service", "web", namespace_of(tenant))
    assert [(p["name"], p["port"], p["targetPort"]) for p in service["spec"]["ports"]] == [
        ("tcp-22", 22, 22)
    ]


def _hold(client: KubeClient, manifest: dict[str, Any], finalizers: list[str]) -> None:
    """Set finalizers as another controller would (its own field manager)."""
    client.apply(
        {
            "apiVersion": manifest["apiVersion"],
            "kind": manifest["kind"],
            "metadata": {
                "name": manifest["metadata"]["name"],
                "namespace": manifest["metadata"]["namespace"],
                "finalizers": finalizers,
            },
        },
        field_manager="test-controller",
    )


def test_deleting_releases_the_quota_only_once_kubernetes_let_go(
    portal_k8s: KubeClient, tenant: Tenant, operator: User
) -> None:
    vm = create(tenant, operator, "gone")
    vm_expose(actor=Actor(operator), vm=vm, ports=[PortSpec("TCP", 22, 22)])
    namespace = namespace_of(tenant)
    # What KubeVirt would hold: the VM (its finalizer) and the root disk CDI made from the
    # VM's template.
    vm_object = portal_k8s.get(VM_API, "VirtualMachine", "gone", namespace)
    _hold(portal_k8s, vm_object, ["kubevirt.io/virtualMachineControllerFinalize"])
    portal_k8s.apply(
        {
            "apiVersion": "cdi.kubevirt.io/v1beta1",
            "kind": "DataVolume",
            "metadata": {
                "name": "gone-rootdisk",
                "namespace": namespace,
                "labels": {"butler.io/tenant": tenant.slug, "butler.io/vm": "gone"},
            },
            "spec": vm_object["spec"]["dataVolumeTemplates"][0]["spec"],
        }
    )

    assert vm_delete(actor=Actor(operator), vm=vm, confirm_name="gone") is False

    vm.refresh_from_db()
    assert (vm.state, vm.reason) == (
        "deleting",
        "KubeVirt is stopping the guest and deleting the virtual machine.",
    )
    assert quota_used(tenant)["vms"] == 1
    assert quota_used(tenant)["load_balancer_ips"] == 1
    assert get(portal_k8s, "v1", "Service", "gone", namespace) is None
    assert get(portal_k8s, "v1", "Secret", "gone-cloudinit", namespace) is None
    assert get(portal_k8s, "cdi.kubevirt.io/v1beta1", "DataVolume", "gone-rootdisk", namespace)

    _hold(portal_k8s, vm_object, [])  # KubeVirt stopped the guest and let go
    assert vm_teardown(vm_id=vm.pk) is True  # what the watcher's DELETED event triggers

    assert get(portal_k8s, VM_API, "VirtualMachine", "gone", namespace) is None
    assert (
        get(portal_k8s, "cdi.kubevirt.io/v1beta1", "DataVolume", "gone-rootdisk", namespace) is None
    )
    assert not VirtualMachine.objects.filter(pk=vm.pk).exists()
    assert quota_used(tenant)["vms"] == 0
    assert quota_used(tenant)["load_balancer_ips"] == 0
    assert list(
        AuditEvent.objects.filter(object_type="virtualmachine", object_id=str(vm.pk))
        .order_by("id")
        .values_list("action", flat=True)
    ) == ["create", "expose", "delete", "delete_complete"]


def _instance(name: str, namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": VM_API,
        "kind": "VirtualMachineInstance",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"domain": {"devices": {}, "memory": {"guest": "1Gi"}}},
    }


def test_a_restart_replaces_the_instance_that_ran_when_it_was_asked_for(
    portal_k8s: KubeClient, tenant: Tenant, operator: User
) -> None:
    vm = create(tenant, operator, "web")
    namespace = namespace_of(tenant)
    portal_k8s.apply(_instance("web", namespace))
    VirtualMachine.objects.filter(pk=vm.pk).update(
        state="running", printable_status="Running", ready=True
    )
    vm.refresh_from_db()
    time.sleep(1.1)  # creationTimestamp has a one-second resolution

    vm_restart(actor=Actor(operator), vm=vm)

    assert get(portal_k8s, VM_API, "VirtualMachineInstance", "web", namespace) is None
    vm.refresh_from_db()
    assert vm.restart_requested_at is None
    # KubeVirt starts a new one; a late retry of an older restart leaves it alone.
    portal_k8s.apply(_instance("web", namespace))
    VirtualMachine.objects.filter(pk=vm.pk).update(
        restart_requested_at=timezone.now() - timedelta(hours=1)
    )
    vm_restart_instance(vm_id=vm.pk)
    assert get(portal_k8s, VM_API, "VirtualMachineInstance", "web", namespace) is not None


def test_the_reconcile_puts_back_what_went_missing_and_reports_orphans(
    portal_k8s: KubeClient, tenant: Tenant, operator: User
) -> None:
    from butler_portal.watcher.drift import drift_report, reconcile
    from vms.status import drift_checks

    create(tenant, operator, "kept")
    namespace = namespace_of(tenant)
    portal_k8s.delete("v1", "Secret", "kept-cloudinit", namespace)
    stray = stray_object(
        "v1", "Secret", "forgotten-cloudinit", tenant, {"butler.io/vm": "forgotten"}
    )
    portal_k8s.apply(stray)

    report = drift_report(portal_k8s, drift_checks()).as_dict()
    ours = [m for m in report["missing"] if m["owner"] == f"vm {tenant.slug}/kept"]
    assert ours == [
        {
            "check": "vms",
            "owner": f"vm {tenant.slug}/kept",
            "objects": [f"Secret.v1 {namespace}/kept-cloudinit"],
        }
    ]
    assert {
        "check": "vms",
        "object": f"Secret.v1 {namespace}/forgotten-cloudinit",
        "reason": f"vm {tenant.slug}/forgotten no longer exists",
    } in report["orphans"]

    reconcile(portal_k8s, drift_checks())

    assert portal_k8s.get("v1", "Secret", "kept-cloudinit", namespace)
    portal_k8s.delete_manifest(stray)
