"""The operator console's drift page: the portal's records against what Kubernetes holds."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.urls import reverse

from butler_portal.health import kubernetes_health
from tenants.audit import Actor
from tenants.selectors import ManagementClusterUnavailable, drift_now
from tenants.services import drift_repair
from tenants.views.base import htmx_target, redirect_after_post
from tenants.views.operator import ConsoleView

REPORT = "drift-report"


class OperatorDriftView(ConsoleView):
    """The page loads at once; the report, which lists every managed kind on the API
    server, follows in a second request (and again on "Compare again")."""

    template_name = "operator/drift.html"
    partial_templates = {REPORT: "operator/_drift_report.html"}

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["reconcile_minutes"] = settings.WATCHER_RECONCILE_MINUTES
        if htmx_target(self.request) == REPORT:
            context.update(self.compare())
        return context

    def compare(self) -> dict[str, Any]:
        """The report, or why there is none. Read only: repairs are the watcher's."""
        try:
            return {"report": drift_now()}
        except ManagementClusterUnavailable as error:
            return {"unavailable": str(error)}


class OperatorDriftRepairView(ConsoleView):
    """Operators: apply again now what the watcher would at its next reconcile."""

    operators_only = True
    http_method_names = ["post"]

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            report = drift_repair(actor=Actor.from_request(request))
        except ManagementClusterUnavailable as error:
            messages.error(request, str(error))
        else:
            owners = len(report.missing)
            messages.success(
                request,
                f"Applied again what {owners} owner{'s' if owners != 1 else ''} lacked."
                if owners
                else "Nothing was missing: there was nothing to apply again.",
            )
        return redirect_after_post(request, reverse("operator-drift"))


class OperatorPlatformHealthView(ConsoleView):
    """The console's banner: what the management cluster lacks (components not installed,
    or no answer at all), loaded after each console page since it asks Kubernetes."""

    template_name = "operator/_platform_health.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["health"] = kubernetes_health()
        return context
