"""The operator console: every tenant and user on the platform.

Operators change things; auditors see the same pages without the controls (and get 403
if they post anyway).
"""

from __future__ import annotations

from typing import Any, ClassVar

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils.functional import cached_property

from tenants import services
from tenants.access import Action, is_operator
from tenants.audit import Actor
from tenants.forms import ListSearchForm, QuotaForm, TenantCreateForm, TypedConfirmationForm
from tenants.models import (
    AuditEvent,
    Membership,
    Quota,
    QuotaResource,
    Tenant,
    TenantNetwork,
    User,
)
from tenants.scoping import visible_tenant
from tenants.selectors import quota_usage, quota_usage_for_tenants
from tenants.views.base import (
    ConfirmActionView,
    Confirmation,
    PlatformView,
    apply_service_error,
    call_service,
    current_user,
    redirect_after_post,
)

TENANTS_PER_PAGE = 25
USERS_PER_PAGE = 50
TENANT_ACTIVITY_ROWS = 6

# What a new tenant starts with unless the operator changes it: room for a small
# production cluster and a few VMs.
SUGGESTED_LIMITS = {
    QuotaResource.CLUSTERS: 2,
    QuotaResource.WORKER_NODES: 6,
    QuotaResource.VMS: 5,
    QuotaResource.VCPU: 32,
    QuotaResource.MEMORY_MIB: 64 * 1024,
    QuotaResource.STORAGE_GIB: 500,
    QuotaResource.LOAD_BALANCER_IPS: 3,
}


class ConsoleView(PlatformView):
    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["can_change"] = is_operator(current_user(self.request))
        return context

    def search_term(self) -> str:
        form = ListSearchForm(self.request.GET)
        term: str = form.cleaned_data["q"] if form.is_valid() else ""
        return term.strip()


class OperatorTenantsView(ConsoleView):
    template_name = "operator/tenants.html"
    partial_templates = {"tenant-results": "operator/_tenant_results.html"}

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        term = self.search_term()
        tenants = Tenant.objects.for_user(current_user(self.request), Action.VIEW).annotate(
            member_count=Count("memberships")
        )
        if term:
            tenants = tenants.filter(Q(slug__icontains=term) | Q(name__icontains=term))
        page = Paginator(tenants.order_by("name"), TENANTS_PER_PAGE).get_page(
            self.request.GET.get("page")
        )
        usage = quota_usage_for_tenants(page.object_list)
        context.update(
            search_form=ListSearchForm(self.request.GET),
            page=page,
            rows=[(tenant, usage[tenant.pk]) for tenant in page.object_list],
            resources=QuotaResource.choices,
            search_term=term,
        )
        return context


class OperatorTenantCreateView(ConsoleView):
    operators_only = True
    template_name = "operator/tenant_create.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context.setdefault("form", TenantCreateForm(initial=dict(SUGGESTED_LIMITS)))
        return context

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        form = TenantCreateForm(request.POST)
        tenant = (
            call_service(
                form,
                services.tenant_create,
                actor=Actor.from_request(request),
                slug=form.cleaned_data["slug"],
                name=form.cleaned_data["name"],
                limits=form.limits(),
            )
            if form.is_valid()
            else None
        )
        if not tenant:
            return self.render_to_response(self.get_context_data(form=form))
        messages.success(request, f"Tenant {tenant.name} was created. Invite its first admin.")
        return redirect_after_post(request, reverse("operator-tenant", args=[tenant.slug]))


class OperatorTenantMixin(ConsoleView):
    """Pages about one tenant, found by slug among the tenants the caller can see."""

    @cached_property
    def tenant(self) -> Tenant:
        return visible_tenant(current_user(self.request), self.kwargs["slug"])

    def detail_url(self) -> str:
        return reverse("operator-tenant", args=[self.tenant.slug])


class OperatorTenantDetailView(OperatorTenantMixin):
    template_name = "operator/tenant_detail.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        user = current_user(self.request)
        usage = quota_usage(self.tenant)
        if "quota_form" not in context:
            limits = Quota.objects.for_user(user, Action.VIEW).get(tenant=self.tenant).limits()
            context["quota_form"] = QuotaForm(initial=limits, usage=usage)
        context.update(
            tenant=self.tenant,
            usage=usage,
            memberships=Membership.objects.for_user(user, Action.VIEW)
            .filter(tenant=self.tenant)
            .select_related("user")
            .order_by("user__username"),
            recent_activity=AuditEvent.objects.for_user(user).filter(tenant=self.tenant)[
                :TENANT_ACTIVITY_ROWS
            ],
            # Only a failed network needs a person: the page shows why and offers the retry.
            failed_network=TenantNetwork.objects.filter(
                tenant=self.tenant, state=TenantNetwork.State.FAILED
            ).first(),
        )
        return context


class OperatorQuotaUpdateView(OperatorTenantDetailView):
    operators_only = True

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        form = QuotaForm(request.POST, usage=quota_usage(self.tenant))
        if form.is_valid():
            try:
                services.quota_update(
                    actor=Actor.from_request(request),
                    tenant=self.tenant,
                    limits=form.limits(),
                    force=form.cleaned_data["force"],
                )
            except ValidationError as error:
                apply_service_error(form, error)
                # The service refuses a limit (by resource) only when it is below usage:
                # that is when the operator may confirm with "force".
                form.offer_force = bool(set(error.message_dict) & set(QuotaResource.values))
            else:
                messages.success(request, f"Quota of {self.tenant.name} was updated.")
                return redirect_after_post(request, self.detail_url())
        return self.render_to_response(self.get_context_data(quota_form=form))


class OperatorTenantStateView(OperatorTenantMixin, ConfirmActionView):
    """Suspend or resume; ``target_state`` comes from the URL conf."""

    operators_only = True
    target_state: ClassVar[str] = ""

    def confirmation(self) -> Confirmation:
        if self.target_state == Tenant.State.SUSPENDED:
            return Confirmation(
                title=f"Suspend {self.tenant.name}?",
                message=(
                    "Members keep read access and running resources keep running, but "
                    "nothing new can be created until the tenant is resumed."
                ),
                button="Suspend tenant",
                cancel_url=self.detail_url(),
            )
        return Confirmation(
            title=f"Resume {self.tenant.name}?",
            message="Members can create clusters and VMs again, within the quota.",
            button="Resume tenant",
            cancel_url=self.detail_url(),
            danger=False,
        )

    def perform(self) -> str:
        tenant = services.tenant_set_state(
            actor=Actor.from_request(self.request), tenant=self.tenant, state=self.target_state
        )
        messages.success(
            self.request, f"{tenant.name} is now {tenant.get_state_display().lower()}."
        )
        return self.detail_url()


class OperatorNetworkRetryView(OperatorTenantMixin, ConfirmActionView):
    """Apply a tenant's Failed network again, once the operator has fixed the cause."""

    operators_only = True

    def confirmation(self) -> Confirmation:
        return Confirmation(
            title=f"Retry the network of {self.tenant.name}?",
            message=(
                "The portal applies the tenant's namespace, quota, VPC, subnet and "
                "load-balancer addresses to Kubernetes again. Fix what Kubernetes refused "
                "first, or the network fails again."
            ),
            button="Retry the network",
            cancel_url=self.detail_url(),
            danger=False,
        )

    def perform(self) -> str:
        services.tenant_network_retry(actor=Actor.from_request(self.request), tenant=self.tenant)
        messages.success(self.request, f"The network of {self.tenant.name} is being applied again.")
        return self.detail_url()


class OperatorTenantDeleteView(OperatorTenantMixin, ConfirmActionView):
    operators_only = True

    def get_form(self) -> forms.Form:
        return TypedConfirmationForm(self.submitted_data(), expected=self.tenant.slug)

    def confirmation(self) -> Confirmation:
        return Confirmation(
            title=f"Delete {self.tenant.name}?",
            message=(
                "The tenant, its memberships, invitations and quota are deleted for good. "
                "Its clusters and VMs must be deleted first; the audit log keeps its history."
            ),
            button="Delete tenant",
            cancel_url=self.detail_url(),
        )

    def perform(self) -> str:
        name = self.tenant.name
        gone = services.tenant_delete(actor=Actor.from_request(self.request), tenant=self.tenant)
        if gone:
            messages.success(self.request, f"Tenant {name} was deleted.")
        else:
            messages.success(
                self.request,
                f"Tenant {name} is being deleted: its namespace and network are being removed.",
            )
        return reverse("operator-tenants")


class OperatorUsersView(ConsoleView):
    template_name = "operator/users.html"
    partial_templates = {"user-results": "operator/_user_results.html"}

    def users(self) -> QuerySet[User]:
        users = User.objects.annotate(tenant_count=Count("memberships")).order_by("username")
        term = self.search_term()
        if term:
            users = users.filter(
                Q(username__icontains=term)
                | Q(email__icontains=term)
                | Q(first_name__icontains=term)
                | Q(last_name__icontains=term)
            )
        return users

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        page = Paginator(self.users(), USERS_PER_PAGE).get_page(self.request.GET.get("page"))
        context.update(
            search_form=ListSearchForm(self.request.GET),
            page=page,
            users=page.object_list,
            search_term=self.search_term(),
        )
        return context


class OperatorUserActiveView(ConsoleView, ConfirmActionView):
    """Disable or enable an account; ``active`` comes from the URL conf."""

    operators_only = True
    active: ClassVar[bool] = False

    @cached_property
    def account(self) -> User:
        return get_object_or_404(User, pk=self.kwargs["pk"])

    def confirmation(self) -> Confirmation:
        name = self.account.get_username()
        if self.active:
            return Confirmation(
                title=f"Enable {name}?",
                message=f"{name} can sign in again. Revoked API tokens stay revoked.",
                button="Enable account",
                cancel_url=reverse("operator-users"),
                danger=False,
            )
        return Confirmation(
            title=f"Disable {name}?",
            message=(
                f"{name} is signed out everywhere, cannot sign in and all of their API "
                "tokens are revoked. Their memberships and history are kept."
            ),
            button="Disable account",
            cancel_url=reverse("operator-users"),
        )

    def perform(self) -> str:
        user = services.user_set_active(
            actor=Actor.from_request(self.request), user=self.account, active=self.active
        )
        state = "enabled" if user.is_active else "disabled"
        messages.success(self.request, f"{user.get_username()} was {state}.")
        return reverse("operator-users")
