"""Kubernetes clusters and the operator's catalog they are built from.

Catalog (operators curate it; everyone signed in reads it):
- ``KubernetesVersion``: what a cluster may run, with one default;
- ``InstanceType``: worker (and VM) sizes;
- ``ClusterAddon``: Helm charts installed into tenant clusters through Flux.

A ``Cluster`` row holds what the tenant asked for (desired state) and what Kubernetes last
reported (observed state); ``ClusterStep`` rows are its provisioning timeline and
``ClusterObservation`` rows the latest status of each Kubernetes object behind it, from which
the watcher derives phase, reason and timeline (see ``clusters.lifecycle``).
"""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from tenants.models import Tenant, TenantOwnedQuerySet, User, dns_label_validator

VERSION_PATTERN = re.compile(
    r"^v(?P<major>0|[1-9]\d*)\.(?P<minor>0|[1-9]\d*)\.(?P<patch>0|[1-9]\d*)$"
)
version_validator = RegexValidator(VERSION_PATTERN, "Use a release version such as v1.35.4.")

# Cluster names end up inside longer names and label values that Kubernetes caps at 63
# characters: "<name>-md-0-<5>-<5>" names each worker VM, whose launcher pod carries it in
# a label with a prefix. 40 leaves room for all of them.
CLUSTER_NAME_MAX_LENGTH = 40
MIN_CONTROL_PLANE_REPLICAS, MAX_CONTROL_PLANE_REPLICAS = 1, 3
MIN_WORKERS, MAX_WORKERS = 1, 100
MIN_WORKER_DISK_GIB, MAX_WORKER_DISK_GIB = 10, 4096


# --- Catalog ------------------------------------------------------------------------------


class KubernetesVersion(models.Model):
    class Status(models.TextChoices):
        DEFAULT = "default", "Default"
        SUPPORTED = "supported", "Supported"
        DEPRECATED = "deprecated", "Deprecated"
        END_OF_LIFE = "end-of-life", "End of life"

    version = models.CharField(max_length=32, unique=True, validators=[version_validator])
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.SUPPORTED)
    node_image = models.CharField(
        max_length=255,
        blank=True,
        help_text=(
            "Worker boot image (a container disk with kubelet and kubeadm of this version). "
            "Empty: the CLUSTER_NODE_IMAGE pattern. A change reaches a cluster's workers at "
            "its next change (scale, upgrade, wake)."
        ),
    )
    # Parsed from ``version`` on save, so versions sort and compare as numbers.
    major = models.PositiveSmallIntegerField(editable=False, default=0)
    minor = models.PositiveSmallIntegerField(editable=False, default=0)
    patch = models.PositiveSmallIntegerField(editable=False, default=0)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-major", "-minor", "-patch"]
        constraints = [
            models.UniqueConstraint(
                fields=["status"], condition=Q(status="default"), name="one_default_version"
            )
        ]

    def __str__(self) -> str:
        return self.version

    def save(self, *args: Any, **kwargs: Any) -> None:
        match = VERSION_PATTERN.match(self.version)
        if match:
            self.major, self.minor, self.patch = (
                int(match[part]) for part in ("major", "minor", "patch")
            )
        super().save(*args, **kwargs)

    def clean(self) -> None:
        if not VERSION_PATTERN.match(self.version):
            raise ValidationError({"version": "Use a release version such as v1.35.4."})

    def validate_constraints(self, exclude: Collection[str] | None = None) -> None:
        # Making a version the default is allowed: the save service demotes the previous
        # one in the same transaction, so forms must not refuse it up front.
        super().validate_constraints(exclude={*(exclude or ()), "status"})

    @property
    def is_available(self) -> bool:
        """New clusters and upgrades may use it."""
        return self.status != self.Status.END_OF_LIFE

    @property
    def minor_version(self) -> tuple[int, int]:
        return (self.major, self.minor)


class InstanceType(models.Model):
    """A machine size, shared by cluster workers and virtual machines."""

    name = models.CharField(
        max_length=63,
        unique=True,
        validators=[
            RegexValidator(
                r"^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$",
                "Use lowercase letters, digits, dots and hyphens, e.g. m1.large.",
            )
        ],
    )
    vcpu = models.PositiveSmallIntegerField(
        validators=[MinValueValidator(1), MaxValueValidator(256)]
    )
    memory_mib = models.PositiveIntegerField(
        validators=[MinValueValidator(512), MaxValueValidator(4 * 1024 * 1024)]
    )
    description = models.CharField(max_length=200, blank=True)
    active = models.BooleanField(default=True, help_text="Offered for new clusters and VMs.")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["vcpu", "memory_mib", "name"]

    def __str__(self) -> str:
        return self.name

    @property
    def memory_gib(self) -> float:
        return self.memory_mib / 1024


helm_repository_validator = RegexValidator(
    r"^(https?|oci)://\S+$", "Use an http(s):// or oci:// Helm repository URL."
)


class ClusterAddon(models.Model):
    """A Helm chart that Flux installs into tenant clusters (a CNI, metrics-server, ...)."""

    name = models.CharField(max_length=40, unique=True, validators=[dns_label_validator])
    description = models.CharField(max_length=200, blank=True)
    repository_url = models.CharField(max_length=255, validators=[helm_repository_validator])
    chart = models.CharField(max_length=120)
    version = models.CharField(max_length=64, help_text='Chart version or range, e.g. "1.17.x".')
    values = models.TextField(blank=True, help_text="Helm values (YAML).")
    target_namespace = models.CharField(
        max_length=63, default="kube-system", validators=[dns_label_validator]
    )
    required = models.BooleanField(
        default=False, help_text="Installed into every new cluster (a CNI, access rules)."
    )
    active = models.BooleanField(default=True, help_text="Offered for new clusters.")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-required", "name"]

    def __str__(self) -> str:
        return self.name


# --- Clusters -----------------------------------------------------------------------------


class Cluster(models.Model):
    class Phase(models.TextChoices):
        PENDING = "pending", "Pending"
        PROVISIONING = "provisioning", "Provisioning"
        READY = "ready", "Ready"
        SCALING = "scaling", "Scaling"
        UPGRADING = "upgrading", "Upgrading"
        HIBERNATING = "hibernating", "Hibernating"
        HIBERNATED = "hibernated", "Hibernated"
        WAKING = "waking", "Waking up"
        DEGRADED = "degraded", "Degraded"
        DELETING = "deleting", "Deleting"
        FAILED = "failed", "Failed"

    class Action(models.TextChoices):
        """A day-2 action a person asked for, under way until Kubernetes reports it done."""

        NONE = "", "None"
        SCALE = "scale", "Scale"
        UPGRADE = "upgrade", "Upgrade"
        HIBERNATE = "hibernate", "Hibernate"
        WAKE = "wake", "Wake up"
        DELETE = "delete", "Delete"

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="clusters")
    name = models.CharField(max_length=CLUSTER_NAME_MAX_LENGTH, validators=[dns_label_validator])

    # Desired state: what the tenant asked for.
    version = models.ForeignKey(
        KubernetesVersion,
        on_delete=models.PROTECT,
        related_name="clusters",
        help_text="The control plane's version (the target, during an upgrade).",
    )
    worker_version = models.ForeignKey(
        KubernetesVersion,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="The workers' version; follows the control plane once it runs the new one.",
    )
    control_plane_replicas = models.PositiveSmallIntegerField(
        default=2,
        validators=[
            MinValueValidator(MIN_CONTROL_PLANE_REPLICAS),
            MaxValueValidator(MAX_CONTROL_PLANE_REPLICAS),
        ],
    )
    worker_count = models.PositiveSmallIntegerField(
        default=2, validators=[MinValueValidator(MIN_WORKERS), MaxValueValidator(MAX_WORKERS)]
    )
    instance_type = models.ForeignKey(
        InstanceType, on_delete=models.PROTECT, related_name="clusters"
    )
    worker_disk_gib = models.PositiveIntegerField(
        default=20,
        validators=[MinValueValidator(MIN_WORKER_DISK_GIB), MaxValueValidator(MAX_WORKER_DISK_GIB)],
    )
    addons = models.ManyToManyField(ClusterAddon, blank=True, related_name="clusters")
    deletion_protection = models.BooleanField(default=False)
    hibernated = models.BooleanField(default=False)

    # Where it stands, derived from Kubernetes by the watcher (clusters.status).
    phase = models.CharField(max_length=16, choices=Phase.choices, default=Phase.PENDING)
    phase_reason = models.TextField(blank=True, help_text="What it waits for or why it failed.")
    phase_reason_raw = models.TextField(
        blank=True, help_text="The controller's own words behind the reason, if any."
    )
    action = models.CharField(
        max_length=16,
        choices=Action.choices,
        blank=True,
        default=Action.NONE,
        help_text="The day-2 action under way; cleared once Kubernetes reports it done.",
    )
    action_started_at = models.DateTimeField(null=True, blank=True)
    apply_error = models.TextField(
        blank=True, help_text="Why Kubernetes refused the cluster's objects (phase Failed)."
    )
    endpoint = models.CharField(max_length=255, blank=True, help_text='API server "host:port".')
    control_plane_version = models.CharField(
        max_length=32, blank=True, help_text="The version the control plane actually runs."
    )
    control_plane_ready = models.BooleanField(default=False)
    control_plane_initialized = models.BooleanField(default=False)
    ready_workers = models.PositiveSmallIntegerField(default=0)
    applied_at = models.DateTimeField(
        null=True, blank=True, help_text="When its objects were last applied to Kubernetes."
    )
    deletion_requested_at = models.DateTimeField(null=True, blank=True)
    ready_at = models.DateTimeField(null=True, blank=True, help_text="When it first became Ready.")

    created_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TenantOwnedQuerySet["Cluster"].as_manager()

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "name"], name="one_cluster_name_per_tenant"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def quota_subject(self) -> str:
        return f"cluster:{self.pk}"

    @property
    def server_url(self) -> str:
        return f"https://{self.endpoint}" if self.endpoint else ""

    @property
    def is_upgrading(self) -> bool:
        return self.worker_version_id != self.version_id or (
            bool(self.control_plane_version) and self.control_plane_version != self.version.version
        )


class ClusterStep(models.Model):
    """One step of a cluster's timeline: provisioning (control plane, endpoint, each
    worker...) or the day-2 action under way (``clusters.lifecycle.timeline``)."""

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        ACTIVE = "active", "In progress"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    cluster = models.ForeignKey(Cluster, on_delete=models.CASCADE, related_name="steps")
    key = models.CharField(max_length=80)
    label = models.CharField(max_length=120)
    state = models.CharField(max_length=8, choices=State.choices, default=State.PENDING)
    message = models.TextField(blank=True)
    raw = models.TextField(blank=True, help_text="The controller's own words behind the message.")
    position = models.PositiveIntegerField(default=0)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["cluster", "key"], name="one_step_per_key"),
        ]

    def __str__(self) -> str:
        return f"{self.label}: {self.state}"


class ClusterObservation(models.Model):
    """The latest state Kubernetes reported for one object behind a cluster.

    Kept per object (the Cluster, its control plane, each Machine, each add-on release) so
    the cluster's phase can be derived from all of them whenever any one changes.
    """

    cluster = models.ForeignKey(Cluster, on_delete=models.CASCADE, related_name="observations")
    kind = models.CharField(max_length=63)
    name = models.CharField(max_length=253)
    body = models.JSONField(default=dict)
    observed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["cluster", "kind", "name"], name="one_observation_per_object"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.name}"
