"""The clusters pages of the browser portal (``pages``: list, summary, create, detail,
kubeconfig; ``actions``: day-2 dialogs; ``display``: how they are presented)."""

from __future__ import annotations

from tenants.views.extensions import (
    TenantNavItem,
    register_dashboard_panel,
    register_tenant_nav_item,
)

#: URL names under the "Clusters" navigation entry (it stays highlighted on all of them).
CLUSTER_PAGES = (
    "cluster-create",
    "cluster-detail",
    "cluster-scale",
    "cluster-upgrade",
    "cluster-hibernate",
    "cluster-wake",
    "cluster-retry",
    "cluster-protect",
    "cluster-unprotect",
    "cluster-delete",
)


def register_cluster_pages() -> None:
    """Put clusters into every tenant's navigation and dashboard (``AppConfig.ready``)."""
    register_tenant_nav_item(
        TenantNavItem(
            "Clusters", "cluster-list", icon="cluster", order=20, also_active_for=CLUSTER_PAGES
        )
    )
    register_dashboard_panel("clusters/dashboard_card.html", order=5)
