"""Tenant networks in the portal: each tenant's network panel, and the operator's address plan.

Tenants see their namespace, subnet and load-balancer addresses, refreshed live on
``portal:network.changed`` (``tenants.network`` publishes it whenever Kube-OVN or MetalLB
report something). Operators see every subnet pool and load-balancer range with what the
tenants hold of them, and add or remove pools and ranges; auditors see the same, read-only.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils.functional import cached_property

from tenants.audit import Actor
from tenants.models import LoadBalancerRange, SubnetPool, TenantNetwork
from tenants.network import (
    MAX_SUBNET_PREFIX_LENGTH,
    lb_range_create,
    lb_range_delete,
    subnet_pool_create,
    subnet_pool_delete,
)
from tenants.selectors import (
    AddressUsage,
    lb_range_usages,
    subnet_pool_usages,
    tenant_network_summary,
)
from tenants.views.base import (
    ConfirmActionView,
    Confirmation,
    TenantView,
    call_service,
    redirect_after_post,
)
from tenants.views.extensions import (
    TenantNavItem,
    register_dashboard_panel,
    register_tenant_nav_item,
)
from tenants.views.operator import ConsoleView

#: Badge colour of each network state (``badge-<tone>`` in portal.css).
NETWORK_STATE_TONES: dict[str, str] = {
    TenantNetwork.State.PENDING: "grey",
    TenantNetwork.State.PROVISIONING: "blue",
    TenantNetwork.State.READY: "green",
    TenantNetwork.State.FAILED: "red",
    TenantNetwork.State.DELETING: "amber",
}

#: The largest tenant subnet the form offers (/16); the API takes any size the pool fits.
LARGEST_OFFERED_SUBNET = 16


def register_network_pages() -> None:
    """Put the network into every tenant's navigation and dashboard (``AppConfig.ready``)."""
    register_tenant_nav_item(TenantNavItem("Network", "tenant-network", icon="network", order=80))
    register_dashboard_panel("tenants/network_card.html", order=10)


# --- A tenant's network --------------------------------------------------------------------


class TenantNetworkView(TenantView):
    """``/t/<slug>/network/``: a page of its own, and the panel that the dashboard and the
    operator's tenant page load into ``#network-panel`` and reload on network events."""

    template_name = "tenants/network.html"
    partial_templates = {"network-panel": "tenants/network_panel.html"}

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        summary = tenant_network_summary(self.tenant)
        context.update(
            network=summary,
            state_tone=NETWORK_STATE_TONES.get(summary.state, "grey") if summary else "grey",
        )
        return context


# --- The operator's address plan -----------------------------------------------------------


class AddressPlanForm(forms.Form):
    """Both forms share a page: ids of their own (``pool-name``, ``range-name``), same names."""

    id_prefix = ""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("auto_id", f"{self.id_prefix}-%s")
        super().__init__(*args, **kwargs)


class SubnetPoolForm(AddressPlanForm):
    """Shape only; ``subnet_pool_create`` decides what is a valid, non-overlapping pool."""

    id_prefix = "pool"

    name = forms.CharField(
        max_length=63,
        help_text="A DNS label, e.g. “dc2-tenants”.",
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )
    cidr = forms.CharField(
        max_length=43,
        label="Network",
        help_text="An IPv4 supernet in CIDR notation that overlaps no other pool or range.",
        widget=forms.TextInput(
            attrs={"autocomplete": "off", "spellcheck": "false", "placeholder": "10.201.0.0/16"}
        ),
    )
    subnet_prefix_length = forms.TypedChoiceField(
        coerce=int,
        label="Subnet per tenant",
        initial=settings.TENANT_SUBNET_PREFIX_LENGTH,
        choices=[
            (length, f"/{length} · {2 ** (32 - length):,} addresses")
            for length in range(LARGEST_OFFERED_SUBNET, MAX_SUBNET_PREFIX_LENGTH + 1)
        ],
        help_text="Each new tenant gets one subnet of this size.",
    )


class LoadBalancerRangeForm(AddressPlanForm):
    """Shape only; ``lb_range_create`` decides what is a valid, non-overlapping range."""

    id_prefix = "range"

    name = forms.CharField(
        max_length=63,
        help_text="A DNS label, e.g. “public-v4”.",
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )
    first_address = forms.CharField(
        max_length=15,
        label="First address",
        widget=forms.TextInput(
            attrs={"autocomplete": "off", "spellcheck": "false", "placeholder": "192.0.2.10"}
        ),
    )
    last_address = forms.CharField(
        max_length=15,
        label="Last address",
        widget=forms.TextInput(
            attrs={"autocomplete": "off", "spellcheck": "false", "placeholder": "192.0.2.99"}
        ),
    )


def networks_url() -> str:
    return reverse("operator-networks")


class OperatorNetworksView(ConsoleView):
    """Every subnet pool and load-balancer range, with what the tenants hold of each."""

    template_name = "operator/networks.html"
    partial_templates = {
        "pool-form-card": "operator/network_pool_form.html",
        "range-form-card": "operator/network_range_form.html",
    }

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context.setdefault("pool_form", SubnetPoolForm())
        context.setdefault("range_form", LoadBalancerRangeForm())
        pools = subnet_pool_usages(SubnetPool.objects.order_by("created_at", "id"))
        ranges = lb_range_usages(LoadBalancerRange.objects.order_by("created_at", "id"))
        context.update(
            pools=pools,
            ranges=ranges,
            free_subnet_addresses=sum(usage.free_addresses for usage in pools),
            subnet_totals=AddressUsage(
                "Tenant subnets",
                sum(usage.tenant_count for usage in pools),
                sum(usage.capacity for usage in pools),
            ),
            address_totals=AddressUsage(
                "Load-balancer addresses",
                sum(usage.allocated for usage in ranges),
                sum(usage.size for usage in ranges),
            ),
        )
        return context


class SubnetPoolCreateView(OperatorNetworksView):
    operators_only = True
    http_method_names = ["post"]

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        form = SubnetPoolForm(request.POST)
        pool = (
            call_service(
                form,
                subnet_pool_create,
                actor=Actor.from_request(request),
                name=form.cleaned_data["name"],
                cidr=form.cleaned_data["cidr"],
                subnet_prefix_length=form.cleaned_data["subnet_prefix_length"],
            )
            if form.is_valid()
            else None
        )
        if pool is None:
            return self.render_to_response(self.get_context_data(pool_form=form))
        messages.success(request, f"Subnet pool {pool.name} ({pool.cidr}) was added.")
        return redirect_after_post(request, networks_url())


class LoadBalancerRangeCreateView(OperatorNetworksView):
    operators_only = True
    http_method_names = ["post"]

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        form = LoadBalancerRangeForm(request.POST)
        address_range = (
            call_service(
                form,
                lb_range_create,
                actor=Actor.from_request(request),
                name=form.cleaned_data["name"],
                first_address=form.cleaned_data["first_address"],
                last_address=form.cleaned_data["last_address"],
            )
            if form.is_valid()
            else None
        )
        if address_range is None:
            return self.render_to_response(self.get_context_data(range_form=form))
        messages.success(request, f"Load-balancer range {address_range} was added.")
        return redirect_after_post(request, networks_url())


class SubnetPoolDeleteView(ConsoleView, ConfirmActionView):
    operators_only = True

    @cached_property
    def pool(self) -> SubnetPool:
        return get_object_or_404(SubnetPool, pk=self.kwargs["pk"])

    def confirmation(self) -> Confirmation:
        return Confirmation(
            title=f"Delete the subnet pool {self.pool.name}?",
            message=(
                f"New tenants stop getting subnets from {self.pool.cidr}. A pool that tenants "
                "hold subnets in cannot be deleted."
            ),
            button="Delete pool",
            cancel_url=networks_url(),
        )

    def perform(self) -> str:
        subnet_pool_delete(actor=Actor.from_request(self.request), pool=self.pool)
        messages.success(self.request, f"Subnet pool {self.pool.name} was deleted.")
        return networks_url()


class LoadBalancerRangeDeleteView(ConsoleView, ConfirmActionView):
    operators_only = True

    @cached_property
    def address_range(self) -> LoadBalancerRange:
        return get_object_or_404(LoadBalancerRange, pk=self.kwargs["pk"])

    def confirmation(self) -> Confirmation:
        first, last = self.address_range.first_address, self.address_range.last_address
        return Confirmation(
            title=f"Delete the load-balancer range {self.address_range.name}?",
            message=(
                f"Tenants stop getting load-balancer addresses from {first}–{last}. A range "
                "that tenants hold addresses in cannot be deleted."
            ),
            button="Delete range",
            cancel_url=networks_url(),
        )

    def perform(self) -> str:
        lb_range_delete(actor=Actor.from_request(self.request), address_range=self.address_range)
        messages.success(
            self.request, f"Load-balancer range {self.address_range.name} was deleted."
        )
        return networks_url()
