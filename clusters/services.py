"""Every write to clusters and their catalog.

Views, API viewsets, the admin and tasks call these keyword-only functions. They hold the
rules (quota reserved atomically, one minor version at a time, deletion protection, typed
name to delete, nothing new in a suspended tenant), write the audit trail in the same
transaction, and enqueue the Kubernetes work once it commits. Who may act on the tenant at
all is decided before, through ``for_user`` / ``tenants.scoping``.

Errors are Django ``ValidationError``s keyed by the form field to correct.
"""

from __future__ import annotations

from typing import Any

import yaml
from django.apps import apps
from django.conf import settings
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import IntegrityError, models, transaction
from django.utils import timezone

from clusters.manifests import names_collide
from clusters.models import (
    MAX_WORKERS,
    MIN_WORKERS,
    Cluster,
    ClusterAddon,
    InstanceType,
    KubernetesVersion,
)
from clusters.selectors import cluster_action_refusal, required_addons, upgrade_targets
from clusters.spec import (
    QUOTA_FIELDS,
    ClusterSpec,
    cluster_quota_amounts,
    spec_quota_amounts,
)
from clusters.status import cluster_refresh
from clusters.tasks import delete_after_commit, provision_after_commit
from tenants.audit import Actor, audit_record, audited_save
from tenants.models import Tenant
from tenants.services import (
    ensure_tenant_active,
    ensure_tenant_allows,
    quota_error_on_fields,
    quota_reserve,
)

# --- Helpers --------------------------------------------------------------------------------


def _locked(cluster: Cluster) -> Cluster:
    """The cluster's row, locked for this transaction and re-read (the caller's copy may be stale)."""
    return (
        Cluster.objects.select_for_update(of=("self",))
        .select_related("tenant", "version", "worker_version", "instance_type")
        .get(pk=cluster.pk)
    )


def _require(
    cluster: Cluster, action: str, field: str = NON_FIELD_ERRORS, *, tenant_action: str = ""
) -> None:
    """Refuse ``action`` when the tenant's state (asked as ``tenant_action`` when the rule
    tells its directions apart) or the cluster's own state does not allow it."""
    ensure_tenant_allows(cluster.tenant, tenant_action or action)
    refusal = cluster_action_refusal(cluster, action)
    if refusal:
        raise ValidationError({field: refusal}, code="invalid_state")


def _reserve(cluster: Cluster, amounts: dict[str, int]) -> None:
    try:
        quota_reserve(tenant=cluster.tenant, subject=cluster.quota_subject, amounts=amounts)
    except ValidationError as error:
        raise quota_error_on_fields(error, QUOTA_FIELDS) from error


def _apply_later(cluster: Cluster) -> None:
    provision_after_commit(cluster.pk)


def _start(cluster: Cluster, action: Cluster.Action, *fields: str) -> None:
    """Save ``fields`` and record ``action`` as under way: the cluster's page names it until
    Kubernetes reports it done (``clusters.status.cluster_refresh`` clears it).

    A cluster still coming up for the first time records none: it is simply provisioning,
    towards whatever was asked for last.
    """
    recorded = action == Cluster.Action.DELETE or cluster.ready_at is not None
    cluster.action = action if recorded else Cluster.Action.NONE
    cluster.action_started_at = timezone.now() if recorded else None
    cluster.save(update_fields=[*fields, "action", "action_started_at", "updated_at"])


def _audit(
    actor: Actor, action: str, cluster: Cluster, changes: dict[str, Any] | None = None
) -> None:
    audit_record(
        actor=actor,
        action=action,
        tenant=cluster.tenant,
        target=cluster,
        object_repr=f"{cluster.tenant.slug}/{cluster.name}",
        changes=changes,
    )


# --- Day 1 ----------------------------------------------------------------------------------


def _spec_errors(spec: ClusterSpec) -> dict[str, str]:
    errors = {}
    if not spec.version.is_available:
        errors["version"] = f"{spec.version.version} is end of life: choose a supported version."
    if not spec.instance_type.active:
        errors["instance_type"] = f"{spec.instance_type.name} is no longer offered."
    for addon in spec.addons:
        if not addon.active and not addon.required:
            errors["addons"] = f"The add-on {addon.name} is no longer offered."
    return errors


def _vm_name_clash(tenant: Tenant, name: str) -> str:
    """Why a cluster named ``name`` would collide with one of the tenant's VMs ("" if not)."""
    # By app label, not import: the vms app builds on clusters (instance types), not the reverse.
    vm_model = apps.get_model("vms", "VirtualMachine")
    for vm_name in vm_model.objects.filter(tenant=tenant).values_list("name", flat=True):
        if names_collide(name, vm_name):
            return (
                f"The virtual machine {vm_name} in {tenant.slug} would share this cluster's"
                " object names: choose another name."
            )
    return ""


@transaction.atomic
def cluster_request(*, actor: Actor, tenant: Tenant, spec: ClusterSpec) -> Cluster:
    """Ask for a new cluster: validate, reserve its quota, record it; provisioning follows."""
    # Lock the tenant first: a suspension, a name clash or a quota race is decided here.
    locked_tenant = Tenant.objects.select_for_update().get(pk=tenant.pk)
    ensure_tenant_active(locked_tenant)
    cluster = Cluster(
        tenant=locked_tenant,
        name=spec.name,
        version=spec.version,
        worker_version=spec.version,
        control_plane_replicas=spec.control_plane_replicas,
        worker_count=spec.worker_count,
        instance_type=spec.instance_type,
        worker_disk_gib=spec.worker_disk_gib,
        deletion_protection=spec.deletion_protection,
        created_by=actor.user,
    )
    errors: dict[str, Any] = {}
    try:
        cluster.full_clean(validate_constraints=False)
    except ValidationError as error:
        errors.update(error.message_dict)
    errors.update(_spec_errors(spec))
    if Cluster.objects.filter(tenant=locked_tenant, name=spec.name).exists():
        errors["name"] = f"{locked_tenant.slug} already has a cluster named {spec.name}."
    elif clash := _vm_name_clash(locked_tenant, spec.name):
        errors["name"] = clash
    if errors:
        raise ValidationError(errors)
    try:
        with transaction.atomic():
            cluster.save()
    except IntegrityError as error:  # the same name, committed in between
        raise ValidationError(
            {"name": f"{locked_tenant.slug} already has a cluster named {spec.name}."}
        ) from error
    _reserve(cluster, spec_quota_amounts(spec))
    addons = {addon.pk: addon for addon in [*required_addons(), *spec.addons]}
    cluster.addons.set(addons.values())
    _audit(
        actor,
        "create",
        cluster,
        {
            "version": spec.version.version,
            "control_plane_replicas": spec.control_plane_replicas,
            "worker_count": spec.worker_count,
            "instance_type": spec.instance_type.name,
            "worker_disk_gib": spec.worker_disk_gib,
            "addons": sorted(addon.name for addon in addons.values()),
        },
    )
    cluster_refresh(cluster)
    _apply_later(cluster)
    return cluster


# --- Day 2 ----------------------------------------------------------------------------------


@transaction.atomic
def cluster_scale(*, actor: Actor, cluster: Cluster, worker_count: int) -> Cluster:
    locked = _locked(cluster)
    _require(locked, "scale", "worker_count")
    if not MIN_WORKERS <= worker_count <= MAX_WORKERS:
        raise ValidationError(
            {"worker_count": f"Choose between {MIN_WORKERS} and {MAX_WORKERS} workers."}
        )
    if worker_count == locked.worker_count:
        return locked
    _reserve(
        locked,
        cluster_quota_amounts(
            instance_type=locked.instance_type,
            worker_count=worker_count,
            worker_disk_gib=locked.worker_disk_gib,
        ),
    )
    before = locked.worker_count
    locked.worker_count = worker_count
    _start(locked, Cluster.Action.SCALE, "worker_count")
    _audit(actor, "scale", locked, {"worker_count": [before, worker_count]})
    cluster_refresh(locked)
    _apply_later(locked)
    return locked


@transaction.atomic
def cluster_upgrade(*, actor: Actor, cluster: Cluster, version: KubernetesVersion) -> Cluster:
    """Upgrade the control plane to ``version``; the workers follow once it runs it.

    One step at a time (a newer patch or the next minor), as Kamaji requires.
    """
    locked = _locked(cluster)
    _require(locked, "upgrade", "version")
    if locked.is_upgrading:
        raise ValidationError({"version": "An upgrade is already under way."})
    if version not in upgrade_targets(locked):
        current = locked.version
        raise ValidationError(
            {
                "version": (
                    f"From {current.version} upgrade to a newer v{current.major}.{current.minor} "
                    f"patch or to v{current.major}.{current.minor + 1}, one minor version at a "
                    f"time, and never to an end-of-life version."
                )
            }
        )
    before = locked.version.version
    locked.version = version
    _start(locked, Cluster.Action.UPGRADE, "version")
    _audit(actor, "upgrade", locked, {"version": [before, version.version]})
    cluster_refresh(locked)
    _apply_later(locked)
    return locked


def _set_hibernation(actor: Actor, cluster: Cluster, hibernated: bool) -> Cluster:
    locked = _locked(cluster)
    _require(locked, "hibernate" if hibernated else "wake")
    locked.hibernated = hibernated
    _start(locked, Cluster.Action.HIBERNATE if hibernated else Cluster.Action.WAKE, "hibernated")
    _audit(
        actor,
        "hibernate" if hibernated else "wake",
        locked,
        {"hibernated": [not hibernated, hibernated]},
    )
    cluster_refresh(locked)
    _apply_later(locked)
    return locked


@transaction.atomic
def cluster_hibernate(*, actor: Actor, cluster: Cluster) -> Cluster:
    """Stop the cluster: control plane to 0 replicas (Kamaji: Sleeping), workers to 0.

    Its quota stays reserved, so waking up can never fail for lack of it.
    """
    return _set_hibernation(actor, cluster, True)


@transaction.atomic
def cluster_wake(*, actor: Actor, cluster: Cluster) -> Cluster:
    return _set_hibernation(actor, cluster, False)


@transaction.atomic
def cluster_set_protection(*, actor: Actor, cluster: Cluster, enabled: bool) -> Cluster:
    locked = _locked(cluster)
    # Off is the way to deleting, which a suspended tenant may do; on is a change it may not.
    direction = "protect" if enabled else "unprotect"
    _require(locked, "protection", "deletion_protection", tenant_action=direction)
    if locked.deletion_protection == enabled:
        return locked
    locked.deletion_protection = enabled
    locked.save(update_fields=["deletion_protection", "updated_at"])
    _audit(
        actor,
        "protect" if enabled else "unprotect",
        locked,
        {"deletion_protection": [not enabled, enabled]},
    )
    cluster_refresh(locked)
    return locked


@transaction.atomic
def cluster_retry(*, actor: Actor, cluster: Cluster) -> Cluster:
    """Try a Failed cluster again: reserve its quota again and re-apply."""
    locked = _locked(cluster)
    _require(locked, "retry")
    _reserve(
        locked,
        cluster_quota_amounts(
            instance_type=locked.instance_type,
            worker_count=locked.worker_count,
            worker_disk_gib=locked.worker_disk_gib,
        ),
    )
    _audit(actor, "retry", locked, {"previous_error": locked.apply_error})
    locked.apply_error = ""
    locked.applied_at = None
    # Whatever was under way starts over as plain provisioning of what is asked for now.
    locked.action, locked.action_started_at = Cluster.Action.NONE, None
    locked.save(
        update_fields=["apply_error", "applied_at", "action", "action_started_at", "updated_at"]
    )
    cluster_refresh(locked)
    _apply_later(locked)
    return locked


@transaction.atomic
def cluster_delete(*, actor: Actor, cluster: Cluster, confirm_name: str) -> bool:
    """Delete a cluster whose name was typed to confirm, unless it is protected.

    Its objects go first; the quota and the row only once Kubernetes confirms they are gone
    (``clusters.tasks.delete_cluster``). Returns True when the cluster is gone already
    (no Kubernetes configured: there is nothing to wait for).
    """
    locked = _locked(cluster)
    _require(locked, "delete")
    if confirm_name.strip() != locked.name:
        raise ValidationError(
            {"confirm_name": f"Type the cluster's name, {locked.name}, to confirm."}
        )
    if locked.deletion_protection:
        raise ValidationError(
            {NON_FIELD_ERRORS: "Deletion protection is on: turn it off first."}, code="protected"
        )
    _audit(actor, "delete", locked)
    locked.deletion_requested_at = timezone.now()
    _start(locked, Cluster.Action.DELETE, "deletion_requested_at")
    cluster_refresh(locked)
    if settings.KUBE_MODE == "off":
        from clusters.provisioning import cluster_delete_finish

        cluster_delete_finish(cluster_id=locked.pk, audited=False)
        return True
    delete_after_commit(locked.pk)
    return False


# --- Catalog --------------------------------------------------------------------------------


#: What an operator sets on each catalog entry (the API, the console's form and the audit
#: trail all name these).
KUBERNETES_VERSION_FIELDS = ("version", "status", "node_image")
INSTANCE_TYPE_FIELDS = ("name", "vcpu", "memory_mib", "description", "active")
CLUSTER_ADDON_FIELDS = (
    "name",
    "description",
    "repository_url",
    "chart",
    "version",
    "values",
    "target_namespace",
    "required",
    "active",
)


def kubernetes_version_check(version: KubernetesVersion) -> None:
    """Refuse changes the catalog must not take (the admin's form calls this too)."""
    stored = KubernetesVersion.objects.filter(pk=version.pk).first() if version.pk else None
    if stored is None:
        return
    if stored.version != version.version:
        raise ValidationError(
            {"version": "The version string cannot change; add a new version instead."}
        )
    if (
        stored.status == KubernetesVersion.Status.DEFAULT
        and version.status != KubernetesVersion.Status.DEFAULT
    ):
        raise ValidationError({"status": "Make another version the default first."})


@transaction.atomic
def kubernetes_version_save(*, actor: Actor, version: KubernetesVersion) -> KubernetesVersion:
    """Create or change a catalog version; making one the default demotes the previous one."""
    # Lock the current default: two operators swapping defaults at once queue up here.
    list(
        KubernetesVersion.objects.select_for_update().filter(
            status=KubernetesVersion.Status.DEFAULT
        )
    )
    kubernetes_version_check(version)
    if version.status == KubernetesVersion.Status.DEFAULT:
        previous_defaults = KubernetesVersion.objects.filter(
            status=KubernetesVersion.Status.DEFAULT
        ).exclude(pk=version.pk)
        for previous in previous_defaults:
            previous.status = KubernetesVersion.Status.SUPPORTED
            audited_save(actor=actor, row=previous, fields=["status"])
    audited_save(actor=actor, row=version, fields=KUBERNETES_VERSION_FIELDS)
    return version


def instance_type_check(instance_type: InstanceType) -> None:
    """A size in use keeps its name, vCPU and memory: running workers and the quota they
    hold were sized by it."""
    stored = InstanceType.objects.filter(pk=instance_type.pk).first() if instance_type.pk else None
    if stored is None or not _in_use(stored):
        return
    if (stored.vcpu, stored.memory_mib) != (instance_type.vcpu, instance_type.memory_mib):
        raise ValidationError(
            {"vcpu": "In use: add a new instance type instead of resizing this one."}
        )
    if stored.name != instance_type.name:
        raise ValidationError({"name": "In use: it cannot be renamed."})


@transaction.atomic
def instance_type_save(*, actor: Actor, instance_type: InstanceType) -> InstanceType:
    instance_type_check(instance_type)
    audited_save(
        actor=actor,
        row=instance_type,
        fields=INSTANCE_TYPE_FIELDS,
    )
    return instance_type


def _in_use(instance: models.Model) -> bool:
    """Whether anything (a cluster, a VM) refers to this catalog row."""
    for relation in instance._meta.related_objects:
        accessor = relation.get_accessor_name()
        if accessor and relation.one_to_many and getattr(instance, accessor).exists():
            return True
    return False


def cluster_addon_check(addon: ClusterAddon) -> None:
    try:
        values = yaml.safe_load(addon.values) if addon.values.strip() else {}
    except yaml.YAMLError as error:
        raise ValidationError({"values": f"Not valid YAML: {error}"}) from error
    if not isinstance(values, dict):
        raise ValidationError({"values": "Helm values must be a YAML mapping."})


@transaction.atomic
def cluster_addon_save(*, actor: Actor, addon: ClusterAddon) -> ClusterAddon:
    """Create or change an add-on. Clusters pick up a change at their next apply."""
    cluster_addon_check(addon)
    audited_save(
        actor=actor,
        row=addon,
        fields=CLUSTER_ADDON_FIELDS,
    )
    return addon


__all__ = [
    "ClusterSpec",
    "cluster_addon_check",
    "cluster_addon_save",
    "cluster_delete",
    "cluster_hibernate",
    "cluster_request",
    "cluster_retry",
    "cluster_scale",
    "cluster_set_protection",
    "cluster_upgrade",
    "cluster_wake",
    "instance_type_check",
    "instance_type_save",
    "kubernetes_version_check",
    "kubernetes_version_save",
]
