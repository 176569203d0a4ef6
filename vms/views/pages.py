"""A tenant's VM pages: the list, the dashboard summary, the create form and the detail page.

Live like the clusters pages: a frame stays in the page and reloads its inside through the
same view (``partial_templates``) when the tenant's websocket says a VM changed
(``portal:vm.changed``) or the quota moved (``portal:quota``), with
``hx-sync="this:queue last"`` so a burst of events ends on the latest state.

The pages are those every kind of object has (``tenants.views.objects``); this module says
which VMs, how they read and which service creates one.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db.models import QuerySet
from django.http import QueryDict

from clusters.selectors import offered_instance_types
from tenants.audit import Actor
from tenants.selectors import QuotaUsage, object_activity
from tenants.views.base import current_user
from tenants.views.objects import (
    QUOTA_PREVIEW,
    ObjectCreateView,
    ObjectDetailView,
    ObjectKind,
    ObjectKindView,
    ObjectListView,
    ObjectRow,
    ObjectSummaryView,
    ObjectView,
    PreviewView,
)
from vms.forms import VMFilterForm, VMForm
from vms.models import VirtualMachine
from vms.selectors import (
    offered_images,
    storage_classes,
    vm_quota_preview,
    vm_service_of,
    vms_for,
)
from vms.services import vm_create
from vms.spec import VMSpec
from vms.views.display import (
    VM_STATES,
    disk_import,
    service_message,
    state_badge,
    timeline_entries,
    vm_actions,
    vm_activity_entries,
    vm_capacity,
    vm_preview,
    vm_rows,
)

ACTIVITY_ROWS = 12

VMS = ObjectKind(
    prefix="vm",
    noun="virtual machine",
    plural="virtual machines",
    icon="vm",
    states=VM_STATES,
    coming_up="boot",
)

# Ids of the live frames (the htmx targets whose inside the views render alone).
RESULTS = VMS.named("results")
CAPACITY = VMS.named("capacity")
SSH_KEYS = VMS.named("ssh-keys")
CREATE_FORM = VMS.named("form")
PANEL = VMS.named("panel")


class VMsView(ObjectKindView):
    """A page about the tenant's VMs: those the caller may act on with ``required_action``
    (``vms_for``, the scoping point)."""

    kind = VMS

    def objects(self) -> QuerySet[VirtualMachine]:
        return vms_for(current_user(self.request), self.tenant, self.required_action)

    def rows(self, objects: Iterable[VirtualMachine]) -> list[ObjectRow]:
        return vm_rows(objects)


class VMListView(VMsView, ObjectListView):
    """``/t/<slug>/vms/``: the table (with boxes to tick for bulk power actions) and the
    quota left for new VMs."""

    template_name = "vms/list.html"
    partial_templates = {RESULTS: "vms/_results.html", CAPACITY: "vms/_capacity.html"}
    filter_form = VMFilterForm

    def capacity(self) -> list[QuotaUsage]:
        return vm_capacity(self.tenant)


class VMSummaryView(VMsView, ObjectSummaryView):
    """The VMs card of the tenant dashboard."""

    template_name = "vms/_summary.html"


# --- Creating -------------------------------------------------------------------------------


class VMCreateView(VMsView, ObjectCreateView[VirtualMachine]):
    """``/t/<slug>/vms/new/``: the form, its live quota preview, the SSH key choices again
    (GET aimed at ``#vm-ssh-keys``, after a key was added in another tab) and the request."""

    template_name = "vms/create.html"
    partial_templates = {
        CREATE_FORM: "vms/_create_form.html",
        QUOTA_PREVIEW: "vms/_quota_preview.html",
        SSH_KEYS: "vms/_ssh_key_choices.html",
    }
    refreshed_frames = frozenset({QUOTA_PREVIEW, SSH_KEYS})

    def make_form(self, data: QueryDict | None) -> VMForm:
        return VMForm(data, user=current_user(self.request))

    def catalog_ready(self) -> bool:
        return (
            offered_images().exists()
            and offered_instance_types().exists()
            and storage_classes().exists()
        )

    def preview(self, spec: VMSpec) -> PreviewView:
        return vm_preview(vm_quota_preview(self.tenant, spec), spec)

    def create(self, actor: Actor, spec: VMSpec) -> VirtualMachine:
        return vm_create(actor=actor, tenant=self.tenant, spec=spec)


# --- One VM ---------------------------------------------------------------------------------


class VMView(VMsView, ObjectView[VirtualMachine]):
    """A page about one VM of the tenant in the URL (another tenant's is a 404)."""

    @property
    def vm(self) -> VirtualMachine:
        return self.object


class VMDetailView(VMView, ObjectDetailView[VirtualMachine]):
    """``/t/<slug>/vms/<pk>/``: state, disk import, timeline, addresses, facts, actions and
    action log.

    ``#vm-panel`` reloads on ``portal:vm.changed`` events for this VM; when the VM is gone
    (deleted under an open page) the panel says so instead.
    """

    template_name = "vms/detail.html"
    partial_templates = {PANEL: "vms/_panel_live.html"}
    live_panel = PANEL
    gone_template = "vms/_gone.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        vm = self.vm
        keys = list(vm.ssh_keys.all())
        context.update(
            badge=state_badge(vm),
            progress=disk_import(vm),
            timeline=timeline_entries(vm),
            actions=vm_actions(vm, self.access),
            activity=vm_activity_entries(object_activity(vm), ACTIVITY_ROWS),
            service=vm_service_of(vm),
            service_said=service_message(vm_service_of(vm)),
            ssh_keys=keys,
            # Keys installed at creation whose rows their owners have since removed.
            removed_keys=max(len(vm.authorized_keys) - len(keys), 0),
        )
        return context
