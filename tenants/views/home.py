"""The front door: sign in, sign out, and "where should this user land?"."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import views as auth_views
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse

from tenants.access import Action
from tenants.models import Tenant
from tenants.views.base import PortalView, current_user


class LoginView(auth_views.LoginView):
    template_name = "registration/login.html"
    redirect_authenticated_user = True


class LogoutView(auth_views.LogoutView):
    """POST only (Django's default): a link or an image tag cannot sign anyone out."""


class HomeView(PortalView):
    """Members land on their first tenant, platform staff on the console, others on a
    friendly explanation of what to do next."""

    template_name = "home/no_tenant.html"

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        user = current_user(request)
        first_membership = (
            Tenant.objects.for_user(user, Action.VIEW)
            .filter(memberships__user=user)
            .order_by("name")
            .values_list("slug", flat=True)
            .first()
        )
        if first_membership:
            return HttpResponseRedirect(reverse("tenant-dashboard", args=[first_membership]))
        if user.sees_every_tenant:
            return HttpResponseRedirect(reverse("operator-tenants"))
        return self.render_to_response(self.get_context_data())
