"""A tenant's cluster pages: the list, the dashboard summary, the create form, the detail page
and the kubeconfig download.

Everything live follows the network pages' pattern: a frame stays in the page and reloads its
inside through the same view (``partial_templates``) when the tenant's websocket says a
cluster changed (``portal:cluster.changed``) or the quota moved (``portal:quota``), with
``hx-sync="this:queue last"`` so a burst of events ends on the latest state.

The list, dashboard card, create form and detail page are those every kind of object has
(``tenants.views.objects``); this module says which clusters, how they read and which
service requests one.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect
from django.utils.cache import add_never_cache_headers

from clusters.forms import ClusterFilterForm, ClusterForm
from clusters.kubeconfig import access_group, cluster_kubeconfig, kubeconfig_filename
from clusters.models import Cluster
from clusters.selectors import (
    cluster_quota_preview,
    cluster_timeline,
    clusters_for,
    offered_instance_types,
    offered_versions,
    required_addons,
)
from clusters.services import cluster_request
from clusters.spec import ClusterSpec
from clusters.views.display import (
    CLUSTER_PHASES,
    PreviewView,
    activity_entries,
    cluster_actions,
    cluster_rows,
    phase_badge,
    preview_view,
    timeline_entries,
    timeline_progress,
)
from tenants.audit import Actor
from tenants.models import QuotaResource, Tenant
from tenants.selectors import QuotaUsage, object_activity, quota_usage
from tenants.views.base import current_user
from tenants.views.objects import (
    QUOTA_PREVIEW,
    ObjectCreateView,
    ObjectDetailView,
    ObjectKind,
    ObjectKindView,
    ObjectListView,
    ObjectRow,
    ObjectSummaryView,
    ObjectView,
)

ACTIVITY_ROWS = 12

CLUSTERS = ObjectKind(
    prefix="cluster", noun="cluster", plural="clusters", icon="cluster", states=CLUSTER_PHASES
)

# Ids of the live frames (the htmx targets whose inside the views render alone).
RESULTS = CLUSTERS.named("results")
CAPACITY = CLUSTERS.named("capacity")
CREATE_FORM = CLUSTERS.named("form")
PANEL = CLUSTERS.named("panel")


def cluster_capacity(tenant: Tenant) -> list[QuotaUsage]:
    """The quota a new cluster draws on (virtual machines have their own pages)."""
    return [usage for usage in quota_usage(tenant) if usage.resource != QuotaResource.VMS]


class ClustersView(ObjectKindView):
    """A page about the tenant's clusters: those the caller may act on with
    ``required_action`` (``clusters_for``, the scoping point)."""

    kind = CLUSTERS

    def objects(self) -> QuerySet[Cluster]:
        return clusters_for(current_user(self.request), self.tenant, self.required_action)

    def rows(self, objects: Iterable[Cluster]) -> list[ObjectRow]:
        return cluster_rows(objects)


class ClusterListView(ClustersView, ObjectListView):
    """``/t/<slug>/clusters/``: the table and the quota left for new clusters."""

    template_name = "clusters/list.html"
    partial_templates = {RESULTS: "clusters/_results.html", CAPACITY: "clusters/_capacity.html"}
    filter_form = ClusterFilterForm

    def capacity(self) -> list[QuotaUsage]:
        return cluster_capacity(self.tenant)


class ClusterSummaryView(ClustersView, ObjectSummaryView):
    """The clusters card of the tenant dashboard."""

    template_name = "clusters/_summary.html"


# --- Creating ---------------------------------------------------------------------------------


class ClusterCreateView(ClustersView, ObjectCreateView[Cluster]):
    """``/t/<slug>/clusters/new/``: the form, its live quota preview and the request."""

    template_name = "clusters/create.html"
    partial_templates = {
        CREATE_FORM: "clusters/_create_form.html",
        QUOTA_PREVIEW: "clusters/_quota_preview.html",
    }

    def make_form(self, data: QueryDict | None) -> ClusterForm:
        return ClusterForm(data)

    def catalog_ready(self) -> bool:
        return offered_versions().exists() and offered_instance_types().exists()

    def preview(self, spec: ClusterSpec) -> PreviewView:
        return preview_view(cluster_quota_preview(self.tenant, spec), spec)

    def create(self, actor: Actor, spec: ClusterSpec) -> Cluster:
        return cluster_request(actor=actor, tenant=self.tenant, spec=spec)

    def created_message(self, created: Cluster) -> str:
        return f"Cluster {created.name} was requested: follow it come up here."

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["required_addons"] = required_addons()
        return context


# --- One cluster ------------------------------------------------------------------------------


class ClusterView(ClustersView, ObjectView[Cluster]):
    """A page about one cluster of the tenant in the URL (another tenant's is a 404)."""

    @property
    def cluster(self) -> Cluster:
        return self.object


class ClusterDetailView(ClusterView, ObjectDetailView[Cluster]):
    """``/t/<slug>/clusters/<pk>/``: phase, timeline, facts, actions and action log.

    ``#cluster-panel`` reloads on ``portal:cluster.changed`` events for this cluster; when
    the cluster is gone (deleted under an open page) the panel says so instead.
    """

    template_name = "clusters/detail.html"
    partial_templates = {PANEL: "clusters/_panel_live.html"}
    live_panel = PANEL
    gone_template = "clusters/_gone.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        cluster = self.cluster
        steps = cluster_timeline(cluster)
        admin_rights = (
            access_group(Actor.from_request(self.request), self.tenant)
            == settings.CLUSTER_ADMIN_GROUP
        )
        context.update(
            badge=phase_badge(cluster),
            timeline=timeline_entries(cluster, steps),
            progress=timeline_progress(cluster, steps),
            actions=cluster_actions(cluster, self.access, admin_rights=admin_rights),
            activity=activity_entries(object_activity(cluster), ACTIVITY_ROWS),
            addons=list(cluster.addons.all()),
        )
        return context


class ClusterKubeconfigView(ClusterView):
    """A personal kubeconfig as a file: cluster-admin for members and admins, read-only for
    viewers (``clusters.kubeconfig`` decides, and audits the download)."""

    http_method_names = ["get"]

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        cluster = self.cluster
        try:
            document = cluster_kubeconfig(actor=Actor.from_request(request), cluster=cluster)
        except ValidationError as error:
            for message in error.messages:
                messages.error(request, message)
            return redirect(self.detail_url())
        response = HttpResponse(document, content_type="application/yaml; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{kubeconfig_filename(cluster)}"'
        add_never_cache_headers(response)  # it carries a private key
        return response
