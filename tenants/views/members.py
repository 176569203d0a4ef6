"""Members and invitations of a tenant. Everyone in the tenant reads; admins change."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.cache import add_never_cache_headers
from django_htmx.http import HttpResponseClientRefresh, trigger_client_event

from tenants import services
from tenants.access import Action
from tenants.audit import Actor
from tenants.forms import InvitationForm, MemberRoleForm
from tenants.models import Invitation, Membership
from tenants.views.base import (
    ConfirmActionView,
    Confirmation,
    TenantView,
    call_service,
    current_user,
    is_htmx,
    redirect_after_post,
)

INVITATIONS_SHOWN = 50
INVITATIONS_CHANGED = "invitations-changed"


def invitation_link(request: HttpRequest, secret: str) -> str:
    return request.build_absolute_uri(reverse("invitation", args=[secret]))


class MembersView(TenantView):
    template_name = "tenants/members.html"
    partial_templates = {
        "invitation-list": "tenants/_invitations.html",
        "invite-card": "tenants/_invite_card.html",
    }

    def memberships(self) -> QuerySet[Membership]:
        return (
            Membership.objects.for_user(current_user(self.request), Action.VIEW)
            .filter(tenant=self.tenant)
            .select_related("user")
            .order_by("user__username")
        )

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["memberships"] = self.memberships()
        if self.access.can_admin:
            context.setdefault("invitation_form", InvitationForm())
            context["invitation_lifetime_hours"] = settings.INVITATION_LIFETIME_HOURS
            context["invitations"] = (
                Invitation.objects.for_user(current_user(self.request), Action.ADMIN)
                .filter(tenant=self.tenant)
                .select_related("created_by", "accepted_by")[:INVITATIONS_SHOWN]
            )
        return context


class TenantAdminView(TenantView):
    required_action = Action.ADMIN

    def membership(self) -> Membership:
        membership: Membership = get_object_or_404(
            Membership.objects.for_user(current_user(self.request), Action.ADMIN)
            .filter(tenant=self.tenant)
            .select_related("user"),
            pk=self.kwargs["pk"],
        )
        return membership

    def members_url(self) -> str:
        return reverse("members", args=[self.tenant.slug])


class MemberRoleView(TenantAdminView):
    """Inline role change: htmx swaps the row (with the refusal on it, if any)."""

    http_method_names = ["post"]
    template_name = "tenants/_member_row.html"

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        membership = self.membership()
        form = MemberRoleForm(request.POST)
        changed = (
            call_service(
                form,
                services.membership_change_role,
                actor=Actor.from_request(request),
                membership=membership,
                role=form.cleaned_data["role"],
            )
            if form.is_valid()
            else None
        )
        own = membership.user_id == request.user.pk
        if changed:
            whose = "Your" if own else f"{membership.user.get_username()}'s"
            messages.success(request, f"{whose} role is now {membership.get_role_display()}.")
            if own and is_htmx(request):
                # Admins who demote themselves lose their admin controls: redraw the page.
                return HttpResponseClientRefresh()
        if not is_htmx(request):
            for field_errors in form.errors.as_data().values():
                for error in field_errors:
                    messages.error(request, " ".join(error.messages))
            return redirect_after_post(request, self.members_url())
        if not changed:
            membership.refresh_from_db(fields=["role"])  # show the role that stayed
        return self.render_to_response(self.get_context_data(membership=membership, role_form=form))


class MemberRemoveView(TenantAdminView, ConfirmActionView):
    def confirmation(self) -> Confirmation:
        username = self.membership().user.get_username()
        return Confirmation(
            title=f"Remove {username}?",
            message=(
                f"{username} loses access to {self.tenant.name} at once. Their clusters and "
                "VMs stay, and the audit log keeps their history."
            ),
            button="Remove member",
            cancel_url=self.members_url(),
        )

    def perform(self) -> str:
        membership = self.membership()
        services.membership_remove(actor=Actor.from_request(self.request), membership=membership)
        messages.success(self.request, f"{membership.user.get_username()} was removed.")
        return self.members_url()


class InvitationCreateView(MembersView):
    """Create an invitation and show its link once. The link is never stored or shown again."""

    required_action = Action.ADMIN

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        form = InvitationForm(request.POST)
        created = (
            call_service(
                form,
                services.invitation_create,
                actor=Actor.from_request(request),
                tenant=self.tenant,
                role=form.cleaned_data["role"],
                email=form.cleaned_data["email"],
                invite_url_base=invitation_link(request, "-").removesuffix("-/"),
            )
            if form.is_valid()
            else None
        )
        if not created:
            return self.render_to_response(self.get_context_data(invitation_form=form))
        invitation, secret = created
        response = self.render_to_response(
            self.get_context_data(
                created_invitation=invitation, created_link=invitation_link(request, secret)
            )
        )
        add_never_cache_headers(response)  # the link is a credential
        assert isinstance(response, TemplateResponse)
        return trigger_client_event(response, INVITATIONS_CHANGED)


class InvitationRevokeView(TenantAdminView, ConfirmActionView):
    def invitation(self) -> Invitation:
        invitation: Invitation = get_object_or_404(
            Invitation.objects.for_user(current_user(self.request), Action.ADMIN).filter(
                tenant=self.tenant
            ),
            pk=self.kwargs["pk"],
        )
        return invitation

    def confirmation(self) -> Confirmation:
        invitation = self.invitation()
        who = invitation.email or f"this {invitation.get_role_display().lower()} invitation"
        return Confirmation(
            title="Revoke invitation?",
            message=f"The link sent to {who} stops working immediately.",
            button="Revoke invitation",
            cancel_url=self.members_url(),
        )

    def perform(self) -> str:
        services.invitation_revoke(
            actor=Actor.from_request(self.request), invitation=self.invitation()
        )
        messages.success(self.request, "The invitation was revoked.")
        return self.members_url()
