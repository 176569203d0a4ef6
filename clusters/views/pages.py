"""A tenant's cluster pages: the list, the dashboard summary, the create form, the detail page
and the kubeconfig download.

Everything live follows the network pages' pattern: a frame stays in the page and reloads its
inside through the same view (``partial_templates``) when the tenant's websocket says a
cluster changed (``portal:cluster.changed``) or the quota moved (``portal:quota``), with
``hx-sync="this:queue last"`` so a burst of events ends on the latest state.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import Count, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.utils.cache import add_never_cache_headers
from django.utils.functional import cached_property

from clusters.forms import ClusterFilterForm, ClusterForm
from clusters.kubeconfig import access_group, cluster_kubeconfig, kubeconfig_filename
from clusters.models import Cluster
from clusters.selectors import (
    cluster_activity,
    cluster_quota_preview,
    cluster_spec_with_defaults,
    cluster_timeline,
    clusters_for,
    offered_instance_types,
    offered_versions,
    required_addons,
)
from clusters.services import cluster_request
from clusters.spec import ClusterSpec
from clusters.views.display import (
    PHASE_GROUPS,
    PhaseBadge,
    PreviewView,
    activity_entries,
    cluster_actions,
    cluster_rows,
    preview_view,
    timeline_entries,
    timeline_progress,
)
from tenants.access import Action
from tenants.audit import Actor
from tenants.models import QuotaResource, Tenant
from tenants.selectors import QuotaUsage, quota_usage
from tenants.views.base import (
    TenantView,
    apply_service_error,
    current_user,
    htmx_target,
    redirect_after_post,
)
from tenants.views.objects import LivePanelView, create_refusal

CLUSTERS_PER_PAGE = 25
ACTIVITY_ROWS = 12
SUMMARY_ROWS = 5

# Ids of the live frames (the htmx targets whose inside the views render alone).
RESULTS = "cluster-results"
CAPACITY = "cluster-capacity"
QUOTA_PREVIEW = "quota-preview"
CREATE_FORM = "cluster-form"
PANEL = "cluster-panel"


def cluster_url(cluster: Cluster) -> str:
    return reverse("cluster-detail", args=[cluster.tenant.slug, cluster.pk])


def cluster_capacity(tenant: Tenant) -> list[QuotaUsage]:
    """The quota a new cluster draws on (virtual machines have their own pages)."""
    return [usage for usage in quota_usage(tenant) if usage.resource != QuotaResource.VMS]


# --- The list ---------------------------------------------------------------------------------


class ClusterListView(TenantView):
    """``/t/<slug>/clusters/``: the table (filtered and paginated on the server) and the
    quota left for new clusters, each reloading itself on its own event."""

    template_name = "clusters/list.html"
    partial_templates = {RESULTS: "clusters/_results.html", CAPACITY: "clusters/_capacity.html"}

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        target = htmx_target(self.request)
        if target != RESULTS:
            context.update(
                capacity=cluster_capacity(self.tenant),
                create_refusal=create_refusal(self.tenant, self.access),
            )
        if target != CAPACITY:
            context.update(self.results())
        return context

    def results(self) -> dict[str, Any]:
        filters = ClusterFilterForm(self.request.GET)
        term, phase = "", ""
        if filters.is_valid():
            term, phase = filters.cleaned_data["q"].strip(), filters.cleaned_data["phase"]
        clusters = clusters_for(current_user(self.request), self.tenant)
        if term:
            clusters = clusters.filter(name__icontains=term)
        if phase:
            clusters = clusters.filter(phase=phase)
        page = Paginator(clusters.order_by("name", "id"), CLUSTERS_PER_PAGE).get_page(
            self.request.GET.get("page")
        )
        return {
            "filter_form": filters,
            "page": page,
            "rows": cluster_rows(page.object_list),
            "filtered": bool(term or phase),
        }


class ClusterSummaryView(TenantView):
    """The clusters card of the tenant dashboard (a fragment it loads and reloads live)."""

    template_name = "clusters/_summary.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        clusters = Cluster.objects.for_user(current_user(self.request), Action.VIEW).filter(
            tenant=self.tenant
        )
        by_phase = dict(
            clusters.order_by()
            .values_list("phase")
            .annotate(count=Count("id"))
            .values_list("phase", "count")
        )
        counts = {
            group: sum(by_phase.get(phase, 0) for phase in phases)
            for group, phases in PHASE_GROUPS.items()
        }
        recent = clusters.select_related("version").order_by("-updated_at", "-id")[:SUMMARY_ROWS]
        context.update(
            total=sum(by_phase.values()),
            counts=counts,
            recent=cluster_rows(recent),
            create_refusal=create_refusal(self.tenant, self.access),
        )
        return context


# --- Creating ---------------------------------------------------------------------------------


def preview_of(tenant: Tenant, form: ClusterForm) -> PreviewView | None:
    """The quota preview of what ``form`` asks for (of the defaults, while it is unbound)."""
    spec: ClusterSpec | None
    if form.is_bound:
        spec = form.preview_spec()
    else:
        try:
            spec = cluster_spec_with_defaults(name="")
        except ValidationError:  # an empty catalog: nothing to preview
            spec = None
    return preview_view(cluster_quota_preview(tenant, spec), spec) if spec else None


class ClusterCreateView(TenantView):
    """``/t/<slug>/clusters/new/``: the form, its live quota preview (GET aimed at
    ``#quota-preview``, with the form's quota inputs) and the request itself (POST)."""

    required_action = Action.OPERATE
    template_name = "clusters/create.html"
    partial_templates = {
        CREATE_FORM: "clusters/_create_form.html",
        QUOTA_PREVIEW: "clusters/_quota_preview.html",
    }

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        if "form" not in context:
            previewing = htmx_target(self.request) == QUOTA_PREVIEW
            context["form"] = ClusterForm(self.request.GET if previewing else None)
        form: ClusterForm = context["form"]
        context.update(
            preview=preview_of(self.tenant, form),
            invalid_quota_inputs=form.invalid_quota_inputs if form.is_bound else [],
            required_addons=required_addons(),
            catalog_ready=offered_versions().exists() and offered_instance_types().exists(),
        )
        return context

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        form = ClusterForm(request.POST)
        if form.is_valid():
            try:
                cluster = cluster_request(
                    actor=Actor.from_request(request), tenant=self.tenant, spec=form.spec()
                )
            except ValidationError as error:
                apply_service_error(form, error)
            else:
                messages.success(
                    request, f"Cluster {cluster.name} was requested: follow it come up here."
                )
                return redirect_after_post(request, cluster_url(cluster))
        # Everything typed comes back, with each refusal on the field to change.
        return self.render_to_response(self.get_context_data(form=form))


# --- One cluster ------------------------------------------------------------------------------


class ClusterView(TenantView):
    """A page about one cluster of the tenant in the URL.

    The cluster is looked up among those the caller may act on with ``required_action``
    (``clusters_for``, the scoping point): another tenant's cluster is a 404 like a missing one.
    """

    def clusters(self) -> QuerySet[Cluster]:
        return clusters_for(current_user(self.request), self.tenant, self.required_action)

    @cached_property
    def cluster(self) -> Cluster:
        found: Cluster = get_object_or_404(self.clusters(), pk=self.kwargs["pk"])
        return found

    def detail_url(self) -> str:
        return reverse("cluster-detail", args=[self.tenant.slug, self.kwargs["pk"]])

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["cluster"] = self.cluster
        return context


class ClusterDetailView(ClusterView, LivePanelView):
    """``/t/<slug>/clusters/<pk>/``: phase, timeline, facts, actions and action log.

    ``#cluster-panel`` reloads on ``portal:cluster.changed`` events for this cluster; when
    the cluster is gone (deleted under an open page) the panel says so instead.
    """

    template_name = "clusters/detail.html"
    partial_templates = {PANEL: "clusters/_panel_live.html"}
    live_panel = PANEL
    gone_template = "clusters/_gone.html"

    def live_object(self) -> Cluster:
        return self.cluster

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        cluster = self.cluster
        steps = cluster_timeline(cluster)
        admin_rights = (
            access_group(Actor.from_request(self.request), self.tenant)
            == settings.CLUSTER_ADMIN_GROUP
        )
        context.update(
            badge=PhaseBadge.of(cluster),
            timeline=timeline_entries(cluster, steps),
            progress=timeline_progress(cluster, steps),
            actions=cluster_actions(cluster, self.access, admin_rights=admin_rights),
            activity=activity_entries(cluster_activity(cluster), ACTIVITY_ROWS),
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
