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
    StateBadge,
    TimelineEntry,
    preview_rows,
    tenant_state_refusal,
)
from tenants.views.objects import PreviewView as QuotaPreviewView
from tenants.views.objects import activity_entries as object_activity_entries

Phase = Cluster.Phase

#: Badge colour of each phase (``badge-<tone>`` in portal.css).
PHASE_TONES: dict[str, str] = {
    Phase.PENDING: "grey",
    Phase.PROVISIONING: "blue",
    Phase.READY: "green",
    Phase.SCALING: "blue",
    Phase.UPGRADING: "violet",
    Phase.HIBERNATED: "grey",
    Phase.DEGRADED: "amber",
    Phase.DELETING: "amber",
    Phase.FAILED: "red",
}
#: Phases in which something visibly moves: the badge spins.
BUSY_PHASES = frozenset({Phase.PROVISIONING, Phase.SCALING, Phase.UPGRADING, Phase.DELETING})
#: Phases whose timeline is worth a progress bar (steps being worked through).
PROGRESS_PHASES = frozenset({Phase.PENDING, Phase.PROVISIONING, Phase.SCALING, Phase.UPGRADING})
#: How the dashboard groups phases.
PHASE_GROUPS: dict[str, frozenset[str]] = {
    "ready": frozenset({Phase.READY}),
    "in_progress": frozenset({Phase.PENDING, *BUSY_PHASES}),
    "attention": frozenset({Phase.FAILED, Phase.DEGRADED}),
    "hibernated": frozenset({Phase.HIBERNATED}),
}


class PhaseBadge(StateBadge):
    @classmethod
    def of(cls, cluster: Cluster) -> PhaseBadge:
        return cls(
            label=cluster.get_phase_display(),
            tone=PHASE_TONES.get(cluster.phase, "grey"),
            busy=cluster.phase in BUSY_PHASES,
            value=cluster.phase,
            attribute="phase",
        )


@dataclass(frozen=True)
class ClusterRow:
    """One cluster of a list, with what its row shows beside the model's fields."""

    cluster: Cluster
    badge: PhaseBadge

    @property
    def shows_reason(self) -> bool:
        return self.cluster.phase != Phase.READY and bool(self.cluster.phase_reason)


def cluster_rows(clusters: Iterable[Cluster]) -> list[ClusterRow]:
    return [ClusterRow(cluster, PhaseBadge.of(cluster)) for cluster in clusters]


# --- Timeline ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Progress:
    done: int
    total: int

    @property
    def percent(self) -> int:
        return round(100 * self.done / self.total) if self.total else 0

    @property
    def text(self) -> str:
        return f"{self.done} of {self.total} steps done"


def timeline_entries(cluster: Cluster, steps: Sequence[ClusterStep]) -> list[TimelineEntry]:
    # A failed cluster waits for nothing: its steps in progress show as stopped, not spinning.
    failed = cluster.phase == Phase.FAILED
    return [
        TimelineEntry(
            key=step.key,
            label=step.label,
            state="stopped" if failed and step.state == ClusterStep.State.ACTIVE else step.state,
            message=step.message,
            started_at=step.started_at,
            finished_at=step.finished_at,
        )
        for step in steps
    ]


def timeline_progress(cluster: Cluster, steps: Sequence[ClusterStep]) -> Progress | None:
    """Done steps of all, while the cluster works through its timeline (else None)."""
    if cluster.phase not in PROGRESS_PHASES or not steps:
        return None
    done = sum(1 for step in steps if step.state == ClusterStep.State.DONE)
    return Progress(done=done, total=len(steps))


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


def _url(name: str, cluster: Cluster) -> str:
    return reverse(name, args=[cluster.tenant.slug, cluster.pk])


def _state_refusal(cluster: Cluster, action: str) -> str:
    """Why the cluster cannot take ``action`` now: its tenant's state, then its own."""
    return tenant_state_refusal(cluster.tenant, action) or cluster_action_refusal(cluster, action)


def kubeconfig_offer(cluster: Cluster, *, admin_rights: bool) -> ActionOffer:
    hours = settings.CLUSTER_KUBECONFIG_LIFETIME_HOURS
    rights = "cluster-admin" if admin_rights else "read-only"
    return ActionOffer(
        key="kubeconfig",
        label="Download kubeconfig",
        icon="download",
        url=_url("cluster-kubeconfig", cluster),
        hint=f"Your own, {rights}, valid {hours} hours.",
        refusal=cluster_action_refusal(cluster, "kubeconfig"),
        dialog=False,
    )


def day2_offers(cluster: Cluster) -> list[ActionOffer]:
    """Scale, upgrade, hibernate or wake, and retry (for a failed cluster)."""
    targets = upgrade_targets(cluster)
    upgrade_refusal = _state_refusal(cluster, "upgrade")
    if not upgrade_refusal and not targets:
        upgrade_refusal = f"{cluster.version.version} is the newest version the catalog offers."
    workers = f"{cluster.worker_count} worker{'s' if cluster.worker_count != 1 else ''}"
    offers = [
        ActionOffer(
            key="scale",
            label="Scale workers",
            icon="server",
            url=_url("cluster-scale", cluster),
            hint=f"{workers} of {cluster.instance_type.name} now.",
            refusal=_state_refusal(cluster, "scale"),
        ),
        ActionOffer(
            key="upgrade",
            label="Upgrade",
            icon="arrow-right",
            url=_url("cluster-upgrade", cluster),
            hint=f"Next: {', '.join(target.version for target in targets)}." if targets else "",
            refusal=upgrade_refusal,
        ),
    ]
    if cluster.hibernated or cluster.phase == Phase.HIBERNATED:
        offers.append(
            ActionOffer(
                key="wake",
                label="Wake up",
                icon="play",
                url=_url("cluster-wake", cluster),
                hint="Starts the control plane and the workers again.",
                refusal=_state_refusal(cluster, "wake"),
            )
        )
    else:
        offers.append(
            ActionOffer(
                key="hibernate",
                label="Hibernate",
                icon="pause",
                url=_url("cluster-hibernate", cluster),
                hint="Stops everything; the quota stays reserved.",
                refusal=_state_refusal(cluster, "hibernate"),
            )
        )
    if cluster.phase == Phase.FAILED:
        # What a failed cluster needs first.
        offers.insert(
            0,
            ActionOffer(
                key="retry",
                label="Retry",
                icon="refresh",
                url=_url("cluster-retry", cluster),
                hint="Applies the cluster again (its quota is reserved again).",
                refusal=_state_refusal(cluster, "retry"),
            ),
        )
    return offers


def protection_offer(cluster: Cluster) -> ActionOffer:
    if cluster.deletion_protection:
        return ActionOffer(
            key="unprotect",
            label="Turn protection off",
            icon="unlock",
            url=_url("cluster-unprotect", cluster),
            hint="On: the cluster cannot be deleted.",
            refusal=_state_refusal(cluster, "protection"),
        )
    return ActionOffer(
        key="protect",
        label="Turn protection on",
        icon="lock",
        url=_url("cluster-protect", cluster),
        hint="Off: anyone who may change the cluster may delete it.",
        refusal=_state_refusal(cluster, "protection"),
    )


def delete_offer(cluster: Cluster) -> ActionOffer:
    refusal = _state_refusal(cluster, "delete")
    if not refusal and cluster.deletion_protection:
        refusal = "Deletion protection is on: turn it off first."
    return ActionOffer(
        key="delete",
        label="Delete cluster",
        icon="trash",
        url=_url("cluster-delete", cluster),
        hint="Its workers, control plane and add-ons go; the quota comes back.",
        refusal=refusal,
        danger=True,
    )


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
