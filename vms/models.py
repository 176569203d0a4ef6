"""Virtual machines, the catalog they are built from, and the SSH keys that open them.

Catalog (operators curate it; everyone signed in reads it):
- ``VMImage``: the operating systems a VM may boot, and where CDI imports them from;
- ``StorageClass``: where root disks live (LINSTOR in production), with one default.
Instance types (vCPU, memory) are shared with cluster workers: ``clusters.InstanceType``.

``SSHKey`` rows belong to a person, not a tenant: a key is chosen when a VM is created and
copied into its cloud-init then.

A ``VirtualMachine`` row holds what the tenant asked for (desired state) and the facts
Kubernetes last reported about the objects behind it (the VM, its running instance, its
root disk's DataVolume), from which ``vms.lifecycle`` derives the portal state. A
``VMService`` exposes some of its ports through a LoadBalancer Service with an address of
the tenant's MetalLB share.
"""

from __future__ import annotations

import re
from collections.abc import Collection

from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from clusters.models import InstanceType
from tenants.models import Tenant, TenantOwnedQuerySet, User, dns_label_validator

# A VM's name reappears in longer names Kubernetes caps at 63 characters: its root disk
# "<name>-rootdisk" (a DataVolume, whose importer pod carries it in a label) and its
# cloud-init Secret "<name>-cloudinit". 50 leaves room for both.
VM_NAME_MAX_LENGTH = 50
MIN_DISK_GIB, MAX_DISK_GIB = 1, 4096
MAX_EXPOSED_PORTS = 16

catalog_name_validator = RegexValidator(
    r"^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$",
    "Use lowercase letters, digits, dots and hyphens, e.g. ubuntu-24.04.",
)
# A container image reference without a scheme: registry/repository[:tag][@digest].
IMAGE_REFERENCE = re.compile(
    r"^[a-z0-9][a-z0-9._-]*(:[0-9]+)?(/[a-z0-9._-]+)+(:[\w.-]+)?(@sha256:[0-9a-f]{64})?$"
)
HTTP_URL = re.compile(r"^https?://[^\s/$.?#][^\s]*$")
# Kubernetes object names of StorageClasses are DNS subdomains.
dns_subdomain_validator = RegexValidator(
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$",
    "Use the StorageClass's Kubernetes name: lowercase letters, digits, dots and hyphens.",
)


# --- Catalog ------------------------------------------------------------------------------


class VMImage(models.Model):
    """A bootable disk image. CDI imports it into each VM's root disk (STATUS.md §6)."""

    class OS(models.TextChoices):
        UBUNTU = "ubuntu", "Ubuntu"
        DEBIAN = "debian", "Debian"
        FEDORA = "fedora", "Fedora"
        CENTOS = "centos", "CentOS Stream"
        ROCKY = "rocky", "Rocky Linux"
        ALMA = "alma", "AlmaLinux"
        OPENSUSE = "opensuse", "openSUSE"
        OTHER_LINUX = "linux", "Other Linux"

    class SourceKind(models.TextChoices):
        # A KubeVirt container disk: the node's container runtime pulls (and caches) it,
        # CDI copies its disk into the VM's volume (registry source, pullMethod "node").
        CONTAINER_DISK = "container-disk", "Container disk"
        # A qcow2 or raw image downloaded over HTTP(S) (http source).
        HTTP = "http", "HTTP(S) URL"
        # A disk image in an OCI registry that CDI's importer pod pulls itself (registry
        # source, pullMethod "pod"): for registries the nodes' runtime does not reach.
        REGISTRY = "registry", "Registry image (importer pull)"

    name = models.CharField(max_length=63, unique=True, validators=[catalog_name_validator])
    display_name = models.CharField(
        max_length=120, help_text='For people, e.g. "Ubuntu 24.04 LTS".'
    )
    os = models.CharField(max_length=16, choices=OS.choices, default=OS.OTHER_LINUX)
    source_kind = models.CharField(max_length=16, choices=SourceKind.choices)
    source = models.CharField(
        max_length=500,
        help_text="An image reference (quay.io/containerdisks/ubuntu:24.04) for container "
        "disks and registry images, an http(s):// URL for downloads.",
    )
    default_login_user = models.CharField(
        max_length=32,
        blank=True,
        validators=[RegexValidator(r"^[a-z_][a-z0-9_-]*$", "Use a Unix user name, e.g. ubuntu.")],
        help_text="The user cloud-init installs the SSH keys for (ssh <user>@<address>).",
    )
    min_disk_gib = models.PositiveIntegerField(
        default=10, validators=[MinValueValidator(MIN_DISK_GIB), MaxValueValidator(MAX_DISK_GIB)]
    )
    description = models.CharField(max_length=200, blank=True)
    active = models.BooleanField(default=True, help_text="Offered for new VMs.")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["display_name", "name"]
        verbose_name = "VM image"

    def __str__(self) -> str:
        return self.display_name or self.name


class StorageClass(models.Model):
    """Where root disks are provisioned: a Kubernetes StorageClass, under a portal name."""

    name = models.CharField(max_length=63, unique=True, validators=[catalog_name_validator])
    kubernetes_name = models.CharField(
        max_length=253,
        validators=[dns_subdomain_validator],
        help_text="The StorageClass in the management cluster, e.g. linstor-replicated.",
    )
    description = models.CharField(max_length=200, blank=True)
    is_default = models.BooleanField(default=False, help_text="Used when a VM names none.")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-is_default", "name"]
        verbose_name_plural = "storage classes"
        constraints = [
            models.UniqueConstraint(
                fields=["is_default"],
                condition=Q(is_default=True),
                name="one_default_storage_class",
            )
        ]

    def __str__(self) -> str:
        return self.name

    def validate_constraints(self, exclude: Collection[str] | None = None) -> None:
        # Making a storage class the default is allowed: the save service demotes the
        # previous one in the same transaction, so forms must not refuse it up front.
        super().validate_constraints(exclude={*(exclude or ()), "is_default"})


# --- SSH keys -----------------------------------------------------------------------------


class SSHKey(models.Model):
    """A person's OpenSSH public key, validated (see ``vms.sshkeys``) before it is stored."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="ssh_keys")
    name = models.CharField(max_length=80)
    public_key = models.TextField(help_text="One line: type, base64 key data, comment.")
    key_type = models.CharField(max_length=40, editable=False)
    bits = models.PositiveIntegerField(editable=False, default=0)
    fingerprint = models.CharField(
        max_length=60, editable=False, help_text='SHA-256, as ssh-keygen -l shows it: "SHA256:…".'
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name", "id"]
        verbose_name = "SSH key"
        constraints = [
            models.UniqueConstraint(fields=["user", "name"], name="one_ssh_key_name_per_user"),
            models.UniqueConstraint(
                fields=["user", "fingerprint"], name="one_ssh_key_per_fingerprint_per_user"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.fingerprint})"


# --- Virtual machines ---------------------------------------------------------------------


class RunStrategy(models.TextChoices):
    """The two ``spec.runStrategy`` values the portal sets (STATUS.md §3)."""

    ALWAYS = "Always", "Running"
    HALTED = "Halted", "Stopped"


class VirtualMachine(models.Model):
    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        PROVISIONING = "provisioning", "Provisioning"
        STARTING = "starting", "Starting"
        RUNNING = "running", "Running"
        STOPPING = "stopping", "Stopping"
        STOPPED = "stopped", "Stopped"
        PAUSED = "paused", "Paused"
        ERROR = "error", "Error"
        FAILED = "failed", "Failed"
        DELETING = "deleting", "Deleting"
        UNKNOWN = "unknown", "Unknown"

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="vms")
    name = models.CharField(max_length=VM_NAME_MAX_LENGTH, validators=[dns_label_validator])

    # Desired state: what the tenant asked for.
    image = models.ForeignKey(VMImage, on_delete=models.PROTECT, related_name="vms")
    instance_type = models.ForeignKey(InstanceType, on_delete=models.PROTECT, related_name="vms")
    disk_gib = models.PositiveIntegerField(
        validators=[MinValueValidator(MIN_DISK_GIB), MaxValueValidator(MAX_DISK_GIB)]
    )
    storage_class = models.ForeignKey(StorageClass, on_delete=models.PROTECT, related_name="vms")
    ssh_keys = models.ManyToManyField(SSHKey, blank=True, related_name="vms")
    # The public keys as they were when the VM was created: cloud-init installs them once,
    # and the VM keeps them whatever later happens to the SSHKey rows (renamed, deleted,
    # their owner leaving the tenant), so re-applying its cloud-init Secret never changes it.
    authorized_keys = models.JSONField(default=list, blank=True)
    # Cloud-init user data, encrypted (``vms.crypto``): the database is what tasks apply
    # from, and the data may carry credentials. Never returned by the API.
    user_data_encrypted = models.TextField(blank=True, editable=False)
    run_strategy = models.CharField(
        max_length=8, choices=RunStrategy.choices, default=RunStrategy.ALWAYS
    )
    restart_requested_at = models.DateTimeField(
        null=True, blank=True, help_text="A restart replaces the instance started before this."
    )

    # Where it stands, derived from Kubernetes by the watcher (vms.status).
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    reason = models.TextField(blank=True, help_text="What it waits for or what is wrong.")
    reason_raw = models.TextField(
        blank=True, help_text="What the controllers said behind the reason, in their words."
    )
    apply_error = models.TextField(
        blank=True, help_text="Why Kubernetes refused the VM's objects (state Failed)."
    )
    printable_status = models.CharField(
        max_length=40, blank=True, help_text="KubeVirt's status.printableStatus, as reported."
    )
    status_message = models.TextField(
        blank=True, help_text="KubeVirt's explanation of an error status, as reported."
    )
    ready = models.BooleanField(default=False)
    ip_addresses = models.JSONField(default=list, blank=True)
    node_name = models.CharField(max_length=253, blank=True)
    disk_phase = models.CharField(max_length=40, blank=True, help_text="The DataVolume's phase.")
    disk_progress = models.CharField(max_length=16, blank=True, help_text='e.g. "42.50%".')
    disk_message = models.TextField(blank=True)
    applied_at = models.DateTimeField(null=True, blank=True)
    deletion_requested_at = models.DateTimeField(null=True, blank=True)
    running_since = models.DateTimeField(null=True, blank=True)

    created_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TenantOwnedQuerySet["VirtualMachine"].as_manager()

    class Meta:
        ordering = ["name", "id"]
        verbose_name = "virtual machine"
        constraints = [
            models.UniqueConstraint(fields=["tenant", "name"], name="one_vm_name_per_tenant"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def quota_subject(self) -> str:
        return f"vm:{self.pk}"

    @property
    def ip_address(self) -> str:
        """The primary address (the first interface's), once KubeVirt reports it."""
        return str(self.ip_addresses[0]) if self.ip_addresses else ""

    @property
    def disk_progress_percent(self) -> float | None:
        """The import progress as a number (0–100), for a progress bar; None when unknown."""
        try:
            return float(self.disk_progress.rstrip("%"))
        except ValueError:
            return None

    @property
    def has_user_data(self) -> bool:
        return bool(self.user_data_encrypted)


class VMStep(models.Model):
    """One step of a VM's timeline (disk, node, guest, address), with when it ran.

    ``vms.status`` keeps these rows in step with what ``vms.lifecycle.timeline`` derives, so
    the page can say when each step started and how long it took (as a cluster's does).
    """

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        ACTIVE = "active", "In progress"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    vm = models.ForeignKey(VirtualMachine, on_delete=models.CASCADE, related_name="steps")
    key = models.CharField(max_length=40)
    label = models.CharField(max_length=120)
    state = models.CharField(max_length=8, choices=State.choices, default=State.PENDING)
    message = models.TextField(blank=True)
    raw = models.TextField(blank=True, help_text="What the controllers said, in their words.")
    position = models.PositiveIntegerField(default=0)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["position", "id"]
        verbose_name = "VM step"
        constraints = [
            models.UniqueConstraint(fields=["vm", "key"], name="one_vm_step_per_key"),
        ]

    def __str__(self) -> str:
        return f"{self.label}: {self.state}"


class VMServiceQuerySet(TenantOwnedQuerySet["VMService"]):
    tenant_path = "vm__tenant"


class VMService(models.Model):
    """Ports of one VM reachable from outside, through one LoadBalancer Service.

    It holds one load-balancer IP of the tenant's quota from the moment it is asked for
    until Kubernetes confirms the Service is gone.
    """

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        WAITING = "waiting", "Waiting for an address"
        READY = "ready", "Ready"
        FAILED = "failed", "Failed"
        DELETING = "deleting", "Deleting"

    vm = models.OneToOneField(VirtualMachine, on_delete=models.CASCADE, related_name="service")
    # [{"port": 22, "target_port": 22, "protocol": "TCP"}, ...], sorted by protocol and port.
    ports = models.JSONField(default=list)
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    message = models.TextField(blank=True)
    public_ip = models.GenericIPAddressField(null=True, blank=True)
    applied_at = models.DateTimeField(null=True, blank=True)
    deletion_requested_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    objects = VMServiceQuerySet.as_manager()

    class Meta:
        verbose_name = "VM service"

    def __str__(self) -> str:
        ports = ", ".join(f"{p['port']}/{p['protocol']}" for p in self.ports)
        return f"{self.vm} ({ports})"

    @property
    def quota_subject(self) -> str:
        return f"vm-service:{self.pk}"
