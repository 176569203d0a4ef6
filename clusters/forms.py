"""Browser forms for clusters. They check shape (types, ranges, DNS labels) and nothing more:
quota, catalog and state rules live in ``clusters.services``, whose errors the views put
back onto these fields (the field names match the services' error keys).

The machinery every create form shares (the name rule, the catalog's choices and defaults,
the live quota preview's inputs) is ``tenants.forms.PreviewedForm``; the VM forms reuse the
instance-type choices.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django import forms
from django.db.models import QuerySet

from clusters.models import (
    CLUSTER_NAME_MAX_LENGTH,
    MAX_CONTROL_PLANE_REPLICAS,
    MAX_WORKER_DISK_GIB,
    MAX_WORKERS,
    MIN_CONTROL_PLANE_REPLICAS,
    MIN_WORKER_DISK_GIB,
    MIN_WORKERS,
    Cluster,
    ClusterAddon,
    InstanceType,
    KubernetesVersion,
)
from clusters.selectors import (
    cluster_form_defaults,
    cluster_spec_with_defaults,
    offered_addons,
    offered_instance_types,
    offered_versions,
)
from clusters.spec import ClusterSpec
from tenants.forms import (
    ObjectFilterForm,
    PreviewedForm,
    catalog_cards,
    dataclass_values,
    name_search_field,
    object_name_field,
    state_filter_field,
)

# The stubs make model choice fields generic; at run time Django's classes are not.
if TYPE_CHECKING:
    VersionFieldBase = forms.ModelChoiceField[KubernetesVersion]
    InstanceTypeFieldBase = forms.ModelChoiceField[InstanceType]
else:
    VersionFieldBase = InstanceTypeFieldBase = forms.ModelChoiceField


class VersionChoiceField(VersionFieldBase):
    """Versions as "v1.35.4 · default" / "v1.33.4 · deprecated", so the catalog's advice shows."""

    def label_from_instance(self, obj: KubernetesVersion) -> str:
        if obj.status == KubernetesVersion.Status.SUPPORTED:
            return obj.version
        return f"{obj.version} · {obj.get_status_display().lower()}"


class InstanceTypeChoiceField(InstanceTypeFieldBase):
    def label_from_instance(self, obj: InstanceType) -> str:
        memory = f"{obj.memory_gib:g} GiB"
        return f"{obj.name} · {obj.vcpu} vCPU, {memory}"


def replica_label(replicas: int) -> str:
    if replicas == 1:
        return "1 · single replica"
    survives = "one failure" if replicas == 2 else f"{replicas - 1} failures"
    return f"{replicas} · survives {survives}"


class ClusterForm(PreviewedForm[ClusterSpec]):
    # The name, version and add-ons cost nothing; the replicas only the platform's allowance.
    quota_inputs = ("instance_type", "worker_count", "worker_disk_gib")
    free_inputs = ("control_plane_replicas",)

    name = object_name_field(
        max_length=CLUSTER_NAME_MAX_LENGTH,
        afterwards="It cannot be changed later.",
        example="web-prod",
    )
    version = VersionChoiceField(
        queryset=KubernetesVersion.objects.none(),
        empty_label=None,
        label="Kubernetes version",
        help_text="From the operator's catalog. Upgrades go one minor version at a time.",
    )
    control_plane_replicas = forms.TypedChoiceField(
        coerce=int,
        label="Control-plane replicas",
        choices=[
            (replicas, replica_label(replicas))
            for replicas in range(MIN_CONTROL_PLANE_REPLICAS, MAX_CONTROL_PLANE_REPLICAS + 1)
        ],
        widget=forms.RadioSelect,
        help_text="API-server pods the platform hosts for the cluster (Kamaji).",
    )
    worker_count = forms.IntegerField(
        min_value=MIN_WORKERS,
        max_value=MAX_WORKERS,
        label="Workers",
        help_text=f"Virtual machines that run your workloads ({MIN_WORKERS}–{MAX_WORKERS}).",
    )
    instance_type = catalog_cards(InstanceTypeChoiceField, label="Worker size")
    worker_disk_gib = forms.IntegerField(
        min_value=MIN_WORKER_DISK_GIB,
        max_value=MAX_WORKER_DISK_GIB,
        label="Disk per worker (GiB)",
        help_text=f"Root disk of each worker ({MIN_WORKER_DISK_GIB}–{MAX_WORKER_DISK_GIB} GiB).",
    )
    addons = forms.ModelMultipleChoiceField(
        queryset=ClusterAddon.objects.none(),
        required=False,
        label="Optional add-ons",
        widget=forms.CheckboxSelectMultiple,
    )
    deletion_protection = forms.BooleanField(
        required=False,
        label="Protect from deletion",
        help_text="The cluster cannot be deleted until someone turns this off.",
    )

    def catalog_defaults(self) -> dict[str, Any]:
        return dataclass_values(cluster_form_defaults())

    def catalog_choices(self) -> dict[str, QuerySet[Any]]:
        return {
            "version": offered_versions(),
            "instance_type": offered_instance_types(),
            "addons": offered_addons(),
        }

    def spec_with_defaults(self, **values: Any) -> ClusterSpec:
        return cluster_spec_with_defaults(**values)


class ScaleForm(forms.Form):
    worker_count = forms.IntegerField(
        min_value=MIN_WORKERS,
        max_value=MAX_WORKERS,
        label="Workers",
        help_text=f"Between {MIN_WORKERS} and {MAX_WORKERS}. New workers join with the current size and disk.",
    )


class UpgradeForm(forms.Form):
    """The next versions ``clusters.selectors.upgrade_targets`` offers, as radio buttons."""

    version = VersionChoiceField(
        queryset=KubernetesVersion.objects.none(),
        empty_label=None,
        label="Upgrade to",
        widget=forms.RadioSelect,
    )

    def __init__(self, *args: Any, targets: list[KubernetesVersion], **kwargs: Any) -> None:
        if targets:
            kwargs.setdefault("initial", {"version": targets[0]})  # the newest it may reach
        super().__init__(*args, **kwargs)
        self.fields["version"].queryset = KubernetesVersion.objects.filter(  # type: ignore[attr-defined]
            pk__in=[target.pk for target in targets]
        )


class ClusterFilterForm(ObjectFilterForm):
    """Search and phase filter of the cluster list (GET parameters)."""

    state_field = "phase"

    q = name_search_field(CLUSTER_NAME_MAX_LENGTH)
    phase = state_filter_field("Phase", Cluster.Phase.choices)
