"""The signed-in user's own API tokens. The secret is shown once, in the create response."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.cache import add_never_cache_headers
from django_htmx.http import trigger_client_event

from tenants import services
from tenants.audit import Actor
from tenants.forms import TokenForm
from tenants.models import ApiToken
from tenants.views.base import (
    ConfirmActionView,
    Confirmation,
    PortalView,
    call_service,
    current_user,
)

TOKENS_CHANGED = "tokens-changed"


def own_tokens(request: HttpRequest) -> QuerySet[ApiToken]:
    """Tokens belong to a user, not a tenant: one's own tokens are the whole scope."""
    return ApiToken.objects.filter(user=current_user(request))


class TokensView(PortalView):
    template_name = "account/tokens.html"
    partial_templates = {
        "token-create": "account/_token_create.html",
        "token-list": "account/_token_list.html",
    }

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context.setdefault("token_form", TokenForm())
        context["tokens"] = own_tokens(self.request)
        context["max_lifetime_days"] = settings.API_TOKEN_MAX_LIFETIME_DAYS
        return context


class TokenCreateView(TokensView):
    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        form = TokenForm(request.POST)
        created = (
            call_service(
                form,
                services.token_create,
                actor=Actor.from_request(request),
                name=form.cleaned_data["name"],
                scope=form.cleaned_data["scope"],
                expires_at=form.expiry_moment(),
            )
            if form.is_valid()
            else None
        )
        if not created:
            return self.render_to_response(self.get_context_data(token_form=form))
        token, secret = created
        response = self.render_to_response(
            self.get_context_data(created_token=token, created_secret=secret)
        )
        add_never_cache_headers(response)  # the secret must not linger in any cache
        assert isinstance(response, TemplateResponse)
        return trigger_client_event(response, TOKENS_CHANGED)


class TokenRevokeView(ConfirmActionView):
    def token(self) -> ApiToken:
        return get_object_or_404(own_tokens(self.request), pk=self.kwargs["pk"])

    def confirmation(self) -> Confirmation:
        token = self.token()
        return Confirmation(
            title=f"Revoke “{token.name}”?",
            message=(
                f"Anything using the token {token.prefix}… gets “401 Unauthorized” from "
                "now on. This cannot be undone."
            ),
            button="Revoke token",
            cancel_url=reverse("tokens"),
        )

    def perform(self) -> str:
        token = services.token_revoke(actor=Actor.from_request(self.request), token=self.token())
        messages.success(self.request, f"Token “{token.name}” was revoked.")
        return reverse("tokens")
