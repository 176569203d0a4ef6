"""Actions on virtual machines, for tenant members and admins.

Each action on one VM is a ``ConfirmActionView``: GET asks (a dialog over the detail page,
or a page of its own without JavaScript), POST calls the service, whose refusals show in the
dialog on the field to change. Viewers get 403, other tenants' VMs 404 (``VMView``).

Bulk power actions come from the list's ticked rows: each VM is handled on its own, the
outcome of each is a message, and the table comes back with nothing ticked.
"""

from __future__ import annotations

from typing import Any, ClassVar
from urllib.parse import urlsplit

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, QueryDict
from django.urls import reverse
from django.utils.functional import cached_property

from tenants.access import Action
from tenants.audit import Actor
from tenants.views.base import Confirmation, current_user, is_htmx
from tenants.views.objects import ObjectActionView, ObjectDeleteView
from vms.forms import BulkPowerForm, ExposeForm, UnexposeForm
from vms.models import VirtualMachine
from vms.selectors import power_targets, vm_expose_quota_preview, vm_service_of
from vms.services import (
    POWER_ACTIONS,
    PowerOutcome,
    vm_bulk_power,
    vm_delete,
    vm_expose,
    vm_retry,
    vm_unexpose,
)
from vms.views.display import expose_preview
from vms.views.pages import VMListView, VMView


class VMActionView(VMView, ObjectActionView[VirtualMachine]):
    """A dialog acting on one VM of the tenant in the URL."""


# --- Power ----------------------------------------------------------------------------------

#: What each power action asks and says, by action: (title, message, button, done).
POWER_WORDING: dict[str, tuple[str, str, str, str]] = {
    "start": (
        "Start {name}?",
        "It boots from its disk as it was left.",
        "Start",
        "{name} is starting.",
    ),
    "stop": (
        "Stop {name}?",
        "KubeVirt shuts the guest down, as if its power button were pressed. Its disk and "
        "its quota are kept, so starting it again always fits.",
        "Stop",
        "{name} is stopping.",
    ),
    "restart": (
        "Restart {name}?",
        "The running instance is replaced by a new one: the guest reboots, its disk is kept.",
        "Restart",
        "{name} is restarting.",
    ),
}


class VMPowerView(VMActionView):
    """Start, stop or restart one VM; ``power`` comes from the URL conf."""

    power: ClassVar[str] = "start"

    def confirmation(self) -> Confirmation:
        title, message, button, _ = POWER_WORDING[self.power]
        return Confirmation(
            title=title.format(name=self.vm.name),
            message=message,
            button=button,
            cancel_url=self.detail_url(),
            danger=self.power == "stop",
        )

    def perform(self) -> str:
        POWER_ACTIONS[self.power](actor=self.actor, vm=self.vm)
        messages.success(self.request, POWER_WORDING[self.power][3].format(name=self.vm.name))
        return self.detail_url()


# --- Retrying -------------------------------------------------------------------------------


class VMRetryView(VMActionView):
    """Apply a VM Kubernetes refused again; a quota that no longer fits shows in the dialog."""

    def confirmation(self) -> Confirmation:
        return Confirmation(
            title=f"Retry {self.vm.name}?",
            message=(
                "The portal applies the virtual machine to Kubernetes again. Its quota is "
                "reserved again, so it has to fit. Exposed ports, if it had any, are not "
                "restored: expose them again once it runs."
            ),
            button="Retry",
            cancel_url=self.detail_url(),
            danger=False,
        )

    def perform(self) -> str:
        vm_retry(actor=self.actor, vm=self.vm)
        messages.success(self.request, f"{self.vm.name} is being provisioned again.")
        return self.detail_url()


# --- Exposed ports --------------------------------------------------------------------------


class VMExposeView(VMActionView):
    """Ports to reach from outside; the dialog shows the load-balancer IP it takes."""

    @cached_property
    def form(self) -> ExposeForm:
        return ExposeForm(self.submitted_data())

    def get_form(self) -> forms.Form:
        return self.form

    def confirmation(self) -> Confirmation:
        service = vm_service_of(self.vm)
        if service is not None and service.public_ip and service.deletion_requested_at is None:
            where = f"on {service.public_ip}, the address it has already"
        else:
            where = "on a public address of the tenant's load-balancer share"
        return Confirmation(
            title=f"Expose ports of {self.vm.name}",
            message=f"Anyone on the network can reach the ports you name {where}.",
            button="Expose",
            cancel_url=self.detail_url(),
            danger=False,
        )

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context.update(
            confirmation_detail="vms/_expose_quota.html",
            preview=expose_preview(vm_expose_quota_preview(self.vm)),
        )
        return context

    def perform(self) -> str:
        vm_expose(actor=self.actor, vm=self.vm, ports=self.form.cleaned_data["ports"])
        messages.success(self.request, f"Ports of {self.vm.name} are being exposed.")
        return self.detail_url()


class VMUnexposeView(VMActionView):
    @cached_property
    def form(self) -> UnexposeForm:
        return UnexposeForm(self.submitted_data(), service=vm_service_of(self.vm))

    def get_form(self) -> forms.Form:
        return self.form

    def confirmation(self) -> Confirmation:
        return Confirmation(
            title=f"Withdraw exposed ports of {self.vm.name}?",
            message=(
                "The ports you tick stop being reachable from outside. Withdrawing them all "
                "gives the public address back to the quota."
            ),
            button="Withdraw",
            cancel_url=self.detail_url(),
        )

    def perform(self) -> str:
        vm_unexpose(actor=self.actor, vm=self.vm, ports=self.form.cleaned_data["ports"])
        if self.form.withdraws_all:
            messages.success(self.request, f"{self.vm.name} is no longer exposed.")
        else:
            messages.success(self.request, f"The chosen ports of {self.vm.name} are withdrawn.")
        return self.detail_url()


# --- Deleting -------------------------------------------------------------------------------


class VMDeleteView(VMActionView, ObjectDeleteView[VirtualMachine]):
    def confirmation(self) -> Confirmation:
        return Confirmation(
            title=f"Delete {self.vm.name}?",
            message=(
                "The virtual machine, its disk and everything on it, its cloud-init and its "
                "exposed ports are deleted for good. The quota comes back once Kubernetes has "
                "removed it all."
            ),
            button="Delete virtual machine",
            cancel_url=self.detail_url(),
        )

    def delete(self, confirm_name: str) -> bool:
        return vm_delete(actor=self.actor, vm=self.vm, confirm_name=confirm_name)


# --- Bulk power -----------------------------------------------------------------------------

#: What the list says about the VMs a bulk action went through for.
BULK_DONE = {"start": "Starting", "stop": "Stopping", "restart": "Restarting"}


class VMBulkPowerView(VMListView):
    """POST from the list's toolbar: the ticked VMs (``ids``) and the ``action`` button.

    An htmx request gets the list's table back, as the page's address filters it, with no
    box ticked (a fresh selection for the next action) and the outcomes as toasts; without
    JavaScript the browser goes back to the list.
    """

    required_action = Action.OPERATE
    http_method_names = ["post"]
    template_name = "vms/_results.html"

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        form = BulkPowerForm(request.POST)
        if form.is_valid():
            self.power(form.cleaned_data["ids"], form.cleaned_data["action"])
        else:
            for problem in form.errors.as_data().values():
                for error in problem:
                    messages.error(request, " ".join(error.messages))
        if not is_htmx(request):
            return HttpResponseRedirect(reverse("vm-list", args=[self.tenant.slug]))
        return self.render_to_response(self.get_context_data(clear_selection=True))

    def list_params(self) -> QueryDict:
        """The list's own address (its search, filter and page) says what to show again."""
        current_url = self.request.htmx.current_url or ""  # type: ignore[attr-defined]
        return QueryDict(urlsplit(current_url).query)

    def power(self, ids: list[int], action: str) -> None:
        """Act on the VMs of this tenant among ``ids``; one message per refusal."""
        targets = power_targets(current_user(self.request), ids)
        ours = [vm for vm in targets.vms if vm.tenant_id == self.tenant.pk]
        names = {vm.pk: vm.name for vm in ours}
        outcomes: list[PowerOutcome] = vm_bulk_power(actor=self.actor, vms=ours, action=action)
        done = [names[outcome.vm_id] for outcome in outcomes if outcome.ok]
        if done:
            messages.success(self.request, f"{BULK_DONE[action]} {', '.join(done)}.")
        for outcome in outcomes:
            if not outcome.ok:
                messages.error(self.request, f"{names[outcome.vm_id]}: {outcome.message}")
        # Ids outside this tenant (or the caller's reach) are not found here.
        for pk in ids:
            if pk not in names:
                messages.error(
                    self.request, f"Virtual machine #{pk}: not found in {self.tenant.name}."
                )

    @property
    def actor(self) -> Actor:
        return Actor.from_request(self.request)
