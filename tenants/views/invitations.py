"""The page an invitation link opens: join with the current account or a new one."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseBase, HttpResponseRedirect
from django.urls import reverse
from django.views.generic import TemplateView

from tenants import services
from tenants.access import role_in
from tenants.audit import Actor
from tenants.forms import SignUpForm
from tenants.models import Invitation, Membership
from tenants.views.base import SignedInMixin, apply_service_error, redirect_after_post

# The status code of the landing page for links that cannot be used: the page explains
# why, the code tells caches and crawlers the resource is gone (or was never there).
UNUSABLE_STATUS = {"unknown": 404, "expired": 410, "revoked": 410, "accepted": 410}


class InvitationLandingView(TemplateView):
    """Open to anonymous visitors: the secret in the URL is the credential."""

    template_name = "invitations/landing.html"
    invitation: Invitation | None

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        self.invitation = services.invitation_lookup(kwargs["secret"])
        return super().dispatch(request, *args, **kwargs)

    @property
    def status(self) -> str:
        return self.invitation.status if self.invitation else "unknown"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context.update(invitation=self.invitation, status=self.status, secret=self.kwargs["secret"])
        user = self.request.user
        if self.invitation and user.is_authenticated:
            context["existing_role"] = role_in(user, self.invitation.tenant)
        if not user.is_authenticated:
            email = self.invitation.email if self.invitation else ""
            context.setdefault("signup_form", SignUpForm(initial={"email": email}))
            context["login_url"] = self.sign_in_url()
        return context

    def sign_in_url(self) -> str:
        """Sign in, then come back to this landing page."""
        return redirect_to_login(reverse("invitation", args=[self.kwargs["secret"]])).url

    def render_to_response(self, context: dict[str, Any], **response_kwargs: Any) -> HttpResponse:
        response_kwargs.setdefault("status", UNUSABLE_STATUS.get(self.status, 200))
        response: HttpResponse = super().render_to_response(context, **response_kwargs)
        return response

    def joined(self, membership: Membership) -> HttpResponse:
        messages.success(
            self.request,
            f"Welcome to {membership.tenant.name}. You joined as {membership.get_role_display().lower()}.",
        )
        return redirect_after_post(
            self.request, reverse("tenant-dashboard", args=[membership.tenant.slug])
        )

    def refused(self, error: ValidationError) -> HttpResponse:
        for message in error.messages:
            messages.error(self.request, message)
        return self.render_to_response(self.get_context_data())


class InvitationAcceptView(SignedInMixin, InvitationLandingView):
    def handle_no_permission(self) -> HttpResponseRedirect:
        # Back to the landing page after signing in, not to this POST-only address.
        return HttpResponseRedirect(self.sign_in_url())

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            membership = services.invitation_accept(
                actor=Actor.from_request(request), secret=kwargs["secret"]
            )
        except ValidationError as error:
            return self.refused(error)
        return self.joined(membership)


class InvitationSignUpView(InvitationLandingView):
    """Create a local account and accept in one step; both or neither happen."""

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.user.is_authenticated:
            # Someone who signed in meanwhile (another tab) accepts with that account.
            return redirect_after_post(request, reverse("invitation", args=[kwargs["secret"]]))
        form = SignUpForm(request.POST)
        if not form.is_valid():
            return self.render_to_response(self.get_context_data(signup_form=form))
        request_actor = Actor.from_request(request)
        try:
            with transaction.atomic():
                user = services.user_create(
                    actor=request_actor,
                    username=form.cleaned_data["username"],
                    email=form.cleaned_data["email"],
                    password=form.cleaned_data["password"],
                )
                membership = services.invitation_accept(
                    actor=Actor(user=user, source_ip=request_actor.source_ip),
                    secret=kwargs["secret"],
                )
        except ValidationError as error:
            apply_service_error(form, error)
            return self.render_to_response(self.get_context_data(signup_form=form))
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        return self.joined(membership)
