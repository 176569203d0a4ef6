"""A tenant's VM pages: the list, the dashboard summary, the create form and the detail page.

Live like the clusters pages: a frame stays in the page and reloads its inside through the
same view (``partial_templates``) when the tenant's websocket says a VM changed
(``portal:vm.changed``) or the quota moved (``portal:quota``), with
``hx-sync="this:queue last"`` so a burst of events ends on the latest state.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import Count, QuerySet
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils.functional import cached_property

from clusters.selectors import offered_instance_types
from tenants.access import Action
from tenants.audit import Actor
from tenants.models import Tenant
from tenants.views.base import (
    TenantView,
    apply_service_error,
    current_user,
    htmx_target,
    redirect_after_post,
)
from tenants.views.objects import LivePanelView, PreviewView, create_refusal
from vms.forms import VMFilterForm, VMForm
from vms.models import VirtualMachine
from vms.selectors import (
    offered_images,
    storage_classes,
    vm_activity,
    vm_quota_preview,
    vm_service_of,
    vm_spec_with_defaults,
    vms_for,
)
from vms.services import vm_create
from vms.spec import VMSpec
from vms.views.display import (
    STATE_GROUPS,
    disk_import,
    state_badge,
    timeline_entries,
    vm_actions,
    vm_activity_entries,
    vm_capacity,
    vm_preview,
    vm_rows,
)

VMS_PER_PAGE = 25
ACTIVITY_ROWS = 12
SUMMARY_ROWS = 5

# Ids of the live frames (the htmx targets whose inside the views render alone).
RESULTS = "vm-results"
CAPACITY = "vm-capacity"
QUOTA_PREVIEW = "quota-preview"
SSH_KEYS = "vm-ssh-keys"
CREATE_FORM = "vm-form"
PANEL = "vm-panel"


def vm_url(vm: VirtualMachine) -> str:
    return reverse("vm-detail", args=[vm.tenant.slug, vm.pk])


# --- The list -------------------------------------------------------------------------------


class VMListView(TenantView):
    """``/t/<slug>/vms/``: the table (filtered and paginated on the server, with boxes to
    tick for bulk power actions) and the quota left for new VMs, each reloading on its own
    event."""

    template_name = "vms/list.html"
    partial_templates = {RESULTS: "vms/_results.html", CAPACITY: "vms/_capacity.html"}

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        target = htmx_target(self.request)
        if target != RESULTS:
            context.update(
                capacity=vm_capacity(self.tenant),
                create_refusal=create_refusal(self.tenant, self.access),
            )
        if target != CAPACITY:
            context.update(self.results())
        return context

    def list_params(self) -> QueryDict:
        """The search, state filter and page to show."""
        return self.request.GET

    def results(self) -> dict[str, Any]:
        """One page of the tenant's VMs, as the list's parameters filter it."""
        params = self.list_params()
        filters = VMFilterForm(params)
        term, state = "", ""
        if filters.is_valid():
            term, state = filters.cleaned_data["q"].strip(), filters.cleaned_data["state"]
        vms = vms_for(current_user(self.request), self.tenant)
        if term:
            vms = vms.filter(name__icontains=term)
        if state:
            vms = vms.filter(state=state)
        page = Paginator(vms.order_by("name", "id"), VMS_PER_PAGE).get_page(params.get("page"))
        return {
            "filter_form": filters,
            "page": page,
            "rows": vm_rows(page.object_list),
            "filtered": bool(term or state),
        }


class VMSummaryView(TenantView):
    """The VMs card of the tenant dashboard (a fragment it loads and reloads live)."""

    template_name = "vms/_summary.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        vms = VirtualMachine.objects.for_user(current_user(self.request), Action.VIEW).filter(
            tenant=self.tenant
        )
        by_state = dict(
            vms.order_by()
            .values_list("state")
            .annotate(count=Count("id"))
            .values_list("state", "count")
        )
        counts = {
            group: sum(by_state.get(state, 0) for state in states)
            for group, states in STATE_GROUPS.items()
        }
        recent = vms.select_related("instance_type").order_by("-updated_at", "-id")[:SUMMARY_ROWS]
        context.update(
            total=sum(by_state.values()),
            counts=counts,
            recent=vm_rows(recent),
            create_refusal=create_refusal(self.tenant, self.access),
        )
        return context


# --- Creating -------------------------------------------------------------------------------


def preview_of(vm_form: VMForm, tenant: Tenant) -> PreviewView | None:
    """The quota preview of what ``vm_form`` asks for (of the defaults while it is unbound)."""
    spec: VMSpec | None
    if vm_form.is_bound:
        spec = vm_form.preview_spec()
    else:
        try:
            spec = vm_spec_with_defaults(name="")
        except ValidationError:  # an empty catalog: nothing to preview
            spec = None
    return vm_preview(vm_quota_preview(tenant, spec), spec) if spec else None


class VMCreateView(TenantView):
    """``/t/<slug>/vms/new/``: the form, its live quota preview (GET aimed at
    ``#quota-preview`` with the form's quota inputs), the SSH key choices again (GET aimed at
    ``#vm-ssh-keys``, after a key was added in another tab) and the request itself (POST)."""

    required_action = Action.OPERATE
    template_name = "vms/create.html"
    partial_templates = {
        CREATE_FORM: "vms/_create_form.html",
        QUOTA_PREVIEW: "vms/_quota_preview.html",
        SSH_KEYS: "vms/_ssh_key_choices.html",
    }

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        user = current_user(self.request)
        if "form" not in context:
            refreshing = htmx_target(self.request) in {QUOTA_PREVIEW, SSH_KEYS}
            context["form"] = VMForm(self.request.GET if refreshing else None, user=user)
        form: VMForm = context["form"]
        context.update(
            preview=preview_of(form, self.tenant),
            invalid_quota_inputs=form.invalid_quota_inputs if form.is_bound else [],
            catalog_ready=(
                offered_images().exists()
                and offered_instance_types().exists()
                and storage_classes().exists()
            ),
        )
        return context

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        form = VMForm(request.POST, user=current_user(request))
        if form.is_valid():
            try:
                vm = vm_create(
                    actor=Actor.from_request(request), tenant=self.tenant, spec=form.spec()
                )
            except ValidationError as error:
                apply_service_error(form, error)
            else:
                messages.success(request, f"Virtual machine {vm.name} was requested.")
                return redirect_after_post(request, vm_url(vm))
        # Everything typed comes back, with each refusal on the field to change.
        return self.render_to_response(self.get_context_data(form=form))


# --- One VM ---------------------------------------------------------------------------------


class VMView(TenantView):
    """A page about one VM of the tenant in the URL.

    The VM is looked up among those the caller may act on with ``required_action``
    (``vms_for``, the scoping point): another tenant's VM is a 404 like a missing one.
    """

    def vms(self) -> QuerySet[VirtualMachine]:
        return vms_for(current_user(self.request), self.tenant, self.required_action)

    @cached_property
    def vm(self) -> VirtualMachine:
        found: VirtualMachine = get_object_or_404(self.vms(), pk=self.kwargs["pk"])
        return found

    def detail_url(self) -> str:
        return reverse("vm-detail", args=[self.tenant.slug, self.kwargs["pk"]])

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["vm"] = self.vm
        return context


class VMDetailView(VMView, LivePanelView):
    """``/t/<slug>/vms/<pk>/``: state, disk import, timeline, addresses, facts, actions and
    action log.

    ``#vm-panel`` reloads on ``portal:vm.changed`` events for this VM; when the VM is gone
    (deleted under an open page) the panel says so instead.
    """

    template_name = "vms/detail.html"
    partial_templates = {PANEL: "vms/_panel_live.html"}
    live_panel = PANEL
    gone_template = "vms/_gone.html"

    def live_object(self) -> VirtualMachine:
        return self.vm

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        vm = self.vm
        keys = list(vm.ssh_keys.all())
        context.update(
            badge=state_badge(vm),
            disk_import=disk_import(vm),
            timeline=timeline_entries(vm),
            actions=vm_actions(vm, self.access),
            activity=vm_activity_entries(vm_activity(vm), ACTIVITY_ROWS),
            service=vm_service_of(vm),
            ssh_keys=keys,
            # Keys installed at creation whose rows their owners have since removed.
            removed_keys=max(len(vm.authorized_keys) - len(keys), 0),
        )
        return context
