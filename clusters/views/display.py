"""How the cluster pages present what the selectors return: badges, progress, quota preview
rows, the action log's sentences and the actions a page offers (drawn with the pieces every
object page shares, ``tenants.views.objects``).

Presentation only: whether an action is allowed is ``clusters.selectors``' answer (and the
service's, which enforces it); this module words it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from django.conf import settings
from django.db.models import QuerySet
from django.urls import reverse

from clusters.models import Cluster, ClusterStep, InstanceType
from clusters.selectors import cluster_action_refusal, upgrade_targets
from clusters.spec import ClusterSpec
from tenants.models import AuditEvent, QuotaResource
from tenants.selectors import QuotaPreview, format_amount
from tenants.views.base import TenantAccess
from tenants.views.objects import (
    ActionOffer,
    ActivityEntry,
    ObjectRow,
    OfferWording,
    ProgressBar,
    StateBadge,
    StateGroup,
    StateStyles,
    TimelineEntry,
    preview_rows,
    tenant_state_refusal,
    timeline_of,
)
from tenants.views.objects import PreviewView as QuotaPreviewView
from tenants.views.objects import activity_entries as object_activity_entries

Phase = Cluster.Phase

#: Phases in which something visibly moves: the badge spins.
BUSY_PHASES = frozenset(
    {
        Phase.PROVISIONING,
        Phase.SCALING,
        Phase.UPGRADING,
        Phase.HIBERNATING,
        Phase.WAKING,
        Phase.DELETING,
    }
)
#: Phases whose timeline is worth a progress bar (steps being worked through: provisioning,
#: or the day-2 action under way, whose steps only move forward).
PROGRESS_PHASES = frozenset({Phase.PENDING, *BUSY_PHASES})

CLUSTER_PHASES = StateStyles(
    field="phase",
    tones={
        Phase.PENDING: "grey",
        Phase.PROVISIONING: "blue",
        Phase.READY: "green",
        Phase.SCALING: "blue",
        Phase.UPGRADING: "violet",
        Phase.HIBERNATING: "blue",
        Phase.HIBERNATED: "grey",
        Phase.WAKING: "blue",
        Phase.DEGRADED: "amber",
        Phase.DELETING: "amber",
        Phase.FAILED: "red",
    },
    busy=BUSY_PHASES,
    settled=Phase.READY,
    resting=Phase.HIBERNATED,
    groups=(
        StateGroup("Ready", "green", frozenset({Phase.READY})),
        StateGroup("In progress", "blue", frozenset({Phase.PENDING, *BUSY_PHASES})),
        StateGroup("Need attention", "red", frozenset({Phase.FAILED, Phase.DEGRADED})),
        StateGroup("Hibernated", "grey", frozenset({Phase.HIBERNATED})),
    ),
)


def phase_badge(cluster: Cluster) -> StateBadge:
    return CLUSTER_PHASES.badge(cluster.phase, cluster.get_phase_display())


def cluster_rows(clusters: Iterable[Cluster]) -> list[ObjectRow]:
    return [
        ObjectRow(
            cluster,
            phase_badge(cluster),
            CLUSTER_PHASES.unsettled(cluster.phase, cluster.phase_reason),
        )
        for cluster in clusters
    ]


# --- Timeline ---------------------------------------------------------------------------------


def timeline_entries(cluster: Cluster, steps: Sequence[ClusterStep]) -> list[TimelineEntry]:
    return timeline_of(steps, failed=cluster.phase == Phase.FAILED)


def timeline_progress(cluster: Cluster, steps: Sequence[ClusterStep]) -> ProgressBar | None:
    """Done steps of all, while the cluster works through its timeline (else None)."""
    if cluster.phase not in PROGRESS_PHASES or not steps:
        return None
    done = sum(1 for step in steps if step.state == ClusterStep.State.DONE)
    return ProgressBar(
        label="Steps done",
        now=str(done),
        max=len(steps),
        percent=str(round(100 * done / len(steps))),
        text=f"{done} of {len(steps)} steps done",
    )


# --- Quota preview ----------------------------------------------------------------------------


def _explanation(resource: str, instance_type: InstanceType, disk_gib: int) -> str:
    per_worker: dict[str, str] = {
        QuotaResource.CLUSTERS: "This cluster",
        QuotaResource.WORKER_NODES: "One per worker",
        QuotaResource.VCPU: f"{instance_type.vcpu} per worker ({instance_type.name})",
        QuotaResource.MEMORY_MIB: (
            f"{format_amount(QuotaResource.MEMORY_MIB, instance_type.memory_mib)} per worker "
            f"({instance_type.name})"
        ),
        QuotaResource.STORAGE_GIB: f"{disk_gib} GiB root disk per worker",
        QuotaResource.LOAD_BALANCER_IPS: "The API server's endpoint address",
    }
    return per_worker.get(resource, "")


@dataclass(frozen=True)
class ControlPlaneOverhead:
    """What the hosted control plane costs the platform, outside the tenant's vCPU and memory."""

    replicas: int
    cpu: str
    memory: str


@dataclass(frozen=True)
class PreviewView(QuotaPreviewView):
    control_plane: ControlPlaneOverhead | None


def preview_view(
    preview: QuotaPreview, spec: ClusterSpec, *, only_added: bool = False
) -> PreviewView:
    """Rows for ``preview``; ``only_added`` keeps the resources the request adds (scaling)."""
    rows = preview_rows(
        preview,
        lambda resource: _explanation(resource, spec.instance_type, spec.worker_disk_gib),
        only_added=only_added,
    )
    overhead = None
    if not only_added:
        overhead = ControlPlaneOverhead(
            replicas=spec.control_plane_replicas,
            cpu=f"{settings.KUBE_CONTROL_PLANE_CPU_MILLI / 1000:g}",
            memory=format_amount(QuotaResource.MEMORY_MIB, settings.KUBE_CONTROL_PLANE_MEMORY_MIB),
        )
    return PreviewView(rows=rows, fits=preview.fits, control_plane=overhead)


# --- Action log -------------------------------------------------------------------------------

#: Audit actions on a cluster as a sentence after the actor's name ("bob scaled the workers").
ACTIVITY_PHRASES: dict[str, str] = {
    "create": "requested the cluster",
    "scale": "scaled the workers",
    "upgrade": "started an upgrade",
    "upgrade_workers": "moved the workers to the new version",
    "hibernate": "put the cluster to sleep",
    "wake": "woke the cluster up",
    "protect": "turned deletion protection on",
    "unprotect": "turned deletion protection off",
    "retry": "retried provisioning",
    "delete": "asked to delete the cluster",
    "delete_complete": "finished deleting the cluster",
    "fail": "gave up provisioning",
    "download_kubeconfig": "downloaded a kubeconfig",
}


#: Actions whose recorded changes are [before, after] pairs (other lists are just lists).
CHANGE_PAIRS = frozenset(
    {"scale", "upgrade", "upgrade_workers", "hibernate", "wake", "protect", "unprotect"}
)


def activity_entries(events: QuerySet[AuditEvent], limit: int) -> list[ActivityEntry]:
    return object_activity_entries(
        events, limit, phrases=ACTIVITY_PHRASES, change_pairs=CHANGE_PAIRS
    )


# --- Actions ----------------------------------------------------------------------------------


#: How each action on a cluster reads; the hints that depend on the cluster come with it.
OFFERS: dict[str, OfferWording] = {
    "kubeconfig": OfferWording("Download kubeconfig", "download", dialog=False),
    "scale": OfferWording("Scale workers", "server"),
    "upgrade": OfferWording("Upgrade", "arrow-right"),
    "wake": OfferWording("Wake up", "play", "Starts the control plane and the workers again."),
    "hibernate": OfferWording("Hibernate", "pause", "Stops everything; the quota stays reserved."),
    "retry": OfferWording(
        "Retry", "refresh", "Applies the cluster again (its quota is reserved again)."
    ),
    "unprotect": OfferWording(
        "Turn protection off", "unlock", "On: the cluster cannot be deleted."
    ),
    "protect": OfferWording(
        "Turn protection on", "lock", "Off: anyone who may change the cluster may delete it."
    ),
    "delete": OfferWording(
        "Delete cluster",
        "trash",
        "Its workers, control plane and add-ons go; the quota comes back.",
        danger=True,
    ),
}


def _state_refusal(cluster: Cluster, action: str) -> str:
    """Why the cluster cannot take ``action`` now: its tenant's state, then its own."""
    return tenant_state_refusal(cluster.tenant, action) or cluster_action_refusal(cluster, action)


def _offer(
    cluster: Cluster, key: str, *, hint: str = "", refusal: str | None = None
) -> ActionOffer:
    """The ``key`` button (URL ``cluster-<key>``), refused for the reason the cluster's state
    gives unless ``refusal`` says otherwise."""
    url = reverse(f"cluster-{key}", args=[cluster.tenant.slug, cluster.pk])
    if refusal is None:
        refusal = _state_refusal(cluster, key)
    return OFFERS[key].offer(key, url, hint=hint, refusal=refusal)


def kubeconfig_offer(cluster: Cluster, *, admin_rights: bool) -> ActionOffer:
    hours = settings.CLUSTER_KUBECONFIG_LIFETIME_HOURS
    rights = "cluster-admin" if admin_rights else "read-only"
    return _offer(
        cluster,
        "kubeconfig",
        hint=f"Your own, {rights}, valid {hours} hours.",
        refusal=cluster_action_refusal(cluster, "kubeconfig"),
    )


def day2_offers(cluster: Cluster) -> list[ActionOffer]:
    """Scale, upgrade, hibernate or wake, and retry (for a failed cluster)."""
    targets = upgrade_targets(cluster)
    upgrade_refusal = _state_refusal(cluster, "upgrade")
    if not upgrade_refusal and not targets:
        upgrade_refusal = f"{cluster.version.version} is the newest version the catalog offers."
    workers = f"{cluster.worker_count} worker{'s' if cluster.worker_count != 1 else ''}"
    asleep = cluster.hibernated or cluster.phase == Phase.HIBERNATED
    offers = [
        _offer(cluster, "scale", hint=f"{workers} of {cluster.instance_type.name} now."),
        _offer(
            cluster,
            "upgrade",
            hint=f"Next: {', '.join(target.version for target in targets)}." if targets else "",
            refusal=upgrade_refusal,
        ),
        _offer(cluster, "wake" if asleep else "hibernate"),
    ]
    if cluster.phase == Phase.FAILED:
        offers.insert(0, _offer(cluster, "retry"))  # what a failed cluster needs first
    return offers


def protection_offer(cluster: Cluster) -> ActionOffer:
    key = "unprotect" if cluster.deletion_protection else "protect"
    # The tenant's rule tells the directions apart (off leads to deleting), the cluster's not.
    refusal = tenant_state_refusal(cluster.tenant, key) or cluster_action_refusal(
        cluster, "protection"
    )
    return _offer(cluster, key, refusal=refusal)


def delete_offer(cluster: Cluster) -> ActionOffer:
    refusal = _state_refusal(cluster, "delete")
    if not refusal and cluster.deletion_protection:
        refusal = "Deletion protection is on: turn it off first."
    return _offer(cluster, "delete", refusal=refusal)


@dataclass(frozen=True)
class ClusterActions:
    kubeconfig: ActionOffer
    day2: list[ActionOffer]
    protection: ActionOffer | None
    delete: ActionOffer | None


def cluster_actions(
    cluster: Cluster, access: TenantAccess, *, admin_rights: bool
) -> ClusterActions:
    """Everyone may download a (role-scoped) kubeconfig; only members and admins see the rest."""
    if not access.can_operate:
        return ClusterActions(kubeconfig_offer(cluster, admin_rights=admin_rights), [], None, None)
    return ClusterActions(
        kubeconfig=kubeconfig_offer(cluster, admin_rights=admin_rights),
        day2=day2_offers(cluster),
        protection=protection_offer(cluster),
        delete=delete_offer(cluster),
    )
