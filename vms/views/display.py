"""How the VM pages present what ``vms.selectors`` returns: state badges, rows, the disk
import's progress, the timeline, the action log's sentences, quota previews and the actions
a page offers (drawn with the pieces every object page shares, ``tenants.views.objects``).

Presentation only: which actions a VM's state allows is ``vms.selectors.vm_allowed_actions``'
answer (and the service's, which enforces it); this module words it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

from django.db.models import QuerySet
from django.urls import reverse

from clusters.lifecycle import STEP_ACTIVE
from tenants.models import AuditEvent, QuotaResource, Tenant
from tenants.selectors import QuotaPreview, QuotaUsage, format_amount, quota_usage
from tenants.views.base import TenantAccess
from tenants.views.objects import (
    ActionOffer,
    ActivityEntry,
    PreviewView,
    StateBadge,
    TimelineEntry,
    activity_entries,
    preview_rows,
    tenant_state_refusal,
)
from vms.models import VirtualMachine, VMService
from vms.selectors import vm_allowed_actions, vm_service_of, vm_timeline
from vms.spec import VMSpec

State = VirtualMachine.State

#: Badge colour of each state (``badge-<tone>`` in portal.css).
STATE_TONES: dict[str, str] = {
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
}
#: States in which something visibly moves: the badge spins.
BUSY_STATES = frozenset({State.PROVISIONING, State.STARTING, State.STOPPING, State.DELETING})
#: How the dashboard groups states.
STATE_GROUPS: dict[str, frozenset[str]] = {
    "running": frozenset({State.RUNNING}),
    "in_progress": frozenset({State.PENDING, *BUSY_STATES}),
    "attention": frozenset({State.ERROR, State.FAILED, State.UNKNOWN, State.PAUSED}),
    "stopped": frozenset({State.STOPPED}),
}
#: The quota a new VM draws on (clusters' worker nodes and addresses are not its business).
VM_QUOTA = (
    QuotaResource.VMS,
    QuotaResource.VCPU,
    QuotaResource.MEMORY_MIB,
    QuotaResource.STORAGE_GIB,
)


def state_badge(vm: VirtualMachine) -> StateBadge:
    return StateBadge(
        label=vm.get_state_display(),
        tone=STATE_TONES.get(vm.state, "grey"),
        busy=vm.state in BUSY_STATES,
        value=vm.state,
    )


@dataclass(frozen=True)
class VMRow:
    """One VM of a list, with what its row shows beside the model's fields."""

    vm: VirtualMachine
    badge: StateBadge

    @property
    def shows_reason(self) -> bool:
        return self.vm.state != State.RUNNING and bool(self.vm.reason)

    @property
    def public_ip(self) -> str:
        """The address its exposed ports answer on, once MetalLB assigned one."""
        service = vm_service_of(self.vm)
        if service is None or service.deletion_requested_at is not None:
            return ""
        return service.public_ip or ""


def vm_rows(vms: Iterable[VirtualMachine]) -> list[VMRow]:
    return [VMRow(vm, state_badge(vm)) for vm in vms]


def vm_capacity(tenant: Tenant) -> list[QuotaUsage]:
    """The quota left for new VMs, as gauges."""
    return [usage for usage in quota_usage(tenant) if usage.resource in VM_QUOTA]


# --- Disk import and timeline ---------------------------------------------------------------


@dataclass(frozen=True)
class DiskImport:
    """The root disk's import while CDI copies the image (a progress bar), else None."""

    percent: float

    @property
    def width(self) -> str:
        """The bar's width for CSS (a dot, whatever the locale)."""
        return f"{self.percent:.1f}"

    @property
    def text(self) -> str:
        return f"Disk image {self.percent:.1f}% imported"


#: DataVolume phases in which bytes are being copied (vms.lifecycle.DISK_IN_PROGRESS).
IMPORTING_PHASES = frozenset({"ImportInProgress", "CloneInProgress"})


def disk_import(vm: VirtualMachine) -> DiskImport | None:
    percent = vm.disk_progress_percent
    if vm.disk_phase not in IMPORTING_PHASES or percent is None:
        return None
    return DiskImport(percent=min(max(percent, 0.0), 100.0))


def timeline_entries(vm: VirtualMachine) -> list[TimelineEntry]:
    # A VM Kubernetes refused waits for nothing: its steps in progress show as stopped.
    failed = vm.state == State.FAILED
    return [
        TimelineEntry(
            key=step.key,
            label=step.label,
            state="stopped" if failed and step.state == STEP_ACTIVE else step.state,
            message=step.message,
        )
        for step in vm_timeline(vm)
    ]


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


def _url(name: str, vm: VirtualMachine) -> str:
    return reverse(name, args=[vm.tenant.slug, vm.pk])


def _ports(service: VMService) -> str:
    return ", ".join(f"{port['port']}/{port['protocol']}" for port in service.ports)


def _offers(vm: VirtualMachine) -> dict[str, ActionOffer]:
    """Every action a VM may offer, worded for this VM."""
    service = vm_service_of(vm)
    exposed = service is not None and service.deletion_requested_at is None
    address = service.public_ip if exposed and service and service.public_ip else ""
    return {
        "start": ActionOffer(
            key="start",
            label="Start",
            icon="play",
            url=_url("vm-start", vm),
            hint="Boots it again with its disk as it was left.",
        ),
        "stop": ActionOffer(
            key="stop",
            label="Stop",
            icon="pause",
            url=_url("vm-stop", vm),
            hint="Shuts the guest down; its quota stays reserved.",
        ),
        "restart": ActionOffer(
            key="restart",
            label="Restart",
            icon="refresh",
            url=_url("vm-restart", vm),
            hint="Replaces the running instance; the disk is kept.",
        ),
        "console": ActionOffer(
            key="console",
            label="Open console",
            icon="terminal",
            url=_url("vm-console", vm),
            hint="The serial console, in the browser.",
            dialog=False,
        ),
        "expose": ActionOffer(
            key="expose",
            label="Expose ports",
            icon="link",
            url=_url("vm-expose", vm),
            hint=(
                f"Now {_ports(service)}{f' on {address}' if address else ''}: add more."
                if exposed and service
                else "Takes one load-balancer IP of the quota."
            ),
        ),
        "unexpose": ActionOffer(
            key="unexpose",
            label="Withdraw ports",
            icon="link-off",
            url=_url("vm-unexpose", vm),
            hint="The last port gives the address back.",
        ),
        "delete": ActionOffer(
            key="delete",
            label="Delete virtual machine",
            icon="trash",
            url=_url("vm-delete", vm),
            hint="Its disk, cloud-init and ports go; the quota comes back.",
            danger=True,
        ),
    }


@dataclass(frozen=True)
class VMActions:
    """What the detail page offers: only what the VM's state allows, and nothing to viewers."""

    power: list[ActionOffer]
    access: list[ActionOffer]  # console and exposed ports
    delete: ActionOffer | None

    @property
    def any(self) -> bool:
        return bool(self.power or self.access or self.delete)


POWER_ORDER = ("start", "stop", "restart")
ACCESS_ORDER = ("console", "expose", "unexpose")


def vm_actions(vm: VirtualMachine, access: TenantAccess) -> VMActions:
    if not access.can_operate:
        return VMActions(power=[], access=[], delete=None)
    allowed = set(vm_allowed_actions(vm))
    service = vm_service_of(vm)
    if service is None or service.deletion_requested_at is not None:
        allowed.discard("unexpose")  # nothing to withdraw
    offers = _offers(vm)

    # A suspended tenant may only give back (stop, delete, withdraw ports) and look (console).
    def refused(key: str) -> str:
        return "" if key == "console" else tenant_state_refusal(vm.tenant, key)

    def offered(keys: Iterable[str]) -> list[ActionOffer]:
        chosen = []
        for key in keys:
            if key not in allowed:
                continue
            offer = offers[key]
            if refusal := refused(key):
                offer = replace(offer, refusal=refusal)
            chosen.append(offer)
        return chosen

    deletable = offered(["delete"])
    return VMActions(
        power=offered(POWER_ORDER),
        access=offered(ACCESS_ORDER),
        delete=deletable[0] if deletable else None,
    )
