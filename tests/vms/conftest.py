"""Fixtures for VM tests: the seeded catalog, real SSH keys, VM rows, STATUS.md-shaped objects."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from pytest_django.fixtures import Settings as SettingsWrapper

from clusters.models import InstanceType
from clusters.seed import seed_catalog
from tenants.audit import Actor
from tenants.models import Tenant, User
from tests.clusters.conftest import published_events
from vms.models import RunStrategy, SSHKey, StorageClass, VirtualMachine, VMImage
from vms.seed import seed_vm_catalog
from vms.services import ssh_key_create, vm_create
from vms.spec import VMSpec
from vms.status import vm_refresh

__all__ = ["published_events"]

vm_numbers = itertools.count(1)


@pytest.fixture(autouse=True)
def _kubernetes_off_unless_asked(settings: SettingsWrapper) -> None:
    """No API server unless a test asks for one (``portal_k8s`` switches it on after this)."""
    settings.KUBE_MODE = "off"


def ensure_vm_catalog() -> None:
    """Instance types (the clusters' catalog) and the VM catalog, seeded once per test."""
    if not InstanceType.objects.exists():
        seed_catalog()
    if not VMImage.objects.exists():
        seed_vm_catalog()


@pytest.fixture
def vm_catalog(db: None) -> None:
    ensure_vm_catalog()


def image(name: str = "ubuntu-24.04") -> VMImage:
    return VMImage.objects.get(name=name)


def instance_type(name: str = "m1.small") -> InstanceType:
    return InstanceType.objects.get(name=name)


def storage_class(name: str = "linstor") -> StorageClass:
    return StorageClass.objects.get(name=name)


def public_key_line(comment: str = "someone@laptop") -> str:
    """A fresh, real Ed25519 public key."""
    key = ed25519.Ed25519PrivateKey.generate().public_key()
    data = key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return f"{data.decode()} {comment}"


def add_key(user: User, name: str = "laptop") -> SSHKey:
    return ssh_key_create(actor=Actor(user), name=name, public_key=public_key_line(f"{name}@x"))


def spec(name: str = "web", **fields: Any) -> VMSpec:
    return VMSpec(
        name=name,
        image=fields.pop("image", None) or image(),
        instance_type=fields.pop("instance_type", None) or instance_type(),
        storage_class=fields.pop("storage_class", None) or storage_class(),
        disk_gib=fields.pop("disk_gib", 20),
        **fields,
    )


def create(tenant: Tenant, user: User, name: str = "web", **fields: Any) -> VirtualMachine:
    """Ask for a VM through the service, as the API and the UI do."""
    return vm_create(actor=Actor(user), tenant=tenant, spec=spec(name, **fields))


def make_vm_row(tenant: Tenant, **fields: Any) -> VirtualMachine:
    """A VM row as it stands in the database, without going through provisioning.

    For tests about reading and permissions; tests about requesting use ``create``.
    """
    ensure_vm_catalog()
    vm = VirtualMachine.objects.create(
        tenant=tenant,
        name=fields.pop("name", f"vm-{next(vm_numbers)}"),
        image=fields.pop("image", None) or image(),
        instance_type=fields.pop("instance_type", None) or instance_type(),
        storage_class=fields.pop("storage_class", None) or storage_class(),
        disk_gib=fields.pop("disk_gib", 20),
        **fields,
    )
    vm_refresh(vm)
    return vm


# --- Objects shaped as STATUS.md describes them ---------------------------------------------


def condition(
    kind: str, status: str = "True", reason: str = "", message: str = ""
) -> dict[str, str]:
    return {
        "type": kind,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": "2026-11-26T10:00:00Z",
    }


def _metadata(name: str, vm: str, namespace: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": namespace,
        "generation": 1,
        "labels": {
            "app.kubernetes.io/managed-by": "butler-portal",
            "butler.io/tenant": namespace.removeprefix("tenant-"),
            "butler.io/vm": vm,
        },
        **extra,
    }


def virtual_machine_obj(
    name: str = "web",
    *,
    printable: str = "Running",
    ready: bool = True,
    conditions: list[dict[str, str]] | None = None,
    run_strategy: str = "Always",
    namespace: str = "tenant-acme",
    **status: Any,
) -> dict[str, Any]:
    """A KubeVirt VirtualMachine (§3)."""
    return {
        "apiVersion": "kubevirt.io/v1",
        "kind": "VirtualMachine",
        "metadata": _metadata(name, name, namespace),
        "spec": {"runStrategy": run_strategy},
        "status": {
            "printableStatus": printable,
            "ready": ready,
            "created": printable in {"Running", "Starting", "Stopping", "Migrating"},
            "runStrategy": run_strategy,
            "conditions": conditions
            if conditions is not None
            else [condition("Ready", "True" if ready else "False")],
            **status,
        },
    }


def instance_obj(
    name: str = "web",
    *,
    phase: str = "Running",
    node: str = "node-1",
    addresses: tuple[str, ...] = ("10.200.1.14",),
    created: str = "2026-11-26T10:00:00Z",
    namespace: str = "tenant-acme",
) -> dict[str, Any]:
    """A VirtualMachineInstance (§4), its addresses in ``status.interfaces``."""
    interfaces = (
        [
            {
                "name": "default",
                "ipAddress": addresses[0],
                "ipAddresses": list(addresses),
                "mac": "02:00:00:00:00:01",
                "infoSource": "domain",
            }
        ]
        if addresses
        else []
    )
    return {
        "apiVersion": "kubevirt.io/v1",
        "kind": "VirtualMachineInstance",
        "metadata": _metadata(name, name, namespace, creationTimestamp=created),
        "spec": {},
        "status": {"phase": phase, "nodeName": node, "interfaces": interfaces},
    }


def data_volume_obj(
    vm: str = "web",
    *,
    phase: str = "ImportInProgress",
    progress: str = "42.50%",
    failure: str = "",
    namespace: str = "tenant-acme",
) -> dict[str, Any]:
    """The root disk's DataVolume (§6)."""
    succeeded = phase == "Succeeded"
    conditions = [
        condition("Bound", "True", "Bound"),
        condition(
            "Running",
            "True" if phase == "ImportInProgress" else "False",
            "Error" if failure else "",
            failure,
        ),
        condition("Ready", "True" if succeeded else "False"),
    ]
    return {
        "apiVersion": "cdi.kubevirt.io/v1beta1",
        "kind": "DataVolume",
        "metadata": _metadata(f"{vm}-rootdisk", vm, namespace),
        "spec": {},
        "status": {
            "phase": phase,
            "progress": progress,
            "claimName": f"{vm}-rootdisk",
            "restartCount": 1 if failure else 0,
            "conditions": conditions,
        },
    }


def service_obj(
    vm: str = "web", *, ip: str | None = "192.0.2.20", namespace: str = "tenant-acme"
) -> dict[str, Any]:
    """The VM's LoadBalancer Service (§8), once MetalLB assigned ``ip``."""
    annotations = {"metallb.io/address-pool": namespace}
    if ip:
        annotations["metallb.io/ip-allocated-from-pool"] = namespace
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(vm, vm, namespace, annotations=annotations),
        "spec": {"type": "LoadBalancer"},
        "status": {"loadBalancer": {"ingress": [{"ip": ip}] if ip else []}},
    }


def observe(
    vm: VirtualMachine, *objects: dict[str, Any], event: str = "MODIFIED"
) -> VirtualMachine:
    """Feed objects to the watcher's handlers, as if Kubernetes reported them."""
    from vms.status import vm_observe

    for obj in objects:
        vm_observe(kind=obj["kind"], event_type=event, obj=obj)
    vm.refresh_from_db()
    return vm


def applied(vm: VirtualMachine) -> VirtualMachine:
    """What provisioning records once Kubernetes took the VM's objects."""
    from django.utils import timezone

    VirtualMachine.objects.filter(pk=vm.pk).update(applied_at=timezone.now())
    vm.refresh_from_db()
    vm_refresh(vm)
    return vm


def make_running(vm: VirtualMachine) -> VirtualMachine:
    """Bring a VM row to Running the way the watcher would: applied, then reported."""
    namespace = f"tenant-{vm.tenant.slug}"
    return observe(
        applied(vm),
        data_volume_obj(vm.name, phase="Succeeded", progress="100.0%", namespace=namespace),
        virtual_machine_obj(vm.name, namespace=namespace),
        instance_obj(vm.name, namespace=namespace),
    )


def stopped(vm: VirtualMachine) -> VirtualMachine:
    """Halted, and reported Stopped by KubeVirt."""
    VirtualMachine.objects.filter(pk=vm.pk).update(run_strategy=RunStrategy.HALTED)
    vm.refresh_from_db()
    namespace = f"tenant-{vm.tenant.slug}"
    return observe(
        applied(vm),
        data_volume_obj(vm.name, phase="Succeeded", progress="100.0%", namespace=namespace),
        virtual_machine_obj(
            vm.name, printable="Stopped", ready=False, run_strategy="Halted", namespace=namespace
        ),
    )


def importing(vm: VirtualMachine, progress: str = "42.50%") -> VirtualMachine:
    """Applied, its root disk being imported by CDI."""
    namespace = f"tenant-{vm.tenant.slug}"
    return observe(
        applied(vm),
        data_volume_obj(vm.name, progress=progress, namespace=namespace),
        virtual_machine_obj(vm.name, printable="Provisioning", ready=False, namespace=namespace),
    )
