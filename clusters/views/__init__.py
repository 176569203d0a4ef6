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

    # ...and into the operators' fleet.
    from clusters.forms import ClusterFilterForm
    from clusters.models import Cluster
    from clusters.selectors import clusters_for
    from clusters.views.display import cluster_rows
    from clusters.views.pages import CLUSTERS
    from tenants.views.fleet import FleetKind, register_fleet_kind

    def describe(cluster: Cluster) -> str:
        workers = f"{cluster.worker_count} × {cluster.instance_type.name}"
        return (
            f"{cluster.version.version} · {workers}{' · hibernated' if cluster.hibernated else ''}"
        )

    register_fleet_kind(
        FleetKind(
            key="clusters",
            kind=CLUSTERS,
            objects=clusters_for,
            rows=cluster_rows,
            filter_form=ClusterFilterForm,
            describe=describe,
            order=10,
        )
    )
