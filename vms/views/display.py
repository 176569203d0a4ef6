"""How the VM pages present what ``vms.selectors`` returns: state badges, rows, the disk
import's progress, the timeline, the action log's sentences, quota previews and the actions
a page offers (drawn with the pieces every object page shares, ``tenants.views.objects``).

Presentation only: which actions a VM's state allows is ``vms.selectors.vm_allowed_actions``'
answer (and the service's, which enforces it); this module words it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.db.models import QuerySet
from django.urls import reverse

from butler_portal.explain import Said, explain
from tenants.models import AuditEvent, QuotaResource, Tenant
from tenants.selectors import QuotaPreview, QuotaUsage, format_amount, quota_usage
from tenants.views.base import TenantAccess
from tenants.views.objects import (
    ActionOffer,
    ActivityEntry,
    ObjectRow,
    OfferWording,
    PreviewView,
    ProgressBar,
    StateBadge,
    StateGroup,
    StateStyles,
    TimelineEntry,
    activity_entries,
    preview_rows,
    tenant_state_refusal,
    timeline_of,
)
from vms.models import VirtualMachine, VMService
from vms.selectors import vm_allowed_actions, vm_service_of, vm_timeline
from vms.spec import VMSpec

State = VirtualMachine.State

#: States in which something visibly moves: the badge spins.
BUSY_STATES = frozenset({State.PROVISIONING, State.STARTING, State.STOPPING, State.DELETING})

VM_STATES = StateStyles(
    field="state",
    tones={
        State.PENDING: "grey",
        State.PROVISIONING: "blue",
        State.STARTING: "blue",
        State.RUNNING: "green",
        State.STOPPING: "blue",
        State.STOPPED: "grey",
        State.PAUSED: "amber",
        State.ERROR: "red",
        State.FAILED: "red",
        State.DELETING: "amber",
        State.UNKNOWN: "amber",
    },
    busy=BUSY_STATES,
    settled=State.RUNNING,
    resting=State.STOPPED,
    groups=(
        StateGroup("Running", "green", frozenset({State.RUNNING})),
        StateGroup("In progress", "blue", frozenset({State.PENDING, *BUSY_STATES})),
        StateGroup(
            "Need attention",
            "red",
            frozenset({State.ERROR, State.FAILED, State.UNKNOWN, State.PAUSED}),
        ),
        StateGroup("Stopped", "grey", frozenset({State.STOPPED})),
    ),
)
#: The quota a new VM draws on (clusters' worker nodes and addresses are not its business).
VM_QUOTA = (
    QuotaResource.VMS,
    QuotaResource.VCPU,
    QuotaResource.MEMORY_MIB,
    QuotaResource.STORAGE_GIB,
)


def state_badge(vm: VirtualMachine) -> StateBadge:
    return VM_STATES.badge(vm.state, vm.get_state_display())


@dataclass(frozen=True)
class VMRow(ObjectRow):
    """One VM of a list, with its public address beside the model's fields."""

    @property
    def public_ip(self) -> str:
        """The address its exposed ports answer on, once MetalLB assigned one."""
        service = vm_service_of(self.object)
        if service is None or service.deletion_requested_at is not None:
            return ""
        return service.public_ip or ""


def vm_rows(vms: Iterable[VirtualMachine]) -> list[ObjectRow]:
    return [VMRow(vm, state_badge(vm), VM_STATES.unsettled(vm.state, vm.reason)) for vm in vms]


def vm_capacity(tenant: Tenant) -> list[QuotaUsage]:
    """The quota left for new VMs, as gauges."""
    return [usage for usage in quota_usage(tenant) if usage.resource in VM_QUOTA]


# --- Disk import and timeline ---------------------------------------------------------------


#: DataVolume phases in which bytes are being copied (vms.lifecycle.DISK_IN_PROGRESS).
IMPORTING_PHASES = frozenset({"ImportInProgress", "CloneInProgress"})


def disk_import(vm: VirtualMachine) -> ProgressBar | None:
    """The root disk's import while CDI copies the image, else None."""
    percent = vm.disk_progress_percent
    if vm.disk_phase not in IMPORTING_PHASES or percent is None:
        return None
    # The bar's width for CSS has a dot, whatever the locale.
    shown = f"{min(max(percent, 0.0), 100.0):.1f}"
    return ProgressBar(
        label="Disk image imported",
        now=shown,
        max=100,
        percent=shown,
        text=f"Disk image {shown}% imported",
    )


def timeline_entries(vm: VirtualMachine) -> list[TimelineEntry]:
    return timeline_of(vm_timeline(vm), failed=vm.state == State.FAILED)


#: What a refused exposure says when Kubernetes' words are not known.
SERVICE_REFUSED = (
    "Kubernetes did not accept the exposed ports. Withdraw them and expose them again, or ask "
    "the platform operators."
)


def service_message(service: VMService | None) -> Said:
    """What the exposure says: the portal's own words while it waits, Kubernetes' refusal
    (kept as the raw text) in plain words once it failed."""
    if service is None or not service.message:
        return Said("")
    if service.state == VMService.State.FAILED:
        return explain(service.message, fallback=SERVICE_REFUSED)
    return Said(service.message)


# --- Quota preview --------------------------------------------------------------------------


def _explanation(resource: str, spec: VMSpec) -> str:
    size = spec.instance_type
    explanations: dict[str, str] = {
        QuotaResource.VMS: "This virtual machine",
        QuotaResource.VCPU: f"{size.vcpu} vCPU of {size.name}",
        QuotaResource.MEMORY_MIB: (
            f"{format_amount(QuotaResource.MEMORY_MIB, size.memory_mib)} of {size.name}"
        ),
        QuotaResource.STORAGE_GIB: f"{spec.disk_gib} GiB root disk",
    }
    return explanations.get(resource, "")


def vm_preview(preview: QuotaPreview, spec: VMSpec) -> PreviewView:
    rows = preview_rows(preview, lambda resource: _explanation(resource, spec))
    return PreviewView(rows=rows, fits=preview.fits)


def expose_preview(preview: QuotaPreview) -> PreviewView:
    """The load-balancer IP exposing takes (nothing when the VM has its address already)."""
    rows = preview_rows(
        preview, lambda resource: "One public address for all its ports", only_added=True
    )
    return PreviewView(rows=rows, fits=preview.fits)


# --- Action log -----------------------------------------------------------------------------

#: Audit actions on a VM as a sentence after the actor's name ("bob stopped it").
ACTIVITY_PHRASES: dict[str, str] = {
    "create": "requested the virtual machine",
    "start": "started it",
    "stop": "stopped it",
    "restart": "restarted it",
    "retry": "retried provisioning",
    "expose": "exposed ports",
    "unexpose": "withdrew exposed ports",
    "delete": "asked to delete the virtual machine",
    "delete_complete": "finished deleting the virtual machine",
    "fail": "gave up provisioning",
    "open_console": "opened the console",
    "close_console": "closed the console",
}
#: Actions whose recorded changes are [before, after] pairs.
CHANGE_PAIRS = frozenset({"start", "stop", "expose", "unexpose"})


def vm_activity_entries(events: QuerySet[AuditEvent], limit: int) -> list[ActivityEntry]:
    return activity_entries(events, limit, phrases=ACTIVITY_PHRASES, change_pairs=CHANGE_PAIRS)


# --- Actions --------------------------------------------------------------------------------


#: How each action on a VM reads; the hints that depend on the VM come with it.
OFFERS: dict[str, OfferWording] = {
    "start": OfferWording("Start", "play", "Boots it again with its disk as it was left."),
    "stop": OfferWording("Stop", "pause", "Shuts the guest down; its quota stays reserved."),
    "restart": OfferWording(
        "Restart", "refresh", "Replaces the running instance; the disk is kept."
    ),
    "retry": OfferWording(
        "Retry",
        "refresh",
        "Applies it again (its quota is reserved again). Exposed ports, if it had any, are "
        "not restored: expose them again once it runs.",
    ),
    "console": OfferWording(
        "Open console", "terminal", "The serial console, in the browser.", dialog=False
    ),
    "expose": OfferWording("Expose ports", "link", "Takes one load-balancer IP of the quota."),
    "unexpose": OfferWording("Withdraw ports", "link-off", "The last port gives the address back."),
    "delete": OfferWording(
        "Delete virtual machine",
        "trash",
        "Its disk, cloud-init and ports go; the quota comes back.",
        danger=True,
    ),
}


def _hints(vm: VirtualMachine) -> dict[str, str]:
    """The hints that say more about this VM than the usual ones."""
    service = vm_service_of(vm)
    if service is None or service.deletion_requested_at is not None:
        return {}
    ports = ", ".join(f"{port['port']}/{port['protocol']}" for port in service.ports)
    address = f" on {service.public_ip}" if service.public_ip else ""
    return {"expose": f"Now {ports}{address}: add more."}


@dataclass(frozen=True)
class VMActions:
    """What the detail page offers: only what the VM's state allows, and nothing to viewers."""

    power: list[ActionOffer]
    access: list[ActionOffer]  # console and exposed ports
    delete: ActionOffer | None

    @property
    def any(self) -> bool:
        return bool(self.power or self.access or self.delete)


POWER_ORDER = ("retry", "start", "stop", "restart")  # what a failed VM needs comes first
ACCESS_ORDER = ("console", "expose", "unexpose")


def vm_actions(vm: VirtualMachine, access: TenantAccess) -> VMActions:
    if not access.can_operate:
        return VMActions(power=[], access=[], delete=None)
    allowed = vm_allowed_actions(vm)
    hints = _hints(vm)

    # A suspended tenant may only give back (stop, delete, withdraw ports) and look (console).
    def refused(key: str) -> str:
        return tenant_state_refusal(vm.tenant, key)

    def offered(keys: Iterable[str]) -> list[ActionOffer]:
        return [
            OFFERS[key].offer(
                key,
                reverse(f"vm-{key}", args=[vm.tenant.slug, vm.pk]),
                hint=hints.get(key, ""),
                refusal=refused(key),
            )
            for key in keys
            if key in allowed
        ]

    deletable = offered(["delete"])
    return VMActions(
        power=offered(POWER_ORDER),
        access=offered(ACCESS_ORDER),
        delete=deletable[0] if deletable else None,
    )
