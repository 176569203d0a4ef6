"""API shapes of clusters and their catalog: validation of the request's form and rendering.

Business rules live in ``clusters.services``; model serializers here never save
(``ServiceModelSerializer``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from clusters.models import (
    MAX_WORKERS,
    MIN_WORKERS,
    Cluster,
    ClusterAddon,
    ClusterStep,
    InstanceType,
    KubernetesVersion,
)
from clusters.selectors import (
    ACTION_RULES,
    cluster_allowed_actions,
    cluster_spec_with_defaults,
)
from clusters.services import (
    CLUSTER_ADDON_FIELDS,
    INSTANCE_TYPE_FIELDS,
    KUBERNETES_VERSION_FIELDS,
)
from clusters.spec import ClusterSpec
from tenants.api.serializers import ServiceModelSerializer, TenantSlugField, username_field
from tenants.services import suspension_refusal

CLUSTER_ACTIONS = list(ACTION_RULES)

# --- Catalog --------------------------------------------------------------------------------


class KubernetesVersionSerializer(ServiceModelSerializer):
    # Declared rather than generated: the generated field would refuse a second "default",
    # but "one default" is the service's rule, where a new default takes over.
    status = serializers.ChoiceField(
        choices=KubernetesVersion.Status.choices, default=KubernetesVersion.Status.SUPPORTED
    )

    class Meta:
        model = KubernetesVersion
        fields = [*KUBERNETES_VERSION_FIELDS, "created_at"]
        read_only_fields = ["created_at"]


class InstanceTypeSerializer(ServiceModelSerializer):
    class Meta:
        model = InstanceType
        fields = [*INSTANCE_TYPE_FIELDS, "created_at"]
        read_only_fields = ["created_at"]


class ClusterAddonSerializer(ServiceModelSerializer):
    class Meta:
        model = ClusterAddon
        fields = [*CLUSTER_ADDON_FIELDS, "created_at"]
        read_only_fields = ["created_at"]


# --- Clusters -------------------------------------------------------------------------------


class ClusterStepSerializer(serializers.ModelSerializer[ClusterStep]):
    class Meta:
        model = ClusterStep
        fields = ["key", "label", "state", "message", "raw", "started_at", "finished_at"]
        read_only_fields = fields


def _version_field(**kwargs: Any) -> serializers.SlugRelatedField[KubernetesVersion]:
    return serializers.SlugRelatedField(
        slug_field="version", queryset=KubernetesVersion.objects.all(), **kwargs
    )


class ClusterSerializer(ServiceModelSerializer):
    tenant = TenantSlugField()
    version = _version_field(
        required=False,
        help_text="Kubernetes version from the catalog; the catalog's default when left out. "
        "During an upgrade: the control plane's target.",
    )
    worker_version: serializers.SlugRelatedField[KubernetesVersion] = serializers.SlugRelatedField(
        slug_field="version",
        read_only=True,
        help_text="The workers' version: follows the control plane once it runs the new one.",
    )
    instance_type: serializers.SlugRelatedField[InstanceType] = serializers.SlugRelatedField(
        slug_field="name",
        queryset=InstanceType.objects.all(),
        required=False,
        help_text="Worker size from the catalog; the default size when left out.",
    )
    addons: serializers.SlugRelatedField[ClusterAddon] = serializers.SlugRelatedField(
        slug_field="name",
        queryset=ClusterAddon.objects.all(),
        many=True,
        required=False,
        help_text="On create: optional add-ons to install besides the required ones. "
        "On read: every add-on of the cluster.",
    )
    server = serializers.CharField(
        source="server_url", read_only=True, help_text="The API server's URL, once known."
    )
    created_by = username_field()
    allowed_actions = serializers.SerializerMethodField(
        help_text="Day-2 actions the cluster's state and its tenant's allow now "
        "(the caller's role aside)."
    )
    timeline = ClusterStepSerializer(source="steps", many=True, read_only=True)

    class Meta:
        model = Cluster
        fields = [
            "id",
            "tenant",
            "name",
            "version",
            "worker_version",
            "control_plane_replicas",
            "worker_count",
            "instance_type",
            "worker_disk_gib",
            "addons",
            "deletion_protection",
            "hibernated",
            "phase",
            "phase_reason",
            "phase_reason_raw",
            "action",
            "endpoint",
            "server",
            "control_plane_version",
            "control_plane_ready",
            "ready_workers",
            "ready_at",
            "created_by",
            "created_at",
            "updated_at",
            "allowed_actions",
            "timeline",
        ]
        read_only_fields = [
            "hibernated",
            "phase",
            "phase_reason",
            "phase_reason_raw",
            "action",
            "endpoint",
            "control_plane_version",
            "control_plane_ready",
            "ready_workers",
            "ready_at",
            "created_at",
            "updated_at",
        ]
        # Name clashes are the service's to find: the tenant here is only a slug.
        validators: list[Any] = []

    @extend_schema_field(serializers.ListField(child=serializers.ChoiceField(CLUSTER_ACTIONS)))
    def get_allowed_actions(self, cluster: Cluster) -> list[str]:
        # The tenant's rule tells protection's directions apart: off leads to deleting.
        direction = "unprotect" if cluster.deletion_protection else "protect"
        return sorted(
            action
            for action in cluster_allowed_actions(cluster)
            if not suspension_refusal(
                cluster.tenant, direction if action == "protection" else action
            )
        )


def spec_from(data: Mapping[str, Any]) -> ClusterSpec:
    """A ``ClusterSpec`` from a validated ``ClusterSerializer``, defaults filled in."""
    return cluster_spec_with_defaults(
        name=data.get("name", ""),
        version=data.get("version"),
        instance_type=data.get("instance_type"),
        control_plane_replicas=data.get("control_plane_replicas"),
        worker_count=data.get("worker_count"),
        worker_disk_gib=data.get("worker_disk_gib"),
        deletion_protection=data.get("deletion_protection", False),
        addons=data.get("addons", ()),
    )


class ClusterPreviewRequestSerializer(ClusterSerializer):
    """A would-be cluster: the create form, where the name may still be missing."""

    class Meta(ClusterSerializer.Meta):
        extra_kwargs = {"name": {"required": False}}


class ClusterScaleSerializer(serializers.Serializer[dict[str, int]]):
    worker_count = serializers.IntegerField(min_value=MIN_WORKERS, max_value=MAX_WORKERS)


class ClusterUpgradeSerializer(serializers.Serializer[dict[str, Any]]):
    version = _version_field(
        help_text="A newer patch of the current minor version, or the next minor version."
    )


class ClusterProtectionSerializer(serializers.Serializer[dict[str, bool]]):
    deletion_protection = serializers.BooleanField()
