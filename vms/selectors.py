"""Reads about VMs that more than one caller needs (API, UI pages, services).

The UI builds its VM pages on these: the list (``vms_for``), the create form
(``vm_form_defaults``, ``offered_images``, ``offered_instance_types``, ``storage_classes``,
``ssh_keys_of``, ``vm_quota_preview``), the detail page (``vm_timeline``,
``vm_allowed_actions``; its action log is ``tenants.selectors.object_activity``), and bulk
actions (``power_targets``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db.models import Prefetch, QuerySet

from clusters.models import InstanceType
from clusters.selectors import offered_instance_types
from tenants.access import Action, user_can
from tenants.models import QuotaClaim, Tenant
from tenants.scoping import DENIED_MESSAGES
from tenants.selectors import QuotaPreview, quota_preview
from vms.lifecycle import Desired, Observed, allowed_actions, timeline
from vms.models import SSHKey, StorageClass, VirtualMachine, VMImage, VMService, VMStep
from vms.spec import QUOTA_FIELDS, SERVICE_QUOTA_AMOUNTS, VMSpec, spec_quota_amounts

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser

    from tenants.models import User

# --- Catalog --------------------------------------------------------------------------------


def offered_images() -> QuerySet[VMImage]:
    return VMImage.objects.filter(active=True)


def storage_classes() -> QuerySet[StorageClass]:
    """Every storage class, the default first."""
    return StorageClass.objects.all()


def default_storage_class() -> StorageClass | None:
    return StorageClass.objects.filter(is_default=True).first() or StorageClass.objects.first()


def default_vm_instance_type() -> InstanceType | None:
    """The configured default VM size, else the smallest offered one."""
    offered = offered_instance_types()
    return offered.filter(name=settings.VM_DEFAULT_INSTANCE_TYPE).first() or offered.first()


def ssh_keys_of(user: User | AnonymousUser) -> QuerySet[SSHKey]:
    """A person's own keys: nobody else's are ever listed or usable."""
    if not user.is_authenticated:
        return SSHKey.objects.none()
    return SSHKey.objects.filter(user_id=user.pk)


@dataclass(frozen=True)
class VMFormDefaults:
    image: VMImage | None
    instance_type: InstanceType | None
    storage_class: StorageClass | None
    disk_gib: int


def default_image() -> VMImage | None:
    """The configured default image, else the first offered one."""
    offered = offered_images()
    return offered.filter(name=settings.VM_DEFAULT_IMAGE).first() or offered.first()


def vm_form_defaults(image: VMImage | None = None) -> VMFormDefaults:
    image = image or default_image()
    disk = settings.VM_DEFAULT_DISK_GIB
    return VMFormDefaults(
        image=image,
        instance_type=default_vm_instance_type(),
        storage_class=default_storage_class(),
        disk_gib=max(disk, image.min_disk_gib) if image else disk,
    )


def vm_spec_with_defaults(
    *,
    name: str,
    image: VMImage | None = None,
    instance_type: InstanceType | None = None,
    storage_class: StorageClass | None = None,
    disk_gib: int | None = None,
    ssh_keys: Sequence[SSHKey] = (),
    user_data: str = "",
    start: bool = True,
) -> VMSpec:
    """A request's spec, with the catalog's defaults where the request left a choice open."""
    defaults = vm_form_defaults(image)
    chosen_type = instance_type or defaults.instance_type
    chosen_class = storage_class or defaults.storage_class
    errors = {}
    if defaults.image is None:
        errors["image"] = "Choose an image: the catalog offers none."
    if chosen_type is None:
        errors["instance_type"] = "Choose an instance type: none is offered by default."
    if chosen_class is None:
        errors["storage_class"] = "Choose a storage class: the catalog has none."
    if errors or defaults.image is None or chosen_type is None or chosen_class is None:
        raise ValidationError(errors)
    return VMSpec(
        name=name,
        image=defaults.image,
        instance_type=chosen_type,
        storage_class=chosen_class,
        disk_gib=defaults.disk_gib if disk_gib is None else disk_gib,
        ssh_keys=tuple(ssh_keys),
        user_data=user_data,
        start=start,
    )


# --- Virtual machines -----------------------------------------------------------------------


def with_vm_details(vms: QuerySet[VirtualMachine]) -> QuerySet[VirtualMachine]:
    """Everything a VM row or page shows, loaded in a fixed number of queries."""
    return vms.select_related(
        "tenant", "image", "instance_type", "storage_class", "created_by", "service"
    ).prefetch_related(
        Prefetch("ssh_keys", queryset=SSHKey.objects.order_by("name")),
        "steps",  # when each step of its timeline ran (vm_timeline)
    )


def vms_for(
    user: User | AnonymousUser, tenant: Tenant | None = None, action: Action = Action.VIEW
) -> QuerySet[VirtualMachine]:
    """The VMs ``user`` may see (or act on), optionally of one tenant."""
    vms = VirtualMachine.objects.for_user(user, action)
    if tenant is not None:
        vms = vms.filter(tenant=tenant)
    return with_vm_details(vms)


def _desired(vm: VirtualMachine) -> Desired:
    return Desired(
        run_strategy=vm.run_strategy,
        applied=vm.applied_at is not None,
        deleting=vm.deletion_requested_at is not None,
        apply_error=vm.apply_error,
    )


def _observed(vm: VirtualMachine) -> Observed:
    return Observed(
        printable_status=vm.printable_status,
        ready=vm.ready,
        status_message=vm.status_message,
        node_name=vm.node_name,
        ip_addresses=tuple(vm.ip_addresses),
        disk_phase=vm.disk_phase,
        disk_progress=vm.disk_progress,
        disk_message=vm.disk_message,
    )


def vm_picture(vm: VirtualMachine) -> tuple[Desired, Observed]:
    return _desired(vm), _observed(vm)


def vm_timeline(vm: VirtualMachine) -> list[VMStep]:
    """The provisioning steps (disk, node, guest, address), derived from the row, with when
    each started and finished as its stored step recorded (``vms.status.sync_steps``).

    Derived rather than read back, so the steps are right even before the watcher stored
    them; a stored step's times count only while it is in the same state.
    """
    stored = {row.key: row for row in vm.steps.all()}
    steps = []
    for step in timeline(_desired(vm), _observed(vm), vm.state):
        row = stored.get(step.key)
        current = row is not None and row.state == step.state
        steps.append(
            VMStep(
                vm=vm,
                key=step.key,
                label=step.label,
                state=step.state,
                message=step.message,
                raw=step.raw,
                position=step.position,
                started_at=row.started_at if row is not None and current else None,
                finished_at=row.finished_at if row is not None and current else None,
            )
        )
    return steps


def vm_allowed_actions(vm: VirtualMachine) -> frozenset[str]:
    """What the VM's state allows now (the caller's role is checked apart)."""
    allowed = allowed_actions(vm.state, vm.run_strategy)
    service = vm_service_of(vm)
    if service is None or service.deletion_requested_at is not None:
        return allowed - {"unexpose"}  # nothing to withdraw
    return allowed


def vm_service_of(vm: VirtualMachine) -> VMService | None:
    """The VM's exposure, if it has one (from the select_related cache when loaded)."""
    try:
        return vm.service
    except VMService.DoesNotExist:
        return None


@dataclass(frozen=True)
class PowerTargets:
    """The VMs of a bulk request the caller may act on, and the refusals of the others."""

    vms: list[VirtualMachine]
    # id → (HTTP-like status, message): 404 outside the caller's reach, 403 read-only.
    refused: dict[int, tuple[int, str]]


def power_targets(user: User | AnonymousUser, ids: Iterable[int]) -> PowerTargets:
    wanted = list(dict.fromkeys(ids))
    visible = {vm.pk: vm for vm in vms_for(user).filter(pk__in=wanted)}
    allowed: dict[int, bool] = {}
    vms, refused = [], {}
    for pk in wanted:
        vm = visible.get(pk)
        if vm is None:
            refused[pk] = (404, "No such virtual machine.")
            continue
        if vm.tenant_id not in allowed:
            allowed[vm.tenant_id] = user_can(user, vm.tenant, Action.OPERATE)
        if allowed[vm.tenant_id]:
            vms.append(vm)
        else:
            refused[pk] = (403, DENIED_MESSAGES[Action.OPERATE])
    return PowerTargets(vms=vms, refused=refused)


# --- Quota preview --------------------------------------------------------------------------


def vm_quota_preview(tenant: Tenant, spec: VMSpec, *, expose: bool = False) -> QuotaPreview:
    """What a new VM (and, with ``expose``, its public address) would take of the quota."""
    amounts = spec_quota_amounts(spec)
    if expose:
        amounts = {**amounts, **SERVICE_QUOTA_AMOUNTS}
    return quota_preview(tenant, amounts, fields=QUOTA_FIELDS)


def vm_expose_quota_preview(vm: VirtualMachine) -> QuotaPreview:
    """What exposing ports of ``vm`` would take: one load-balancer IP, unless its exposure
    holds one already (more ports share the address)."""
    service = vm_service_of(vm)
    held: dict[str, int] = {}
    if service is not None:
        claim = QuotaClaim.objects.filter(
            tenant_id=vm.tenant_id, subject=service.quota_subject
        ).first()
        held = claim.amounts() if claim else {}
    return quota_preview(vm.tenant, SERVICE_QUOTA_AMOUNTS, held=held, fields=QUOTA_FIELDS)
