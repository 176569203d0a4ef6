"""The tenant overview: quota usage, state, the caller's role and recent activity."""

from __future__ import annotations

from typing import Any

from tenants.access import is_platform_reader
from tenants.models import AuditEvent
from tenants.selectors import quota_usage
from tenants.views.base import TenantView, current_user
from tenants.views.extensions import dashboard_panels

RECENT_ACTIVITY_ROWS = 8


class TenantDashboardView(TenantView):
    template_name = "tenants/dashboard.html"
    # ``portal:quota`` (or any app's event) refreshes the gauges in place.
    # The panel swaps its inside, so queued refreshes survive a burst of events.
    partial_templates = {"quota-panel": "components/quota_grid.html"}

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        user = current_user(self.request)
        context["usage"] = quota_usage(self.tenant)
        context["dashboard_panels"] = dashboard_panels()
        # The audit trail is an admin's (and the platform staff's) business, as on /audit/.
        if self.access.can_admin or is_platform_reader(user):
            context["recent_activity"] = list(
                AuditEvent.objects.for_user(user).filter(tenant=self.tenant)[:RECENT_ACTIVITY_ROWS]
            )
        return context
