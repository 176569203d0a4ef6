"""The operator console's drift page: the portal's records against what Kubernetes holds."""

from __future__ import annotations

from typing import Any

from django.conf import settings

from butler_portal.kube import kube_client
from butler_portal.kube.errors import KubeError
from butler_portal.watcher.drift import drift_report
from butler_portal.watcher.registry import collect_drift_checks, handler_modules
from tenants.views.base import htmx_target
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
        client = kube_client()
        if client is None:
            return {"unavailable": "The portal runs without a management cluster (KUBE_MODE=off)."}
        try:
            report = drift_report(client, collect_drift_checks(handler_modules()))
        except KubeError as error:
            return {"unavailable": f"The management cluster did not answer: {error}"}
        return {"report": report}
