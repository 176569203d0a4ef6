"""What the watcher follows for VMs, and how it lands in the database.

``status_handlers()`` and ``drift_checks()`` are the watcher contract (see
``butler_portal.watcher.registry``). Each handler reads one object with ``vms.lifecycle``
(the VirtualMachine's printableStatus and conditions, the instance's node and addresses,
the root disk's import progress, the Service's public address), stores the facts on the VM
row, and ``vm_refresh`` re-derives the portal state and its timeline (``VMStep`` rows, which
record when each step started and finished) and tells the tenant's browsers (``vm.changed``). The watcher runs each handler in a transaction, so events go out only
once it commits.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from datetime import datetime
from functools import partial
from typing import Any

from django.db import transaction
from django.utils import timezone

from butler_portal.kube.adapter import Manifest
from butler_portal.kube.informer import Handler, WatchedKind
from butler_portal.labels import MANAGED_SELECTOR, VM_KEY
from butler_portal.lifecycle import Step, step_clock
from butler_portal.realtime import publish_tenant_event
from butler_portal.watcher.drift import DriftCheck, Expectation, ObjectRef
from tenants.owned import orphans_by_owner_label, owned_in_namespace
from vms import lifecycle
from vms.crypto import UndecryptableUserData
from vms.lifecycle import (
    read_data_volume,
    read_instance,
    read_service,
    read_virtual_machine,
)
from vms.manifests import DATA_VOLUME_API, VM_API, VMI_API
from vms.models import VirtualMachine, VMService, VMStep
from vms.selectors import vm_picture, vm_service_of

logger = logging.getLogger(__name__)

VM_EVENT = "vm.changed"
#: Portal objects of a VM carry its name in this label; the selector keeps cluster workers
#: (KubeVirt VMs too, made by Cluster API) out of these watches.
VM_SELECTOR = f"{MANAGED_SELECTOR},{VM_KEY}"

State = VirtualMachine.State


# --- Deriving and storing the state -----------------------------------------------------------


def _toast(vm: VirtualMachine, before: str, after: str, reason: str) -> dict[str, str]:
    """A notification for the tenant's open pages when a VM arrives somewhere that matters."""
    if before == after:
        return {}
    name = f"{vm.tenant.slug}/{vm.name}"
    if after == State.RUNNING:
        return {"toast": f"{name} is running.", "level": "success"}
    if after == State.STOPPED:
        return {"toast": f"{name} stopped.", "level": "info"}
    if after in {State.ERROR, State.FAILED}:
        return {"toast": f"{name}: {reason}", "level": "error"}
    return {}


def vm_refresh(vm: VirtualMachine) -> str:
    """Re-derive the VM's state (and its exposure's); save; publish an event if they changed."""
    desired, observed = vm_picture(vm)
    state, said = lifecycle.derive_state(desired, observed)
    reason = said.text
    before = vm.state
    now = timezone.now()
    updates: dict[str, Any] = {"state": state, "reason": reason, "reason_raw": said.raw}
    if state == State.RUNNING and vm.running_since is None:
        updates["running_since"] = now
    elif state != State.RUNNING:
        updates["running_since"] = None
    changed = [name for name, value in updates.items() if getattr(vm, name) != value]
    for name in changed:
        setattr(vm, name, updates[name])
    if changed:
        vm.save(update_fields=[*changed, "updated_at"])
    steps_changed = sync_steps(vm, lifecycle.timeline(desired, observed, state), now)
    service_changed = _refresh_service(vm)
    if changed or steps_changed or service_changed:
        publish_tenant_event(
            vm.tenant_id, VM_EVENT, vm.pk, state=state, **_toast(vm, before, state, reason)
        )
    return state


STEP_FIELDS = ("label", "state", "message", "raw", "position")


def sync_steps(vm: VirtualMachine, steps: Sequence[Step], now: datetime) -> bool:
    """Make the stored timeline match ``steps``; timestamps move with state changes.

    A step that goes active starts its clock; finishing (or failing) stops the clock of the
    attempt that started then; going back to pending clears both.
    """
    stored = {row.key: row for row in VMStep.objects.filter(vm=vm)}
    created, updated = [], []
    for step in steps:
        row = stored.pop(step.key, None)
        if row is None:
            started_at, finished_at = step_clock(step.state, None, now)
            created.append(
                VMStep(
                    vm=vm,
                    key=step.key,
                    **{name: getattr(step, name) for name in STEP_FIELDS},
                    started_at=started_at,
                    finished_at=finished_at,
                )
            )
            continue
        if all(getattr(row, name) == getattr(step, name) for name in STEP_FIELDS):
            continue
        if row.state != step.state:
            ongoing = row.state in {VMStep.State.ACTIVE, VMStep.State.FAILED}
            row.started_at, row.finished_at = step_clock(
                step.state, row.started_at if ongoing else None, now
            )
        for name in STEP_FIELDS:
            setattr(row, name, getattr(step, name))
        updated.append(row)
    if created:
        VMStep.objects.bulk_create(created)
    if updated:
        VMStep.objects.bulk_update(updated, [*STEP_FIELDS, "started_at", "finished_at"])
    if stored:
        VMStep.objects.filter(pk__in=[row.pk for row in stored.values()]).delete()
    return bool(created or updated or stored)


def _refresh_service(vm: VirtualMachine) -> bool:
    service = vm_service_of(vm)
    if service is None or service.state == VMService.State.FAILED:
        return False
    if service.deletion_requested_at is not None:
        state, message = VMService.State.DELETING, "Removing the public address."
    elif service.applied_at is None:
        state, message = VMService.State.PENDING, "Queued."
    elif service.public_ip:
        state, message = VMService.State.READY, ""
    else:
        state, message = (
            VMService.State.WAITING,
            "Waiting for a public address from the tenant's share.",
        )
    if (service.state, service.message) == (state, message):
        return False
    service.state, service.message = state, message
    service.save(update_fields=["state", "message", "updated_at"])
    return True


# --- Observing Kubernetes objects -------------------------------------------------------------


def _locked_vm(obj: Manifest) -> VirtualMachine | None:
    """The portal VM an object belongs to, locked for this transaction.

    The namespace decides the tenant, the ``butler.io/vm`` label the VM.
    """
    metadata = obj.get("metadata") or {}
    namespace = str(metadata.get("namespace") or "")
    name = str((metadata.get("labels") or {}).get(VM_KEY) or "")
    if not namespace or not name:
        return None
    return (
        VirtualMachine.objects.select_for_update(of=("self",))
        .select_related("tenant", "service")
        .filter(owned_in_namespace(namespace), name=name)
        .first()
    )


def _observe_virtual_machine(vm: VirtualMachine, deleted: bool, obj: Manifest) -> list[str]:
    if deleted:
        vm.printable_status, vm.ready, vm.status_message = "", False, ""
    else:
        facts = read_virtual_machine(obj)
        vm.printable_status, vm.ready, vm.status_message = (
            facts.printable_status,
            facts.ready,
            facts.message,
        )
    return ["printable_status", "ready", "status_message"]


def _observe_instance(vm: VirtualMachine, deleted: bool, obj: Manifest) -> list[str]:
    if deleted:
        vm.node_name, vm.ip_addresses = "", []
    else:
        facts = read_instance(obj)
        vm.node_name, vm.ip_addresses = facts.node_name, list(facts.ip_addresses)
    return ["node_name", "ip_addresses"]


def _observe_data_volume(vm: VirtualMachine, deleted: bool, obj: Manifest) -> list[str]:
    if deleted:
        return []  # the last progress stays: the disk was imported (or failed) as it said
    facts = read_data_volume(obj)
    vm.disk_phase, vm.disk_progress, vm.disk_message = facts.phase, facts.progress, facts.message
    return ["disk_phase", "disk_progress", "disk_message"]


def _observe_service(vm: VirtualMachine, deleted: bool, obj: Manifest) -> list[str]:
    service = vm_service_of(vm)
    if service is None:
        return []
    public_ip = None if deleted else (read_service(obj).public_ip or None)
    if service.public_ip != public_ip:
        service.public_ip = public_ip
        service.save(update_fields=["public_ip", "updated_at"])
    if deleted and service.deletion_requested_at is not None:
        from vms.tasks import provision_after_commit

        # The Service is gone: provisioning finishes the removal and gives the address back.
        provision_after_commit(vm.pk)
    return []


OBSERVERS = {
    "VirtualMachine": _observe_virtual_machine,
    "VirtualMachineInstance": _observe_instance,
    "DataVolume": _observe_data_volume,
    "Service": _observe_service,
}
#: Kinds whose disappearance may be the last thing a deletion waits for.
TORN_DOWN_WITH_THE_VM = frozenset({"VirtualMachine", "DataVolume", "Service"})


@transaction.atomic
def vm_observe(*, kind: str, event_type: str, obj: Manifest) -> int | None:
    """Store what Kubernetes reports about one object of a VM; returns the VM's id, if any."""
    vm = _locked_vm(obj)
    if vm is None:
        return None
    deleted = event_type == "DELETED"
    changed = OBSERVERS[kind](vm, deleted, obj)
    if changed:
        vm.save(update_fields=[*changed, "updated_at"])
    if deleted and kind in TORN_DOWN_WITH_THE_VM and vm.deletion_requested_at is not None:
        from vms.tasks import delete_after_commit

        # Kubernetes let go of one of its objects: see whether the deletion can finish.
        delete_after_commit(vm.pk)
    vm_refresh(vm)
    return vm.pk


def _observer(kind: str) -> Handler:
    def handle(event_type: str, obj: Manifest) -> None:
        vm_observe(kind=kind, event_type=event_type, obj=obj)

    return handle


def status_handlers() -> dict[WatchedKind, Handler]:
    return {
        WatchedKind(VM_API, "VirtualMachine", label_selector=VM_SELECTOR): _observer(
            "VirtualMachine"
        ),
        # KubeVirt copies the template's labels to the instance, CDI's DataVolume gets the
        # dataVolumeTemplate's: both carry the VM's name.
        WatchedKind(VMI_API, "VirtualMachineInstance", label_selector=VM_SELECTOR): _observer(
            "VirtualMachineInstance"
        ),
        WatchedKind(DATA_VOLUME_API, "DataVolume", label_selector=VM_SELECTOR): _observer(
            "DataVolume"
        ),
        WatchedKind("v1", "Service", label_selector=VM_SELECTOR): _observer("Service"),
    }


# --- Drift --------------------------------------------------------------------------------------


def vm_kinds() -> list[WatchedKind]:
    """What the portal applies for VMs (KubeVirt and CDI make the rest)."""
    return [
        WatchedKind(VM_API, "VirtualMachine", label_selector=VM_SELECTOR),
        WatchedKind("v1", "Secret", label_selector=VM_SELECTOR),
        WatchedKind("v1", "Service", label_selector=VM_SELECTOR),
    ]


def vm_expectations() -> Iterator[Expectation]:
    from vms.manifests import vm_manifests
    from vms.provisioning import vm_plan
    from vms.tasks import provision_after_commit

    settled = VirtualMachine.objects.filter(
        applied_at__isnull=False, deletion_requested_at__isnull=True, apply_error=""
    ).select_related("tenant", "image", "instance_type", "storage_class", "service")
    for vm in settled:
        service = vm_service_of(vm)
        if service is not None and service.applied_at is None:
            continue  # its Service is on its way: nothing to compare yet
        try:
            manifests = vm_manifests(vm_plan(vm))
        except UndecryptableUserData:
            logger.warning(
                "drift: vm %s/%s: its user data cannot be decrypted", vm.tenant.slug, vm.name
            )
            continue
        yield Expectation(
            owner=f"vm {vm.tenant.slug}/{vm.name}",
            objects=frozenset(ObjectRef.of(manifest) for manifest in manifests),
            repair=partial(provision_after_commit, vm.pk),
        )


def drift_checks() -> list[DriftCheck]:
    return [
        DriftCheck(
            name="vms",
            kinds=vm_kinds(),
            expected=vm_expectations,
            orphaned=partial(
                orphans_by_owner_label, model=VirtualMachine, owner_label=VM_KEY, owner_kind="vm"
            ),
        )
    ]
