"""Reads about clusters that more than one caller needs (API, UI pages, services).

The UI builds its cluster pages on these: the list (``clusters_for``), the create form
(``cluster_form_defaults``, ``offered_*``, ``cluster_quota_preview``), the detail page
(``cluster_timeline``, ``cluster_allowed_actions``, ``upgrade_targets``; its action log is
``tenants.selectors.object_activity``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db.models import Prefetch, Q, QuerySet

from clusters.models import (
    Cluster,
    ClusterAddon,
    ClusterStep,
    InstanceType,
    KubernetesVersion,
)
from clusters.spec import QUOTA_FIELDS, ClusterSpec, spec_quota_amounts
from tenants.access import Action
from tenants.models import QuotaClaim, Tenant
from tenants.selectors import QuotaPreview, quota_preview

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser

    from tenants.models import User

# --- Catalog --------------------------------------------------------------------------------


def offered_versions() -> QuerySet[KubernetesVersion]:
    """Versions a new cluster may run (newest first)."""
    return KubernetesVersion.objects.exclude(status=KubernetesVersion.Status.END_OF_LIFE)


def default_version() -> KubernetesVersion | None:
    return KubernetesVersion.objects.filter(status=KubernetesVersion.Status.DEFAULT).first()


def offered_instance_types() -> QuerySet[InstanceType]:
    return InstanceType.objects.filter(active=True)


def default_instance_type() -> InstanceType | None:
    """The operator's configured default, else the smallest offered size."""
    offered = offered_instance_types()
    return offered.filter(name=settings.CLUSTER_DEFAULT_INSTANCE_TYPE).first() or offered.first()


def required_addons() -> QuerySet[ClusterAddon]:
    return ClusterAddon.objects.filter(required=True)


def offered_addons() -> QuerySet[ClusterAddon]:
    """Optional add-ons a tenant may pick for a new cluster."""
    return ClusterAddon.objects.filter(required=False, active=True)


@dataclass(frozen=True)
class ClusterFormDefaults:
    version: KubernetesVersion | None
    instance_type: InstanceType | None
    control_plane_replicas: int = 2
    worker_count: int = 2
    worker_disk_gib: int = 20


def cluster_form_defaults() -> ClusterFormDefaults:
    return ClusterFormDefaults(version=default_version(), instance_type=default_instance_type())


def cluster_spec_with_defaults(
    *,
    name: str,
    version: KubernetesVersion | None = None,
    instance_type: InstanceType | None = None,
    control_plane_replicas: int | None = None,
    worker_count: int | None = None,
    worker_disk_gib: int | None = None,
    deletion_protection: bool = False,
    addons: Sequence[ClusterAddon] = (),
) -> ClusterSpec:
    """A request's spec, with the catalog's defaults where the request left a choice open."""
    defaults = cluster_form_defaults()
    chosen_version = version or defaults.version
    chosen_type = instance_type or defaults.instance_type
    errors = {}
    if chosen_version is None:
        errors["version"] = "Choose a version: the catalog has no default."
    if chosen_type is None:
        errors["instance_type"] = "Choose an instance type: none is offered by default."
    if errors or chosen_version is None or chosen_type is None:
        raise ValidationError(errors)
    return ClusterSpec(
        name=name,
        version=chosen_version,
        instance_type=chosen_type,
        control_plane_replicas=defaults.control_plane_replicas
        if control_plane_replicas is None
        else control_plane_replicas,
        worker_count=defaults.worker_count if worker_count is None else worker_count,
        worker_disk_gib=defaults.worker_disk_gib if worker_disk_gib is None else worker_disk_gib,
        deletion_protection=deletion_protection,
        addons=tuple(addons),
    )


def upgrade_targets(cluster: Cluster) -> list[KubernetesVersion]:
    """Where ``cluster`` may go next: a newer patch of its minor, or the next minor.

    Kamaji refuses skipped minors and downgrades, and end-of-life versions are closed.
    """
    current = cluster.version
    candidates = offered_versions().filter(
        Q(major=current.major, minor=current.minor, patch__gt=current.patch)
        | Q(major=current.major, minor=current.minor + 1)
    )
    return list(candidates)


# --- Clusters -------------------------------------------------------------------------------


def with_cluster_details(clusters: QuerySet[Cluster]) -> QuerySet[Cluster]:
    """Everything a cluster row or page shows, loaded in a fixed number of queries."""
    return clusters.select_related(
        "tenant", "version", "worker_version", "instance_type", "created_by"
    ).prefetch_related(
        Prefetch("steps", queryset=ClusterStep.objects.order_by("position", "id")),
        Prefetch("addons", queryset=ClusterAddon.objects.order_by("name")),
    )


def clusters_for(
    user: User | AnonymousUser, tenant: Tenant | None = None, action: Action = Action.VIEW
) -> QuerySet[Cluster]:
    """The clusters ``user`` may see (or act on), optionally of one tenant."""
    clusters = Cluster.objects.for_user(user, action)
    if tenant is not None:
        clusters = clusters.filter(tenant=tenant)
    return with_cluster_details(clusters)


def cluster_timeline(cluster: Cluster) -> list[ClusterStep]:
    return list(cluster.steps.order_by("position", "id"))


# What each day-2 action needs of a cluster's state, and what to say when it is refused.
ACTION_RULES: dict[str, tuple[frozenset[str], str]] = {
    "scale": (
        frozenset(
            {
                Cluster.Phase.PENDING,
                Cluster.Phase.PROVISIONING,
                Cluster.Phase.READY,
                Cluster.Phase.SCALING,
                Cluster.Phase.DEGRADED,
            }
        ),
        "Workers can be scaled once the cluster is awake, not upgrading, failed or deleting.",
    ),
    "upgrade": (
        frozenset({Cluster.Phase.READY, Cluster.Phase.DEGRADED}),
        "Only a running cluster that is not already changing can be upgraded.",
    ),
    "hibernate": (
        frozenset({Cluster.Phase.READY, Cluster.Phase.DEGRADED}),
        "Only a running cluster that is not changing can hibernate.",
    ),
    # Waking up may interrupt going to sleep: changing one's mind needs no waiting.
    "wake": (
        frozenset({Cluster.Phase.HIBERNATING, Cluster.Phase.HIBERNATED}),
        "The cluster is not hibernating.",
    ),
    "retry": (frozenset({Cluster.Phase.FAILED}), "Only a failed cluster can be retried."),
    "delete": (
        frozenset(Cluster.Phase.values) - {Cluster.Phase.DELETING},
        "The cluster is already being deleted.",
    ),
    "protection": (
        frozenset(Cluster.Phase.values) - {Cluster.Phase.DELETING},
        "The cluster is already being deleted.",
    ),
    "kubeconfig": (
        frozenset(
            {
                Cluster.Phase.PROVISIONING,
                Cluster.Phase.READY,
                Cluster.Phase.SCALING,
                Cluster.Phase.UPGRADING,
                Cluster.Phase.DEGRADED,
            }
        ),
        "A kubeconfig is available once the control plane runs (and while it is awake).",
    ),
}


def cluster_action_refusal(cluster: Cluster, action: str) -> str:
    """Why ``action`` is not possible in the cluster's current state ("" if it is)."""
    phases, refusal = ACTION_RULES[action]
    if cluster.phase not in phases:
        return refusal
    if action == "kubeconfig" and not (cluster.control_plane_initialized and cluster.endpoint):
        return refusal
    if action == "hibernate" and cluster.hibernated:
        return refusal
    return ""


def cluster_allowed_actions(cluster: Cluster) -> frozenset[str]:
    """The day-2 actions the cluster's state allows (the caller's role is checked apart)."""
    return frozenset(
        action for action in ACTION_RULES if not cluster_action_refusal(cluster, action)
    )


# --- Quota preview --------------------------------------------------------------------------


def cluster_quota_preview(
    tenant: Tenant, spec: ClusterSpec, *, cluster: Cluster | None = None
) -> QuotaPreview:
    """What ``spec`` would consume of the tenant's quota, against what is left.

    For an existing ``cluster`` (scaling) only the difference to what it holds counts.
    """
    held: dict[str, int] = {}
    if cluster is not None:
        claim = QuotaClaim.objects.filter(tenant=tenant, subject=cluster.quota_subject).first()
        held = claim.amounts() if claim else {}
    return quota_preview(tenant, spec_quota_amounts(spec), held=held, fields=QUOTA_FIELDS)
