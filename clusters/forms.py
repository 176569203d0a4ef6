"""Browser forms for clusters. They check shape (types, ranges, DNS labels) and nothing more:
quota, catalog and state rules live in ``clusters.services``, whose errors the views put
back onto these fields (the field names match the services' error keys).

The VM forms reuse the generic pieces: the name rule, instance-type choices, the live quota
preview's inputs (``PreviewedForm``) and the typed-name deletion (``TypedNameForm``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator

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
from tenants.models import dns_label_validator

#: The fields a quota preview needs; the others (name, version...) cost nothing.
QUOTA_INPUTS = ("instance_type", "worker_count", "worker_disk_gib")

TEXT_INPUT_ATTRS = {"autocomplete": "off", "autocapitalize": "none", "spellcheck": "false"}

# The DNS-label rule, worded without its 63-character bound (cluster names stop sooner).
CLUSTER_NAME_VALIDATOR = RegexValidator(
    dns_label_validator.regex,
    "Use lowercase letters, digits and hyphens, starting with a letter and not ending with a "
    "hyphen.",
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


class PreviewedForm(forms.Form):
    """A create form whose quota preview follows its inputs as they are typed (clusters, VMs).

    ``quota_inputs`` are the fields whose values cost quota; the preview needs them well
    formed, and nothing else (the name may not be typed yet).
    """

    quota_inputs: ClassVar[tuple[str, ...]] = ()

    def submitted(self, name: str) -> Any:
        """The field's value as typed, cleaned on its own (None when it is not valid).

        Independent of ``errors``: a refusal the service put on the field afterwards does not
        make a well-formed value unusable (the preview still shows what it would take).
        """
        try:
            return self.fields[name].clean(self[name].data)
        except ValidationError:
            return None

    @property
    def invalid_quota_inputs(self) -> list[str]:
        """Labels of the quota inputs to correct before a preview is possible."""
        return [
            str(self.fields[name].label)
            for name in self.quota_inputs
            if self.submitted(name) is None
        ]


class ClusterForm(PreviewedForm):
    quota_inputs = QUOTA_INPUTS

    name = forms.CharField(
        max_length=CLUSTER_NAME_MAX_LENGTH,
        validators=[CLUSTER_NAME_VALIDATOR],
        help_text=(
            f"Up to {CLUSTER_NAME_MAX_LENGTH} lowercase letters, digits or hyphens, starting "
            "with a letter and not ending with a hyphen. It cannot be changed later."
        ),
        widget=forms.TextInput(attrs={**TEXT_INPUT_ATTRS, "placeholder": "e.g. web-prod"}),
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
    instance_type = InstanceTypeChoiceField(
        queryset=InstanceType.objects.none(),
        empty_label=None,
        label="Worker size",
        widget=forms.RadioSelect,
    )
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

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        defaults = cluster_form_defaults()
        kwargs.setdefault(
            "initial",
            {
                "version": defaults.version,
                "instance_type": defaults.instance_type,
                "control_plane_replicas": defaults.control_plane_replicas,
                "worker_count": defaults.worker_count,
                "worker_disk_gib": defaults.worker_disk_gib,
            },
        )
        super().__init__(*args, **kwargs)
        # Querysets are set per form: the catalog changes while the portal runs.
        self.fields["version"].queryset = offered_versions()  # type: ignore[attr-defined]
        self.fields["instance_type"].queryset = offered_instance_types()  # type: ignore[attr-defined]
        self.fields["addons"].queryset = offered_addons()  # type: ignore[attr-defined]

    def spec(self) -> ClusterSpec:
        """The request, from a valid form (raises the catalog's ValidationError, if any)."""
        data = self.cleaned_data
        return cluster_spec_with_defaults(
            name=data["name"],
            version=data["version"],
            instance_type=data["instance_type"],
            control_plane_replicas=data["control_plane_replicas"],
            worker_count=data["worker_count"],
            worker_disk_gib=data["worker_disk_gib"],
            deletion_protection=data["deletion_protection"],
            addons=list(data["addons"]),
        )

    def preview_spec(self) -> ClusterSpec | None:
        """What to preview, once the inputs that cost quota are well formed (the name may not
        be typed yet); None while one of them is not."""
        inputs = {name: self.submitted(name) for name in QUOTA_INPUTS}
        if None in inputs.values():
            return None
        try:
            return cluster_spec_with_defaults(
                name="", control_plane_replicas=self.submitted("control_plane_replicas"), **inputs
            )
        except ValidationError:  # the catalog offers no default version
            return None


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


class TypedNameForm(forms.Form):
    """A deletion confirmed by typing the name of what goes (a cluster, a VM). The typed
    name goes to the delete service as ``confirm_name``, which checks it."""

    confirm_name = forms.CharField(max_length=100, widget=forms.TextInput(attrs=TEXT_INPUT_ATTRS))

    def __init__(self, *args: Any, name: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["confirm_name"].label = f"Type “{name}” to confirm"


class ClusterFilterForm(forms.Form):
    """Search and phase filter of the cluster list (GET parameters)."""

    q = forms.CharField(
        required=False,
        max_length=CLUSTER_NAME_MAX_LENGTH,
        label="Search",
        widget=forms.SearchInput(attrs={"placeholder": "Search by name…", "autocomplete": "off"}),
    )
    phase = forms.ChoiceField(
        required=False,
        label="Phase",
        choices=[("", "All phases"), *Cluster.Phase.choices],
    )
