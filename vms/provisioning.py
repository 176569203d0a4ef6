"""Applying a VM to Kubernetes, restarting it and taking it down (called by ``vms.tasks``).

Idempotent: server-side apply converges whatever exists to what the database says, so a
retried or repeated task does no harm. ``Transient`` errors propagate for the task to retry.
A VM Kubernetes refuses before it ever existed ends as Failed with the API's own words and
gives its quota back; a refused change to an existing VM is shown as an error and keeps
the quota (the VM is still there). The same goes for its Service and public address.
"""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from butler_portal.kube import kube_client
from butler_portal.kube.adapter import KubeClient
from butler_portal.kube.errors import KubeError, NotFound
from butler_portal.kube.served import RETRYABLE_ERRORS, waiting_reason
from butler_portal.realtime import publish_tenant_event
from butler_portal.tasks import NamespaceNotReady, TeardownPending
from tenants.audit import Actor, audit_record
from tenants.owned import apply_client, namespace_of, object_name, refusal_reason
from tenants.services import quota_release
from vms.cloudinit import parse_user_data, render_user_data
from vms.crypto import UndecryptableUserData, decrypt
from vms.manifests import (
    VMI_API,
    PortPlan,
    VMPlan,
    cloud_init_secret_manifest,
    root_disk_manifests,
    service_ref,
    virtual_machine_manifest,
    vm_manifests,
)
from vms.models import VirtualMachine, VMService
from vms.selectors import vm_service_of
from vms.status import VM_EVENT, vm_refresh

logger = logging.getLogger(__name__)

__all__ = ["NamespaceNotReady", "ServiceRemovalPending", "TeardownPending"]


class ServiceRemovalPending(Exception):
    """Kubernetes still holds a Service the tenant no longer wants: look again later."""


# --- The plan -------------------------------------------------------------------------------


def vm_plan(vm: VirtualMachine) -> VMPlan:
    namespace = namespace_of(vm)
    service = vm_service_of(vm)
    wanted_ports = service is not None and service.deletion_requested_at is None
    return VMPlan(
        tenant_slug=vm.tenant.slug,
        namespace=namespace,
        name=vm.name,
        run_strategy=vm.run_strategy,
        vcpu=vm.instance_type.vcpu,
        memory_mib=vm.instance_type.memory_mib,
        disk_gib=vm.disk_gib,
        storage_class=vm.storage_class.kubernetes_name,
        image_source_kind=vm.image.source_kind,
        image_source=vm.image.source,
        user_data=render_user_data(
            hostname=vm.name,
            login_user=vm.image.default_login_user,
            authorized_keys=list(vm.authorized_keys),
            # Checked when the VM was asked for; a limit lowered since must not break it.
            user_data=parse_user_data(decrypt(vm.user_data_encrypted), check_size=False),
        ),
        # The tenant's MetalLB IPAddressPool is named like its namespace (tenants.manifests).
        address_pool=namespace,
        ports=tuple(
            PortPlan(port["port"], port["target_port"], port["protocol"])
            for port in (service.ports if service is not None and wanted_ports else [])
        ),
    )


def _load(vm_id: int) -> VirtualMachine | None:
    return (
        VirtualMachine.objects.select_related(
            "tenant", "image", "instance_type", "storage_class", "service"
        )
        .filter(pk=vm_id)
        .first()
    )


def _locked(vm_id: int) -> VirtualMachine | None:
    return (
        VirtualMachine.objects.select_for_update(of=("self",))
        .select_related("tenant", "service")
        .filter(pk=vm_id)
        .first()
    )


def _note(vm: VirtualMachine, reason: str) -> None:
    """Say why nothing moves, without changing the state."""
    if vm.reason != reason:
        VirtualMachine.objects.filter(pk=vm.pk).update(reason=reason)
        publish_tenant_event(vm.tenant_id, VM_EVENT, vm.pk, state=vm.state)


# --- Applying -------------------------------------------------------------------------------


def vm_provision(*, vm_id: int) -> None:
    """Converge the VM's objects in Kubernetes to the database (create and every change)."""
    vm = _load(vm_id)
    if vm is None or vm.deletion_requested_at or (vm.apply_error and vm.applied_at is None):
        return
    client = apply_client(vm, note=partial(_note, vm))
    if client is None:
        return
    try:
        plan = vm_plan(vm)
    except UndecryptableUserData as error:
        _note(vm, str(error))  # an operator's fix (SECRET_KEY_FALLBACKS), not the tenant's
        return
    manifest: dict[str, Any] = {}
    try:
        for manifest in vm_manifests(plan):
            client.apply(manifest)
    except RETRYABLE_ERRORS as error:
        _note(vm, waiting_reason(error))  # the task tries again with backoff
        raise
    except KubeError as error:
        if manifest.get("kind") == "Service":
            service_fail(vm_id=vm_id, reason=refusal_reason(manifest, error))
        else:
            vm_fail(vm_id=vm_id, reason=refusal_reason(manifest, error))
        return
    _remove_unwanted_service(client, vm, plan)
    _applied(vm_id, with_service=bool(plan.ports))


@transaction.atomic
def _applied(vm_id: int, *, with_service: bool) -> None:
    vm = _locked(vm_id)
    if vm is None or vm.deletion_requested_at:
        return
    now = timezone.now()
    vm.applied_at, vm.apply_error = now, ""
    vm.save(update_fields=["applied_at", "apply_error", "updated_at"])
    service = vm_service_of(vm)
    if with_service and service is not None and service.deletion_requested_at is None:
        service.applied_at = now
        if service.state == VMService.State.FAILED:
            service.state = VMService.State.WAITING
        service.save(update_fields=["applied_at", "state", "updated_at"])
    vm_refresh(vm)


def _remove_unwanted_service(client: KubeClient, vm: VirtualMachine, plan: VMPlan) -> None:
    """Delete the Service of a VM whose ports were all withdrawn; once Kubernetes confirms
    it is gone, its address goes back to the tenant's quota."""
    service = vm_service_of(vm)
    if service is None or service.deletion_requested_at is None:
        return
    manifest = service_ref(plan)
    client.delete_manifest(manifest)
    try:
        client.get_manifest(manifest)
    except NotFound:
        service_remove_finish(vm_id=vm.pk)
        return
    raise ServiceRemovalPending(vm.pk)


def _forget_service(vm: VirtualMachine) -> None:
    """Drop the deleted Service row from the VM's cache (setting the reverse one-to-one
    to None only clears the cache; nothing is saved)."""
    vm.service = None


@transaction.atomic
def service_remove_finish(*, vm_id: int) -> None:
    """The Service is gone: its address goes back to the quota, and the row goes."""
    vm = _locked(vm_id)
    service = vm_service_of(vm) if vm is not None else None
    if vm is None or service is None or service.deletion_requested_at is None:
        return
    quota_release(tenant=vm.tenant, subject=service.quota_subject)
    service.delete()
    _forget_service(vm)
    vm_refresh(vm)


@transaction.atomic
def vm_fail(*, vm_id: int, reason: str) -> None:
    """Kubernetes refused the VM's objects.

    A VM that never existed ends as Failed, and its quota (and its public address's) goes
    back to the tenant. One that exists keeps its quota and shows the refusal as an error
    until a later change goes through.
    """
    vm = _locked(vm_id)
    if vm is None or vm.deletion_requested_at:
        return
    logger.warning("vm %s/%s refused: %s", vm.tenant.slug, vm.name, reason)
    vm.apply_error = reason
    vm.save(update_fields=["apply_error", "updated_at"])
    if vm.applied_at is None:
        quota_release(tenant=vm.tenant, subject=vm.quota_subject)
        service = vm_service_of(vm)
        if service is not None:
            quota_release(tenant=vm.tenant, subject=service.quota_subject)
            service.delete()
            _forget_service(vm)
    audit_record(
        actor=Actor.system(),
        action="fail",
        tenant=vm.tenant,
        target=vm,
        object_repr=f"{vm.tenant.slug}/{vm.name}",
        changes={"reason": reason},
    )
    vm_refresh(vm)


@transaction.atomic
def service_fail(*, vm_id: int, reason: str) -> None:
    """Kubernetes refused the VM's Service: a Service that never existed gives its address
    back to the quota; the VM itself is not affected."""
    vm = _locked(vm_id)
    service = vm_service_of(vm) if vm is not None else None
    if vm is None or service is None:
        return
    logger.warning("vm %s/%s service refused: %s", vm.tenant.slug, vm.name, reason)
    if service.applied_at is None:
        quota_release(tenant=vm.tenant, subject=service.quota_subject)
    service.state, service.message = VMService.State.FAILED, reason
    service.save(update_fields=["state", "message", "updated_at"])
    audit_record(
        actor=Actor.system(),
        action="fail",
        tenant=vm.tenant,
        target=service,
        object_repr=f"{vm.tenant.slug}/{vm.name}",
        changes={"reason": reason},
    )
    publish_tenant_event(vm.tenant_id, VM_EVENT, vm.pk, state=vm.state)


# --- Restarting -----------------------------------------------------------------------------


def vm_restart_instance(*, vm_id: int) -> None:
    """Restart as KubeVirt does without virt-api (STATUS.md §5): delete the running
    instance while runStrategy is Always, and the controller starts a new one.

    Only an instance created before the restart was asked for is deleted, so a retried
    task never restarts the VM twice.
    """
    vm = _load(vm_id)
    if vm is None or vm.restart_requested_at is None or vm.deletion_requested_at:
        return
    client = kube_client()
    if client is not None:
        namespace = namespace_of(vm)
        try:
            instance = client.get(VMI_API, "VirtualMachineInstance", vm.name, namespace)
        except NotFound:
            instance = None
        metadata = (instance or {}).get("metadata") or {}
        created = parse_datetime(str(metadata.get("creationTimestamp") or ""))
        if (
            instance is not None
            and not metadata.get("deletionTimestamp")
            and created is not None
            and created < vm.restart_requested_at
        ):
            client.delete(VMI_API, "VirtualMachineInstance", vm.name, namespace)
    VirtualMachine.objects.filter(pk=vm_id, restart_requested_at=vm.restart_requested_at).update(
        restart_requested_at=None
    )


# --- Taking down ----------------------------------------------------------------------------


def vm_teardown(*, vm_id: int) -> bool:
    """Delete the VM's objects; True once Kubernetes has let go of all of them.

    The VirtualMachine goes first (KubeVirt stops the guest, and the garbage collector
    takes the root disk it owns), with its Service and cloud-init Secret; the disk's
    DataVolume and claim are deleted explicitly once the VM is gone (a bare API server
    has no garbage collector). Its quota is released only when nothing is left.
    """
    vm = _load(vm_id)
    if vm is None:
        return True
    client = kube_client()
    if client is None:
        vm_delete_finish(vm_id=vm_id)
        return True
    plan = vm_plan(vm)
    owned = [virtual_machine_manifest(plan), service_ref(plan), cloud_init_secret_manifest(plan)]
    for manifest in owned:
        client.delete_manifest(manifest)
    if _exists(client, owned[0]):
        _note(vm, "KubeVirt is stopping the guest and deleting the virtual machine.")
        return False
    for manifest in root_disk_manifests(plan):
        client.delete_manifest(manifest)
    remaining = [
        object_name(manifest)
        for manifest in [*owned, *root_disk_manifests(plan)]
        if _exists(client, manifest)
    ]
    if remaining:
        _note(vm, f"Waiting for Kubernetes to remove {', '.join(remaining)}.")
        return False
    vm_delete_finish(vm_id=vm_id)
    return True


def _exists(client: KubeClient, manifest: dict[str, Any]) -> bool:
    try:
        client.get_manifest(manifest)
    except NotFound:
        return False
    return True


@transaction.atomic
def vm_delete_finish(*, vm_id: int, audited: bool = True) -> None:
    """The last step of a deletion: Kubernetes let go, so the quota and the row go too.

    ``audited`` records the completion in the VM's action log; a deletion finished within
    the request that asked for it needs no second entry.
    """
    vm = _locked(vm_id)
    if vm is None or vm.deletion_requested_at is None:
        return
    quota_release(tenant=vm.tenant, subject=vm.quota_subject)
    service = vm_service_of(vm)
    if service is not None:
        quota_release(tenant=vm.tenant, subject=service.quota_subject)
    if audited:
        audit_record(
            actor=Actor.system(),
            action="delete_complete",
            tenant=vm.tenant,
            target=vm,
            object_repr=f"{vm.tenant.slug}/{vm.name}",
        )
    tenant_id, pk = vm.tenant_id, vm.pk
    vm.delete()
    publish_tenant_event(tenant_id, VM_EVENT, pk, state="deleted")
