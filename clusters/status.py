"""What the watcher follows for clusters, and how it lands in the database.

``status_handlers()`` and ``drift_checks()`` are the watcher contract (see
``butler_portal.watcher.registry``). Each handler stores
the object's latest state as a ``ClusterObservation`` and re-derives the cluster's phase,
reason and timeline from all of them (``clusters.lifecycle.derive``, pure and unit-tested);
``cluster_refresh`` writes the result and tells the tenant's browsers. The watcher runs each
handler in a transaction, so events go out only once it commits.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from butler_portal.kube.adapter import Manifest
from butler_portal.kube.informer import Handler, WatchedKind
from butler_portal.labels import CLUSTER_KEY, MANAGED_SELECTOR
from butler_portal.lifecycle import Step, step_clock
from butler_portal.realtime import publish_tenant_event
from butler_portal.watcher.drift import DriftCheck
from clusters.lifecycle import READY, Desired, Picture, derive, hold_progress, normalise_version
from clusters.manifests import (
    CAPI_CLUSTER_NAME_KEY,
    CLUSTER_API,
    CONTROL_PLANE_API,
    HELM_RELEASE_API,
    TENANT_CONTROL_PLANE_API,
)
from clusters.models import Cluster, ClusterObservation, ClusterStep
from tenants.audit import Actor, audit_record
from tenants.owned import namespace_of, owned_in_namespace

CLUSTER_EVENT = "cluster.changed"

#: Kinds named after their cluster (the portal names the control plane like the cluster).
NAMED_LIKE_THE_CLUSTER = frozenset({"Cluster", "KamajiControlPlane", "TenantControlPlane"})


# --- Deriving and storing the picture ---------------------------------------------------------


def desired_of(cluster: Cluster) -> Desired:
    return Desired(
        name=cluster.name,
        version=cluster.version.version,
        worker_version=cluster.worker_version.version,
        worker_count=cluster.worker_count,
        hibernated=cluster.hibernated,
        action=cluster.action,
        addons=[addon.name for addon in cluster.addons.all()],
        applied=cluster.applied_at is not None,
        deleting=cluster.deletion_requested_at is not None,
        apply_error=cluster.apply_error,
        ever_ready=cluster.ready_at is not None,
        # The tenant's MetalLB IPAddressPool is named like its namespace (tenants.manifests).
        address_pool=namespace_of(cluster),
    )


def cluster_refresh(cluster: Cluster) -> Picture:
    """Re-derive phase, reason and timeline; save them; publish an event when they changed.

    Also moves an upgrade on: once the control plane runs the new version, the workers
    follow (STATUS.md §10.9: control plane first); and ends the action under way once
    Kubernetes reports it done.
    """
    phase_before = cluster.phase
    objects = [observation.body for observation in cluster.observations.all()]
    picture = derive(desired_of(cluster), objects)
    if _workers_may_follow(cluster, picture):
        picture = derive(desired_of(cluster), objects)
    now = timezone.now()
    # Within one action, what Kubernetes reported done since it started stays done.
    held_since = cluster.action_started_at if picture.action == cluster.action else None
    updates: dict[str, Any] = {
        "phase": picture.phase,
        "phase_reason": picture.reason,
        "phase_reason_raw": picture.reason_raw,
        "action": picture.action,
        "action_started_at": cluster.action_started_at if picture.action else None,
        "endpoint": picture.endpoint,
        "control_plane_version": picture.control_plane_version,
        "control_plane_ready": picture.control_plane_ready,
        "control_plane_initialized": picture.control_plane_initialized,
        "ready_workers": picture.ready_workers,
    }
    if picture.phase == READY and cluster.ready_at is None:
        updates["ready_at"] = now
    changed = [name for name, value in updates.items() if getattr(cluster, name) != value]
    for name in changed:
        setattr(cluster, name, updates[name])
    if changed:
        cluster.save(update_fields=[*changed, "updated_at"])
    steps_changed = sync_steps(cluster, picture.steps, now, held_since=held_since)
    if changed or steps_changed:
        toast = _phase_toast(cluster, phase_before)
        publish_tenant_event(
            cluster.tenant_id, CLUSTER_EVENT, cluster.pk, phase=cluster.phase, **toast
        )
    return picture


def _phase_toast(cluster: Cluster, phase_before: str) -> dict[str, str]:
    """A notification for the tenant's open pages (``live.js``) when a cluster becomes Ready
    or fails; nothing for the steps in between or a phase that did not change."""
    if cluster.phase == phase_before:
        return {}
    name = f"{cluster.tenant.slug}/{cluster.name}"
    if cluster.phase == Cluster.Phase.READY:
        return {"toast": f"Cluster {name} is ready.", "level": "success"}
    if cluster.phase == Cluster.Phase.FAILED:
        reason = f": {cluster.phase_reason}" if cluster.phase_reason else "."
        return {"toast": f"Cluster {name} failed{reason}", "level": "error"}
    return {}


def _workers_may_follow(cluster: Cluster, picture: Picture) -> bool:
    target = cluster.version.version
    if cluster.worker_version_id == cluster.version_id:
        return False
    if picture.control_plane_version != normalise_version(target):
        return False
    from clusters.tasks import provision_after_commit

    before = cluster.worker_version.version
    cluster.worker_version = cluster.version
    cluster.save(update_fields=["worker_version", "updated_at"])
    audit_record(
        actor=Actor.system(),
        action="upgrade_workers",
        tenant=cluster.tenant,
        target=cluster,
        changes={"worker_version": [before, target]},
    )
    provision_after_commit(cluster.pk)
    return True


def _as_step(row: ClusterStep) -> Step:
    return Step(row.key, row.label, row.position, row.state, row.message, row.raw)


def sync_steps(
    cluster: Cluster, steps: Sequence[Step], now: datetime, *, held_since: datetime | None = None
) -> bool:
    """Make the stored timeline match ``steps``; timestamps move with state changes.

    Steps done since ``held_since`` (the start of the action under way) stay done.
    """
    stored = {row.key: row for row in cluster.steps.all()}
    if held_since is not None:
        done = {
            key: _as_step(row)
            for key, row in stored.items()
            if row.state == ClusterStep.State.DONE
            and row.finished_at is not None
            and row.finished_at >= held_since
        }
        steps = hold_progress(steps, done)
    created, updated = [], []
    for step in steps:
        row = stored.pop(step.key, None)
        if row is None:
            started_at, finished_at = step_clock(step.state, None, now)
            created.append(
                ClusterStep(
                    cluster=cluster,
                    key=step.key,
                    label=step.label,
                    state=step.state,
                    message=step.message,
                    raw=step.raw,
                    position=step.position,
                    started_at=started_at,
                    finished_at=finished_at,
                )
            )
            continue
        if (row.label, row.state, row.message, row.raw, row.position) == (
            step.label,
            step.state,
            step.message,
            step.raw,
            step.position,
        ):
            continue
        if row.state != step.state:
            # Finishing (or failing) ends the attempt that started when the step went active;
            # anything else starts afresh.
            ongoing = row.state in {ClusterStep.State.ACTIVE, ClusterStep.State.FAILED}
            row.started_at, row.finished_at = step_clock(
                step.state, row.started_at if ongoing else None, now
            )
        row.label, row.state, row.message, row.raw, row.position = (
            step.label,
            step.state,
            step.message,
            step.raw,
            step.position,
        )
        updated.append(row)
    if created:
        ClusterStep.objects.bulk_create(created)
    if updated:
        ClusterStep.objects.bulk_update(
            updated,
            ["label", "state", "message", "raw", "position", "started_at", "finished_at"],
        )
    if stored:
        ClusterStep.objects.filter(pk__in=[row.pk for row in stored.values()]).delete()
    return bool(created or updated or stored)


# --- Observing Kubernetes objects -------------------------------------------------------------


def _cluster_name(kind: str, obj: Manifest) -> str:
    metadata = obj.get("metadata") or {}
    labels = metadata.get("labels") or {}
    return str(
        labels.get(CLUSTER_KEY)
        or labels.get(CAPI_CLUSTER_NAME_KEY)
        or (obj.get("spec") or {}).get("clusterName")
        or (metadata.get("name") if kind in NAMED_LIKE_THE_CLUSTER else "")
        or ""
    )


def _locked_cluster(kind: str, obj: Manifest) -> Cluster | None:
    """The portal cluster an object belongs to, locked for this transaction.

    The namespace decides the tenant (tenants never write to the management cluster, but
    the namespace is authoritative anyway); the labels or the object's name the cluster.
    """
    namespace = str((obj.get("metadata") or {}).get("namespace") or "")
    name = _cluster_name(kind, obj)
    if not namespace or not name:
        return None
    # Lock the cluster row only: one informer thread per kind may report on the same
    # cluster at once, and each must derive from what the others stored.
    return (
        Cluster.objects.select_for_update(of=("self",))
        .select_related("tenant", "version", "worker_version")
        .filter(owned_in_namespace(namespace), name=name)
        .first()
    )


def _snapshot(obj: Manifest) -> dict[str, Any]:
    """What derivation needs of an object (managedFields and annotations stay out)."""
    metadata = obj.get("metadata") or {}
    kept = ("name", "namespace", "generation", "creationTimestamp", "deletionTimestamp", "labels")
    return {
        "apiVersion": obj.get("apiVersion"),
        "kind": obj.get("kind"),
        "metadata": {key: metadata[key] for key in kept if key in metadata},
        "spec": obj.get("spec") or {},
        "status": obj.get("status") or {},
    }


@transaction.atomic
def cluster_observe(*, kind: str, event_type: str, obj: Manifest) -> int | None:
    """Store what Kubernetes reports about one object; returns the cluster's id, if any."""
    cluster = _locked_cluster(kind, obj)
    if cluster is None:
        return None
    name = str((obj.get("metadata") or {}).get("name") or "")
    if event_type == "DELETED":
        ClusterObservation.objects.filter(cluster=cluster, kind=kind, name=name).delete()
        if kind == "Cluster" and cluster.deletion_requested_at is not None:
            from clusters.tasks import delete_after_commit

            # Cluster API has let go of it: sweep what is left and finish the deletion.
            delete_after_commit(cluster.pk)
    else:
        ClusterObservation.objects.update_or_create(
            cluster=cluster,
            kind=kind,
            name=name,
            defaults={"body": _snapshot({**obj, "kind": kind}), "observed_at": timezone.now()},
        )
    cluster_refresh(cluster)
    return cluster.pk


def _observer(kind: str) -> Handler:
    def handle(event_type: str, obj: Manifest) -> None:
        cluster_observe(kind=kind, event_type=event_type, obj=obj)

    return handle


def status_handlers() -> dict[WatchedKind, Handler]:
    # Machines are created by Cluster API, not the portal: they carry the portal's labels
    # only through the MachineDeployment's template, so follow every CAPI Machine and let
    # the namespace and cluster name decide.
    machines = WatchedKind(CLUSTER_API, "Machine", label_selector=CAPI_CLUSTER_NAME_KEY)
    return {
        WatchedKind(CLUSTER_API, "Cluster", label_selector=MANAGED_SELECTOR): _observer("Cluster"),
        WatchedKind(
            CONTROL_PLANE_API, "KamajiControlPlane", label_selector=MANAGED_SELECTOR
        ): _observer("KamajiControlPlane"),
        # The TenantControlPlane carries its KamajiControlPlane's labels.
        WatchedKind(
            TENANT_CONTROL_PLANE_API, "TenantControlPlane", label_selector=MANAGED_SELECTOR
        ): _observer("TenantControlPlane"),
        WatchedKind(CLUSTER_API, "MachineDeployment", label_selector=MANAGED_SELECTOR): _observer(
            "MachineDeployment"
        ),
        machines: _observer("Machine"),
        WatchedKind(HELM_RELEASE_API, "HelmRelease", label_selector=MANAGED_SELECTOR): _observer(
            "HelmRelease"
        ),
    }


def drift_checks() -> list[DriftCheck]:
    """The periodic reconcile's check of clusters (see ``clusters.drift``)."""
    from clusters.drift import cluster_drift_check

    return [cluster_drift_check()]
