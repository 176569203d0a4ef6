"""/api/v1/clusters/ and the cluster catalog: thin viewsets over ``clusters.services``.

Who may see and touch a cluster is ``TenantOwnedViewSet``'s business (viewers read, members
and admins act); every write is one service call with ``actor=self.actor``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import yaml
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework.decorators import action
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer

from clusters.api.filters import ClusterFilterSet
from clusters.api.serializers import (
    ClusterAddonSerializer,
    ClusterPreviewRequestSerializer,
    ClusterProtectionSerializer,
    ClusterScaleSerializer,
    ClusterSerializer,
    ClusterUpgradeSerializer,
    InstanceTypeSerializer,
    KubernetesVersionSerializer,
    spec_from,
)
from clusters.kubeconfig import cluster_kubeconfig, kubeconfig_filename
from clusters.models import Cluster, ClusterAddon, InstanceType, KubernetesVersion
from clusters.selectors import cluster_quota_preview, with_cluster_details
from clusters.services import (
    cluster_addon_save,
    cluster_delete,
    cluster_hibernate,
    cluster_request,
    cluster_retry,
    cluster_scale,
    cluster_set_protection,
    cluster_upgrade,
    cluster_wake,
    instance_type_save,
    kubernetes_version_save,
)
from tenants.api.base import (
    CatalogViewSet,
    TenantResourceViewSet,
    ViewMethod,
    action_schema,
    catalog_schema,
    typed_name_deletion,
)
from tenants.api.serializers import QuotaPreviewSerializer
from tenants.models import Tenant
from tenants.scoping import visible_tenant

# --- Catalog --------------------------------------------------------------------------------


@catalog_schema(
    listed="Kubernetes versions of the catalog (newest first)",
    added="Add a version",
    changed="Change a version's status or image",
)
class KubernetesVersionViewSet(CatalogViewSet[KubernetesVersion]):
    queryset = KubernetesVersion.objects.all()
    serializer_class = KubernetesVersionSerializer
    lookup_field = "version"
    lookup_value_regex = r"v[0-9]+\.[0-9]+\.[0-9]+"
    filterset_fields = ["status"]

    def save_row(self, row: KubernetesVersion) -> KubernetesVersion:
        return kubernetes_version_save(actor=self.actor, version=row)


@catalog_schema(
    listed="Instance types (worker and VM sizes)",
    added="Add an instance type",
    changed="Change an instance type",
)
class InstanceTypeViewSet(CatalogViewSet[InstanceType]):
    queryset = InstanceType.objects.all()
    serializer_class = InstanceTypeSerializer
    lookup_field = "name"
    lookup_value_regex = r"[a-z0-9][a-z0-9.-]*"
    filterset_fields = ["active"]

    def save_row(self, row: InstanceType) -> InstanceType:
        return instance_type_save(actor=self.actor, instance_type=row)


@catalog_schema(
    listed="Cluster add-ons (Helm charts Flux installs into clusters)",
    added="Add an add-on",
    changed="Change an add-on",
)
class ClusterAddonViewSet(CatalogViewSet[ClusterAddon]):
    queryset = ClusterAddon.objects.all()
    serializer_class = ClusterAddonSerializer
    lookup_field = "name"
    filterset_fields = ["required", "active"]

    def save_row(self, row: ClusterAddon) -> ClusterAddon:
        return cluster_addon_save(actor=self.actor, addon=row)


# --- Clusters -------------------------------------------------------------------------------


class KubeconfigRenderer(BaseRenderer):
    """Lets a client ask for ``Accept: application/yaml``; errors come out as YAML too."""

    media_type = "application/yaml"
    format = "yaml"
    charset = "utf-8"

    def render(
        self,
        data: Any,
        accepted_media_type: str | None = None,
        renderer_context: Mapping[str, Any] | None = None,
    ) -> bytes:
        return b"" if data is None else yaml.safe_dump(data).encode()


def _cluster_action(
    summary: str, request: type[BaseSerializer[Any]] | None = None
) -> Callable[[ViewMethod], ViewMethod]:
    return action_schema(ClusterSerializer, summary, request)


@extend_schema_view(
    list=extend_schema(summary="Clusters the caller can see"),
    retrieve=extend_schema(summary="A cluster, with its provisioning timeline"),
    create=extend_schema(
        summary="Request a cluster (tenant members and admins)",
        description="Reserves the cluster's quota at once (a refusal names the field to "
        "change) and starts provisioning; follow `phase` and `timeline`.",
    ),
    destroy=typed_name_deletion(
        "cluster",
        ClusterSerializer,
        summary="Delete a cluster, its name typed to confirm",
        description="Refused while deletion protection is on. The cluster goes to `deleting`; "
        "its quota is released once Kubernetes confirms its objects are gone.",
    ),
)
class ClusterViewSet(TenantResourceViewSet[Cluster]):
    queryset = with_cluster_details(Cluster.objects.all())
    serializer_class = ClusterSerializer
    filterset_class = ClusterFilterSet

    def create_row(self, tenant: Tenant, data: Mapping[str, Any]) -> Cluster:
        return cluster_request(actor=self.actor, tenant=tenant, spec=spec_from(data))

    def delete_row(self, row: Cluster, confirm_name: str) -> bool:
        return cluster_delete(actor=self.actor, cluster=row, confirm_name=confirm_name)

    @_cluster_action("Scale the workers", ClusterScaleSerializer)
    @action(detail=True, methods=["post"])
    def scale(self, request: Request, pk: str) -> Response:
        form = self.validated(ClusterScaleSerializer).validated_data
        cluster = cluster_scale(
            actor=self.actor, cluster=self.get_object(), worker_count=form["worker_count"]
        )
        return self.rendered(cluster)

    @_cluster_action(
        "Upgrade to a newer patch or the next minor version (control plane first)",
        ClusterUpgradeSerializer,
    )
    @action(detail=True, methods=["post"])
    def upgrade(self, request: Request, pk: str) -> Response:
        form = self.validated(ClusterUpgradeSerializer).validated_data
        cluster = cluster_upgrade(
            actor=self.actor, cluster=self.get_object(), version=form["version"]
        )
        return self.rendered(cluster)

    @_cluster_action("Hibernate: control plane and workers to zero")
    @action(detail=True, methods=["post"])
    def hibernate(self, request: Request, pk: str) -> Response:
        return self.rendered(cluster_hibernate(actor=self.actor, cluster=self.get_object()))

    @_cluster_action("Wake a hibernated cluster")
    @action(detail=True, methods=["post"])
    def wake(self, request: Request, pk: str) -> Response:
        return self.rendered(cluster_wake(actor=self.actor, cluster=self.get_object()))

    @_cluster_action("Retry a failed cluster (reserves its quota again)")
    @action(detail=True, methods=["post"])
    def retry(self, request: Request, pk: str) -> Response:
        return self.rendered(cluster_retry(actor=self.actor, cluster=self.get_object()))

    @_cluster_action("Turn deletion protection on or off", ClusterProtectionSerializer)
    @action(detail=True, methods=["post"])
    def protection(self, request: Request, pk: str) -> Response:
        form = self.validated(ClusterProtectionSerializer).validated_data
        cluster = cluster_set_protection(
            actor=self.actor, cluster=self.get_object(), enabled=form["deletion_protection"]
        )
        return self.rendered(cluster)

    @extend_schema(
        responses={
            (200, "application/yaml"): OpenApiResponse(
                OpenApiTypes.STR, description="A kubeconfig file."
            )
        },
        summary="Download a personal kubeconfig",
        description="A client certificate for the caller, signed by the cluster's CA and valid "
        "for a few hours: members and admins get cluster-admin rights, viewers and read-only "
        "tokens read-only ones. Every download is audited.",
    )
    @action(detail=True, methods=["get"], renderer_classes=[JSONRenderer, KubeconfigRenderer])
    def kubeconfig(self, request: Request, pk: str) -> HttpResponse:
        cluster = self.get_object()
        document = cluster_kubeconfig(actor=self.actor, cluster=cluster)
        response = HttpResponse(document, content_type=KubeconfigRenderer.media_type)
        response["Content-Disposition"] = f'attachment; filename="{kubeconfig_filename(cluster)}"'
        response["Cache-Control"] = "no-store"  # it carries a private key
        return response

    @extend_schema(
        request=ClusterPreviewRequestSerializer,
        responses=QuotaPreviewSerializer,
        summary="What a cluster would take of the tenant's quota (nothing is created)",
    )
    @action(detail=False, methods=["post"])
    def preview(self, request: Request) -> Response:
        form = self.validated(ClusterPreviewRequestSerializer).validated_data
        tenant = visible_tenant(request.user, form["tenant"])
        preview = cluster_quota_preview(tenant, spec_from(form))
        return Response(QuotaPreviewSerializer(preview).data)
