"""How the cluster pages present what the selectors return: badges, progress, quota preview
rows, the action log's sentences and the actions a page offers.

Presentation only: whether an action is allowed is ``clusters.selectors``' answer (and the
service's, which enforces it); this module words it.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from django.conf import settings
from django.db.models import QuerySet
from django.urls import reverse

from clusters.models import Cluster, ClusterStep, InstanceType
from clusters.selectors import cluster_action_refusal, upgrade_targets
from clusters.spec import ClusterSpec
from tenants.models import AuditEvent, QuotaResource
from tenants.selectors import QuotaLine, QuotaPreview, format_amount
from tenants.views.base import TenantAccess

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


@dataclass(frozen=True)
class PhaseBadge:
    label: str
    tone: str
    busy: bool

    @classmethod
    def of(cls, cluster: Cluster) -> PhaseBadge:
        return cls(
            label=cluster.get_phase_display(),
            tone=PHASE_TONES.get(cluster.phase, "grey"),
            busy=cluster.phase in BUSY_PHASES,
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


def short_duration(delta: datetime.timedelta) -> str:
    """``4 s``, ``2 min 5 s``, ``1 h 3 min``: how long a step took."""
    seconds = max(round(delta.total_seconds()), 0)
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s" if seconds else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


@dataclass(frozen=True)
class TimelineEntry:
    step: ClusterStep
    #: A failed cluster waits for nothing: its steps in progress show as stopped, not spinning.
    stopped: bool = False

    @property
    def state(self) -> str:
        return "stopped" if self.stopped else self.step.state

    @property
    def state_label(self) -> str:
        return "Stopped" if self.stopped else self.step.get_state_display()

    @property
    def took(self) -> str:
        if self.step.started_at and self.step.finished_at:
            return short_duration(self.step.finished_at - self.step.started_at)
        return ""


@dataclass(frozen=True)
class Progress:
    done: int
    total: int

    @property
    def percent(self) -> int:
        return round(100 * self.done / self.total) if self.total else 0


def timeline_entries(cluster: Cluster, steps: Sequence[ClusterStep]) -> list[TimelineEntry]:
    failed = cluster.phase == Phase.FAILED
    return [
        TimelineEntry(step, stopped=failed and step.state == ClusterStep.State.ACTIVE)
        for step in steps
    ]


def timeline_progress(cluster: Cluster, steps: Sequence[ClusterStep]) -> Progress | None:
    """Done steps of all, while the cluster works through its timeline (else None)."""
    if cluster.phase not in PROGRESS_PHASES or not steps:
        return None
    done = sum(1 for step in steps if step.state == ClusterStep.State.DONE)
    return Progress(done=done, total=len(steps))


# --- Quota preview ----------------------------------------------------------------------------


@dataclass(frozen=True)
class PreviewRow:
    """One quota resource of a preview: what is in use, what the request adds, the limit."""

    line: QuotaLine
    explanation: str

    def _percent(self, amount: int) -> int:
        if self.line.limit <= 0:
            return 100 if amount else 0
        return min(round(100 * amount / self.line.limit), 100)

    @property
    def used_percent(self) -> int:
        return self._percent(self.line.used)

    @property
    def requested_percent(self) -> int:
        """The request's share of the bar, drawn after the used share (never past 100%)."""
        return max(min(self._percent(self.line.used_after), 100) - self.used_percent, 0)

    @property
    def used_display(self) -> str:
        return self.line.display(self.line.used)

    @property
    def requested_display(self) -> str:
        return self.line.display(self.line.requested)

    @property
    def after_display(self) -> str:
        return self.line.display(self.line.used_after)

    @property
    def limit_display(self) -> str:
        return self.line.display(self.line.limit)

    @property
    def field_id(self) -> str:
        """The input to change when it does not fit ("" for form-wide refusals)."""
        return "" if self.line.field == "__all__" else f"id_{self.line.field}"


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
class PreviewView:
    rows: list[PreviewRow]
    fits: bool
    control_plane: ControlPlaneOverhead | None


def preview_view(
    preview: QuotaPreview, spec: ClusterSpec, *, only_added: bool = False
) -> PreviewView:
    """Rows for ``preview``; ``only_added`` keeps the resources the request adds (scaling)."""
    rows = [
        PreviewRow(line, _explanation(line.resource, spec.instance_type, spec.worker_disk_gib))
        for line in preview.lines
        if line.requested or not only_added
    ]
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


@dataclass(frozen=True)
class ActivityEntry:
    event: AuditEvent

    @property
    def phrase(self) -> str:
        return ACTIVITY_PHRASES.get(self.event.action, self.event.action.replace("_", " "))

    @property
    def actor(self) -> str:
        return self.event.actor_username or "system"

    @property
    def details(self) -> list[tuple[str, str]]:
        """What changed, readably: ``worker count: 2 → 3``, ``addons: cilium, portal-access``."""
        separator = " → " if self.event.action in CHANGE_PAIRS else ", "
        items = []
        for key, value in (self.event.changes or {}).items():
            shown = separator.join(map(str, value)) if isinstance(value, list) else str(value)
            items.append((key.replace("_", " "), shown or "—"))
        return items


def activity_entries(events: QuerySet[AuditEvent], limit: int) -> list[ActivityEntry]:
    return [ActivityEntry(event) for event in events[:limit]]


# --- Actions ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ActionOffer:
    """A button on the cluster page: enabled, or disabled with the reason in words."""

    key: str
    label: str
    icon: str
    url: str
    hint: str
    refusal: str = ""
    # Opens a dialog (GET asks, POST performs); otherwise a plain link (the download).
    dialog: bool = True
    danger: bool = False

    @property
    def enabled(self) -> bool:
        return not self.refusal


def _url(name: str, cluster: Cluster) -> str:
    return reverse(name, args=[cluster.tenant.slug, cluster.pk])


def _state_refusal(cluster: Cluster, action: str) -> str:
    """Why the cluster cannot take ``action`` now: its tenant's state, then its own."""
    if not cluster.tenant.is_active:
        return f"{cluster.tenant.name} is {cluster.tenant.get_state_display().lower()}: nothing can change."
    return cluster_action_refusal(cluster, action)


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
