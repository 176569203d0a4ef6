"""Where other apps plug into the tenant pages without editing them.

An app adds an entry to the tenant side navigation and a panel to the tenant dashboard
from its ``AppConfig.ready()``::

    register_tenant_nav_item(TenantNavItem("Clusters", "cluster-list", icon="cluster", order=20))
    register_dashboard_panel("clusters/_dashboard_panel.html", order=20)

A panel template is included with the dashboard's context (``tenant``, ``access``); it
should fetch its own data through its own permission-checked view (``hx-get`` with
``hx-trigger="load, portal:<kind> from:body"``), so the dashboard view never grows a
query per app.
"""

from __future__ import annotations

from dataclasses import dataclass

from tenants.access import Action


@dataclass(frozen=True)
class TenantNavItem:
    label: str
    url_name: str  # reversed with the tenant's slug as its only argument
    icon: str  # a symbol id in static/icons.svg
    order: int = 100
    action: Action = Action.VIEW  # hidden from users whose role does not allow it
    also_active_for: tuple[str, ...] = ()  # url names of sub-pages that highlight it


@dataclass(frozen=True)
class DashboardPanel:
    template_name: str
    order: int = 100


_tenant_nav: list[TenantNavItem] = [
    TenantNavItem("Overview", "tenant-dashboard", icon="gauge", order=0),
    TenantNavItem(
        "Members",
        "members",
        icon="users",
        order=90,
        also_active_for=("member-remove", "invitation-create", "invitation-revoke"),
    ),
]
_dashboard_panels: list[DashboardPanel] = []


def register_tenant_nav_item(item: TenantNavItem) -> None:
    if item not in _tenant_nav:
        _tenant_nav.append(item)


def register_dashboard_panel(template_name: str, order: int = 100) -> None:
    panel = DashboardPanel(template_name, order)
    if panel not in _dashboard_panels:
        _dashboard_panels.append(panel)


def tenant_nav_items() -> list[TenantNavItem]:
    return sorted(_tenant_nav, key=lambda item: item.order)


def dashboard_panels() -> list[str]:
    return [panel.template_name for panel in sorted(_dashboard_panels, key=lambda p: p.order)]
