"""Every write to VMs, their exposed ports, SSH keys and the VM catalog.

Views, API viewsets, the admin and tasks call these keyword-only functions. They hold the
rules (quota reserved atomically, only state-valid power actions, name typed to delete,
own SSH keys only, nothing new in a suspended tenant), write the audit trail in the same
transaction, and queue the Kubernetes work once it commits. Who may act on the tenant at
all is decided before, through ``for_user`` / ``tenants.scoping``.

Errors are Django ``ValidationError``s keyed by the form field to correct.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from clusters.manifests import names_collide, worker_name_prefix
from clusters.models import Cluster
from tenants.audit import Actor, audit_record, audited_save
from tenants.models import Tenant
from tenants.services import (
    ensure_tenant_active,
    ensure_tenant_allows,
    quota_error_on_fields,
    quota_reserve,
)
from vms.cloudinit import parse_user_data
from vms.crypto import encrypt
from vms.lifecycle import ALWAYS, HALTED, action_refusal
from vms.models import SSHKey, StorageClass, VirtualMachine, VMImage, VMService
from vms.provisioning import service_remove_finish, vm_delete_finish
from vms.selectors import vm_service_of
from vms.spec import (
    QUOTA_FIELDS,
    SERVICE_QUOTA_AMOUNTS,
    PortSpec,
    VMSpec,
    checked_ports,
    spec_quota_amounts,
    vm_quota_amounts,
)
from vms.sshkeys import parse_public_key
from vms.status import vm_refresh
from vms.tasks import delete_after_commit, provision_after_commit, restart_after_commit

# --- Helpers --------------------------------------------------------------------------------


def _locked(vm: VirtualMachine) -> VirtualMachine:
    """The VM's row, locked for this transaction and re-read (the caller's copy may be stale)."""
    return (
        VirtualMachine.objects.select_for_update(of=("self",))
        .select_related("tenant", "image", "instance_type", "storage_class", "service")
        .get(pk=vm.pk)
    )


def _require(vm: VirtualMachine, action: str, field: str = NON_FIELD_ERRORS) -> None:
    ensure_tenant_allows(vm.tenant, action)
    refusal = action_refusal(vm.state, vm.run_strategy, action)
    if refusal:
        raise ValidationError({field: refusal}, code="invalid_state")


def _reserve(tenant: Tenant, subject: str, amounts: Mapping[str, int]) -> None:
    try:
        quota_reserve(tenant=tenant, subject=subject, amounts=amounts)
    except ValidationError as error:
        raise quota_error_on_fields(error, QUOTA_FIELDS) from error


def _audit(
    actor: Actor, action: str, vm: VirtualMachine, changes: dict[str, Any] | None = None
) -> None:
    audit_record(
        actor=actor,
        action=action,
        tenant=vm.tenant,
        target=vm,
        object_repr=f"{vm.tenant.slug}/{vm.name}",
        changes=changes,
    )


# --- Creating -------------------------------------------------------------------------------


def _name_clash(tenant: Tenant, name: str) -> str:
    """Why ``name`` would collide with a cluster's objects in the tenant namespace ("" if not)."""
    for cluster in Cluster.objects.filter(tenant=tenant).values_list("name", flat=True):
        if name == cluster:
            return f"The cluster {cluster} already uses this name in {tenant.slug}."
        if names_collide(cluster, name):
            prefix = worker_name_prefix(cluster)
            return f"Names starting with {prefix} belong to that cluster's workers."
    return ""


def _spec_errors(actor: Actor, tenant: Tenant, spec: VMSpec) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}

    def add(field: str, message: str) -> None:
        errors.setdefault(field, []).append(message)

    if not spec.image.active:
        add("image", f"{spec.image.name} is no longer offered.")
    if not spec.instance_type.active:
        add("instance_type", f"{spec.instance_type.name} is no longer offered.")
    if spec.disk_gib < spec.image.min_disk_gib:
        add("disk_gib", f"{spec.image} needs a disk of at least {spec.image.min_disk_gib} GiB.")
    owner = actor.user.pk if actor.user else None
    if any(key.user_id != owner for key in spec.ssh_keys):
        add("ssh_keys", "Choose among your own SSH keys.")
    if VirtualMachine.objects.filter(tenant=tenant, name=spec.name).exists():
        add("name", f"{tenant.slug} already has a virtual machine named {spec.name}.")
    elif clash := _name_clash(tenant, spec.name):
        add("name", clash)
    try:
        parse_user_data(spec.user_data)
    except ValidationError as error:
        for field, messages in error.message_dict.items():
            errors.setdefault(field, []).extend(messages)
    return errors


@transaction.atomic
def vm_create(*, actor: Actor, tenant: Tenant, spec: VMSpec) -> VirtualMachine:
    """Ask for a new VM: validate, reserve its quota, record it; provisioning follows."""
    # Lock the tenant first: a suspension, a name clash or a quota race is decided here.
    locked_tenant = Tenant.objects.select_for_update().get(pk=tenant.pk)
    ensure_tenant_active(locked_tenant)
    vm = VirtualMachine(
        tenant=locked_tenant,
        name=spec.name,
        image=spec.image,
        instance_type=spec.instance_type,
        disk_gib=spec.disk_gib,
        storage_class=spec.storage_class,
        authorized_keys=[key.public_key for key in spec.ssh_keys],
        user_data_encrypted=encrypt(spec.user_data if spec.user_data.strip() else ""),
        run_strategy=ALWAYS if spec.start else HALTED,
        created_by=actor.user,
    )
    errors: dict[str, list[str]] = {}
    try:
        vm.full_clean(validate_constraints=False)
    except ValidationError as error:
        errors.update(error.message_dict)
    for field, messages in _spec_errors(actor, locked_tenant, spec).items():
        errors.setdefault(field, []).extend(messages)
    if errors:
        raise ValidationError(errors)
    try:
        with transaction.atomic():
            vm.save()
    except IntegrityError as error:  # the same name, committed in between
        raise ValidationError(
            {"name": f"{locked_tenant.slug} already has a virtual machine named {spec.name}."}
        ) from error
    vm.ssh_keys.set(spec.ssh_keys)
    _reserve(locked_tenant, vm.quota_subject, spec_quota_amounts(spec))
    _audit(
        actor,
        "create",
        vm,
        {
            "image": spec.image.name,
            "instance_type": spec.instance_type.name,
            "disk_gib": spec.disk_gib,
            "storage_class": spec.storage_class.name,
            "ssh_keys": [key.fingerprint for key in spec.ssh_keys],
            "user_data": bool(vm.user_data_encrypted),
            "run_strategy": vm.run_strategy,
        },
    )
    vm_refresh(vm)
    provision_after_commit(vm.pk)
    return vm


# --- Power ----------------------------------------------------------------------------------


def _set_run_strategy(
    actor: Actor, vm: VirtualMachine, action: str, strategy: str
) -> VirtualMachine:
    locked = _locked(vm)
    _require(locked, action)
    before = locked.run_strategy
    locked.run_strategy = strategy
    locked.save(update_fields=["run_strategy", "updated_at"])
    _audit(actor, action, locked, {"run_strategy": [before, strategy]})
    vm_refresh(locked)
    provision_after_commit(locked.pk)
    return locked


@transaction.atomic
def vm_start(*, actor: Actor, vm: VirtualMachine) -> VirtualMachine:
    """Start a stopped VM: runStrategy Always (STATUS.md §5, the fallback without virt-api)."""
    return _set_run_strategy(actor, vm, "start", ALWAYS)


@transaction.atomic
def vm_stop(*, actor: Actor, vm: VirtualMachine) -> VirtualMachine:
    """Stop a VM: runStrategy Halted; KubeVirt shuts the guest down. Its quota stays held,
    so starting it again can never fail for lack of it."""
    return _set_run_strategy(actor, vm, "stop", HALTED)


@transaction.atomic
def vm_restart(*, actor: Actor, vm: VirtualMachine) -> VirtualMachine:
    """Restart a running VM: its instance is replaced (``vms.provisioning``)."""
    locked = _locked(vm)
    _require(locked, "restart")
    locked.restart_requested_at = timezone.now()
    locked.save(update_fields=["restart_requested_at", "updated_at"])
    _audit(actor, "restart", locked)
    restart_after_commit(locked.pk)
    return locked


POWER_ACTIONS: dict[str, Callable[..., VirtualMachine]] = {
    "start": vm_start,
    "stop": vm_stop,
    "restart": vm_restart,
}


@dataclass(frozen=True)
class PowerOutcome:
    vm_id: int
    ok: bool
    status: int  # 200 done; 400 refused by the VM's state; 403/404 from the caller's reach
    message: str = ""
    vm: VirtualMachine | None = None


def vm_bulk_power(
    *, actor: Actor, vms: Sequence[VirtualMachine], action: str
) -> list[PowerOutcome]:
    """One power action on several VMs, each in a transaction of its own: one VM's refusal
    (a stopped VM asked to stop) leaves the others' results standing."""
    if action not in POWER_ACTIONS:
        raise ValidationError({"action": f"Choose one of {', '.join(POWER_ACTIONS)}."})
    outcomes = []
    for vm in vms:
        try:
            changed = POWER_ACTIONS[action](actor=actor, vm=vm)
        except ValidationError as error:
            outcomes.append(PowerOutcome(vm.pk, False, 400, " ".join(error.messages)))
        else:
            outcomes.append(PowerOutcome(vm.pk, True, 200, vm=changed))
    return outcomes


# --- Exposed ports --------------------------------------------------------------------------


def _ports_changes(before: Sequence[dict[str, Any]], after: Sequence[PortSpec]) -> dict[str, Any]:
    return {"ports": [[_port_text(p) for p in before], [_port_text(p.as_dict()) for p in after]]}


def _port_text(port: Mapping[str, Any]) -> str:
    forward = f"→{port['target_port']}" if port["target_port"] != port["port"] else ""
    return f"{port['port']}/{port['protocol']}{forward}"


def _apply_again(vm: VirtualMachine, service: VMService) -> None:
    """Save changed ports for applying, holding the exposure's address of the quota.

    It holds it already, unless Kubernetes refused the Service before it ever existed (the
    address went back then): only in that case does reserving check the quota again.
    """
    if service.state in {VMService.State.FAILED, VMService.State.DELETING}:
        service.state, service.message = VMService.State.PENDING, ""
    service.save(update_fields=["ports", "deletion_requested_at", "state", "message", "updated_at"])
    _reserve(vm.tenant, service.quota_subject, SERVICE_QUOTA_AMOUNTS)


@transaction.atomic
def vm_expose(*, actor: Actor, vm: VirtualMachine, ports: Sequence[PortSpec]) -> VMService:
    """Make ``ports`` reachable on a public address of the tenant's MetalLB share.

    The first exposed port takes one load-balancer IP of the quota; more ports share it.
    A port already exposed is forwarded anew.
    """
    locked = _locked(vm)
    _require(locked, "expose", "ports")
    wanted = checked_ports(ports)
    if not wanted:
        raise ValidationError({"ports": "Name at least one port to expose."})
    service = vm_service_of(locked)
    before = list(service.ports) if service is not None else []
    current = [] if service is None or service.deletion_requested_at else before
    merged = {(p.protocol, p.port): p for p in map(PortSpec.from_dict, current)}
    merged.update({(p.protocol, p.port): p for p in wanted})
    after = checked_ports(merged.values())  # also: not too many, all told
    if service is None:
        service = VMService.objects.create(vm=locked, ports=[p.as_dict() for p in after])
        locked.service = service
    else:
        # Asking again while a removal is under way keeps the Service (and its address).
        service.ports = [p.as_dict() for p in after]
        service.deletion_requested_at = None
    _apply_again(locked, service)
    _audit(actor, "expose", locked, _ports_changes(before, after))
    vm_refresh(locked)
    provision_after_commit(locked.pk)
    return service


@transaction.atomic
def vm_unexpose(
    *, actor: Actor, vm: VirtualMachine, ports: Sequence[tuple[str, int]] | None = None
) -> VMService | None:
    """Stop exposing ``ports`` ((protocol, port) pairs; None: all of them).

    With no port left the Service goes, and its address returns to the quota once
    Kubernetes confirms it is gone. Returns the exposure while it still exists.
    """
    locked = _locked(vm)
    _require(locked, "unexpose", "ports")
    service = vm_service_of(locked)
    if service is None or service.deletion_requested_at is not None:
        raise ValidationError({"ports": "No port of this virtual machine is exposed."})
    exposed = {(p["protocol"], p["port"]): p for p in service.ports}
    dropping = set(exposed) if ports is None else {(proto.upper(), port) for proto, port in ports}
    unknown = sorted(dropping - set(exposed))
    if unknown:
        listed = ", ".join(f"{port}/{proto}" for proto, port in unknown)
        raise ValidationError({"ports": f"Not exposed: {listed}."})
    before = list(service.ports)
    service.ports = [port for key, port in exposed.items() if key not in dropping]
    if service.ports:
        _apply_again(locked, service)
    else:
        service.ports = before  # the Service keeps its ports until it is gone
        service.deletion_requested_at = timezone.now()
        service.save(update_fields=["deletion_requested_at", "updated_at"])
    remaining = [] if service.deletion_requested_at else service.ports
    _audit(
        actor,
        "unexpose",
        locked,
        _ports_changes(before, [PortSpec.from_dict(p) for p in remaining]),
    )
    vm_refresh(locked)
    if service.deletion_requested_at and settings.KUBE_MODE == "off":
        service_remove_finish(vm_id=locked.pk)  # no Kubernetes: nothing to wait for
        return None
    provision_after_commit(locked.pk)
    return service


# --- Retrying -------------------------------------------------------------------------------


@transaction.atomic
def vm_retry(*, actor: Actor, vm: VirtualMachine) -> VirtualMachine:
    """Try a VM Kubernetes refused (Failed) again: reserve its quota again and re-apply.

    The refusal gave its quota back, so it has to fit again (a refusal names the field).
    Exposed ports are not restored: their Service went with the failure, and the tenant
    exposes them again once the VM runs (the page says so).
    """
    locked = _locked(vm)
    _require(locked, "retry")
    _reserve(
        locked.tenant,
        locked.quota_subject,
        vm_quota_amounts(instance_type=locked.instance_type, disk_gib=locked.disk_gib),
    )
    _audit(actor, "retry", locked, {"previous_error": locked.apply_error})
    # Provisioning skips a VM with an error that was never applied: clearing both is what
    # lets the task apply it again.
    locked.apply_error = ""
    locked.applied_at = None
    locked.save(update_fields=["apply_error", "applied_at", "updated_at"])
    vm_refresh(locked)
    provision_after_commit(locked.pk)
    return locked


# --- Deleting -------------------------------------------------------------------------------


@transaction.atomic
def vm_delete(*, actor: Actor, vm: VirtualMachine, confirm_name: str) -> bool:
    """Delete a VM whose name was typed to confirm.

    Its objects go first; the quota and the row only once Kubernetes confirms the VM, its
    root disk (DataVolume and claim), its cloud-init Secret and its Service are gone
    (``vms.tasks.delete_vm``). Returns True when the VM is gone already (no Kubernetes
    configured: there is nothing to wait for).
    """
    locked = _locked(vm)
    _require(locked, "delete")
    if confirm_name.strip() != locked.name:
        raise ValidationError(
            {"confirm_name": f"Type the virtual machine's name, {locked.name}, to confirm."}
        )
    _audit(actor, "delete", locked)
    locked.deletion_requested_at = timezone.now()
    locked.save(update_fields=["deletion_requested_at", "updated_at"])
    service = vm_service_of(locked)
    if service is not None and service.deletion_requested_at is None:
        service.deletion_requested_at = locked.deletion_requested_at
        service.save(update_fields=["deletion_requested_at", "updated_at"])
    vm_refresh(locked)
    if settings.KUBE_MODE == "off":
        vm_delete_finish(vm_id=locked.pk, audited=False)
        return True
    delete_after_commit(locked.pk)
    return False


# --- SSH keys -------------------------------------------------------------------------------


@transaction.atomic
def ssh_key_create(*, actor: Actor, name: str, public_key: str) -> SSHKey:
    """Add a public key to the acting user's keys."""
    user = actor.user
    if user is None:
        raise ValidationError({NON_FIELD_ERRORS: "Only a signed-in user can add SSH keys."})
    errors: dict[str, list[str]] = {}
    name = name.strip()
    if not name:
        errors["name"] = ["Give the key a name, e.g. the laptop it lives on."]
    elif SSHKey.objects.filter(user=user, name=name).exists():
        errors["name"] = [f"You already have a key named {name}."]
    try:
        parsed = parse_public_key(public_key)
    except ValidationError as error:
        errors.update(error.message_dict)
    else:
        duplicate = SSHKey.objects.filter(user=user, fingerprint=parsed.fingerprint).first()
        if duplicate is not None:
            errors["public_key"] = [f"You added this key already, as {duplicate.name}."]
    if errors:
        raise ValidationError(errors)
    key = SSHKey(
        user=user,
        name=name,
        public_key=parsed.line,
        key_type=parsed.key_type,
        bits=parsed.bits,
        fingerprint=parsed.fingerprint,
    )
    key.full_clean(validate_constraints=False)
    try:
        with transaction.atomic():
            key.save()
    except IntegrityError as error:  # the same name or key, committed in between
        raise ValidationError({"name": f"You already have a key named {name}."}) from error
    audit_record(
        actor=actor,
        action="create",
        tenant=None,
        target=key,
        changes={"name": name, "fingerprint": key.fingerprint, "type": key.key_type},
    )
    return key


@transaction.atomic
def ssh_key_rename(*, actor: Actor, key: SSHKey, name: str) -> SSHKey:
    name = name.strip()
    if not name:
        raise ValidationError({"name": "Give the key a name."})
    if name == key.name:
        return key
    if SSHKey.objects.filter(user_id=key.user_id, name=name).exclude(pk=key.pk).exists():
        raise ValidationError({"name": f"You already have a key named {name}."})
    before = key.name
    key.name = name
    key.save(update_fields=["name"])
    audit_record(
        actor=actor, action="update", tenant=None, target=key, changes={"name": [before, name]}
    )
    return key


@transaction.atomic
def ssh_key_delete(*, actor: Actor, key: SSHKey) -> None:
    """Remove a key. VMs created with it keep it: cloud-init installed it already."""
    audit_record(
        actor=actor,
        action="delete",
        tenant=None,
        target=key,
        changes={"name": key.name, "fingerprint": key.fingerprint},
    )
    key.delete()


# --- Catalog --------------------------------------------------------------------------------


#: What an operator sets on each catalog entry (the API, the console's form and the audit
#: trail all name these).
VM_IMAGE_FIELDS = (
    "name",
    "display_name",
    "os",
    "source_kind",
    "source",
    "default_login_user",
    "min_disk_gib",
    "description",
    "active",
)
STORAGE_CLASS_FIELDS = ("name", "kubernetes_name", "description", "is_default")


def vm_image_check(image: VMImage) -> None:
    """The source must suit its kind (the admin's form calls this too)."""
    from vms.models import HTTP_URL, IMAGE_REFERENCE

    source = image.source.strip()
    if image.source_kind == VMImage.SourceKind.HTTP:
        if not HTTP_URL.match(source):
            raise ValidationError({"source": "Use an http:// or https:// URL of a disk image."})
    elif not IMAGE_REFERENCE.match(source.removeprefix("docker://")):
        raise ValidationError(
            {"source": "Use an image reference such as quay.io/containerdisks/ubuntu:24.04."}
        )


@transaction.atomic
def vm_image_save(*, actor: Actor, image: VMImage) -> VMImage:
    """Create or change an image. VMs made from it keep their disks; new ones get the change."""
    image.source = image.source.strip()
    vm_image_check(image)
    audited_save(
        actor=actor,
        row=image,
        fields=VM_IMAGE_FIELDS,
    )
    return image


def storage_class_check(storage_class: StorageClass) -> None:
    """Refuse changes the catalog must not take (the admin's form calls this too)."""
    stored = StorageClass.objects.filter(pk=storage_class.pk).first() if storage_class.pk else None
    if stored is None:
        return
    if stored.is_default and not storage_class.is_default:
        raise ValidationError({"is_default": "Make another storage class the default first."})
    if stored.kubernetes_name != storage_class.kubernetes_name and stored.vms.exists():
        # The disks made in it are there: a new name would not move them.
        raise ValidationError(
            {"kubernetes_name": "In use by virtual machines: add a new storage class instead."}
        )


@transaction.atomic
def storage_class_save(*, actor: Actor, storage_class: StorageClass) -> StorageClass:
    """Create or change a storage class; making one the default demotes the previous one,
    and the first storage class is the default."""
    # Lock the current default: two operators swapping defaults at once queue up here.
    defaults = list(StorageClass.objects.select_for_update().filter(is_default=True))
    storage_class_check(storage_class)
    if not defaults:
        storage_class.is_default = True
    if storage_class.is_default:
        for previous in defaults:
            if previous.pk != storage_class.pk:
                previous.is_default = False
                audited_save(actor=actor, row=previous, fields=["is_default"])
    audited_save(
        actor=actor,
        row=storage_class,
        fields=STORAGE_CLASS_FIELDS,
    )
    return storage_class


# --- Console sessions -----------------------------------------------------------------------
# Who may open a console, and when, is decided before (OPERATE on the tenant, a running VM:
# ``vms.consumers``); these record the session. What passes through it is never recorded.


@transaction.atomic
def vm_console_opened(*, actor: Actor, vm: VirtualMachine, session: str) -> None:
    """Audit the start of a serial console session (``session`` pairs it with its end)."""
    _audit(actor, "open_console", vm, {"session": session})


@transaction.atomic
def vm_console_closed(
    *, actor: Actor, vm: VirtualMachine, session: str, duration_seconds: float
) -> None:
    """Audit the end of a serial console session and how long it lasted."""
    _audit(
        actor,
        "close_console",
        vm,
        {"session": session, "duration_seconds": round(max(duration_seconds, 0.0), 1)},
    )
