"""Tenancy, roles, quotas, API tokens and the audit trail.

Every tenant-owned query goes through ``for_user(user, action)`` (see ``tenants.access``):
the UI views, the API viewsets and the websocket consumers all call it, so there is one
place that decides who sees what.
"""

from __future__ import annotations

from ipaddress import IPv4Address
from typing import TYPE_CHECKING, Self, TypeVar

from django.contrib.auth.models import AbstractUser
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from tenants.access import Action, PlatformRole, TenantRole, tenant_filter_for

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser

DNS_LABEL_MESSAGE = (
    "Use 1–63 lowercase letters, digits or hyphens, starting with a letter and not ending "
    "with a hyphen."
)
dns_label_validator = RegexValidator(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$", DNS_LABEL_MESSAGE)


class User(AbstractUser):
    """A person or robot account. Platform roles apply across every tenant."""

    platform_role = models.CharField(
        max_length=16, choices=PlatformRole.choices, blank=True, default=PlatformRole.NONE
    )

    @property
    def is_operator(self) -> bool:
        return self.is_active and (self.platform_role == PlatformRole.OPERATOR or self.is_superuser)

    @property
    def is_auditor(self) -> bool:
        return self.is_active and self.platform_role == PlatformRole.AUDITOR

    @property
    def sees_every_tenant(self) -> bool:
        return self.is_operator or self.is_auditor


class TenantQuerySet(models.QuerySet["Tenant"]):
    def for_user(self, user: User | AnonymousUser, action: Action = Action.VIEW) -> TenantQuerySet:
        return self.filter(tenant_filter_for(user, action, tenant_path=""))


class Tenant(models.Model):
    class State(models.TextChoices):
        ACTIVE = "active", "Active"
        SUSPENDED = "suspended", "Suspended"
        DELETING = "deleting", "Deleting"

    slug = models.SlugField(
        max_length=40,
        unique=True,
        validators=[dns_label_validator],
        help_text="Short DNS-safe name; also names the tenant's Kubernetes namespace.",
    )
    name = models.CharField(max_length=120)
    state = models.CharField(max_length=16, choices=State.choices, default=State.ACTIVE)
    created_at = models.DateTimeField(default=timezone.now)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def is_active(self) -> bool:
        return self.state == self.State.ACTIVE


_Owned = TypeVar("_Owned", bound=models.Model)


class TenantOwnedQuerySet(models.QuerySet[_Owned]):
    """Base queryset for everything that belongs to a tenant.

    ``tenant_path`` names the lookup from the model to its ``Tenant`` ("tenant" by default).
    """

    tenant_path = "tenant"

    def for_user(self, user: User | AnonymousUser, action: Action = Action.VIEW) -> Self:
        return self.filter(tenant_filter_for(user, action, tenant_path=self.tenant_path + "__"))


class Membership(models.Model):
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=TenantRole.choices, default=TenantRole.MEMBER)
    created_at = models.DateTimeField(default=timezone.now)

    objects = TenantOwnedQuerySet["Membership"].as_manager()

    class Meta:
        ordering = ["tenant__name", "user__username"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "user"], name="one_membership_per_user"),
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.tenant} as {self.role}"


class Invitation(models.Model):
    """A link that makes whoever opens it (and signs in) a member of the tenant.

    Only a SHA-256 digest of the link's secret is stored, like API tokens.
    """

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField(blank=True)
    role = models.CharField(max_length=16, choices=TenantRole.choices, default=TenantRole.MEMBER)
    token_digest = models.CharField(max_length=64, unique=True, editable=False)
    created_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    accepted_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    accepted_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = TenantOwnedQuerySet["Invitation"].as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Invitation to {self.tenant} as {self.role}"

    @property
    def status(self) -> str:
        if self.accepted_at:
            return "accepted"
        if self.revoked_at:
            return "revoked"
        if self.expires_at <= timezone.now():
            return "expired"
        return "pending"

    @property
    def is_usable(self) -> bool:
        return self.status == "pending"


class QuotaResource(models.TextChoices):
    """Everything a tenant's quota limits. Values double as field names on Quota/QuotaClaim."""

    CLUSTERS = "clusters", "Clusters"
    WORKER_NODES = "worker_nodes", "Worker nodes"
    VMS = "vms", "Virtual machines"
    VCPU = "vcpu", "vCPU"
    MEMORY_MIB = "memory_mib", "Memory"
    STORAGE_GIB = "storage_gib", "Storage"
    LOAD_BALANCER_IPS = "load_balancer_ips", "Load-balancer IPs"


QUOTA_UNITS: dict[str, str] = {
    QuotaResource.MEMORY_MIB: "MiB",
    QuotaResource.STORAGE_GIB: "GiB",
}


def _amount_field(help_text: str) -> models.PositiveIntegerField[int, int]:
    return models.PositiveIntegerField(default=0, help_text=help_text)


class Quota(models.Model):
    """The limits of one tenant. Usage is the sum of the tenant's QuotaClaims."""

    tenant = models.OneToOneField(Tenant, on_delete=models.CASCADE, related_name="quota")
    clusters = _amount_field("Kubernetes clusters")
    worker_nodes = _amount_field("Worker nodes across all clusters")
    vms = _amount_field("Virtual machines")
    vcpu = _amount_field("vCPUs across workers and VMs")
    memory_mib = _amount_field("Memory in MiB across workers and VMs")
    storage_gib = _amount_field("Disk in GiB across workers and VMs")
    load_balancer_ips = _amount_field("Load-balancer IP addresses")
    updated_at = models.DateTimeField(auto_now=True)

    objects = TenantOwnedQuerySet["Quota"].as_manager()

    def __str__(self) -> str:
        return f"Quota of {self.tenant}"

    def limits(self) -> dict[str, int]:
        return {resource: getattr(self, resource) for resource in QuotaResource.values}


class QuotaClaim(models.Model):
    """What one tenant-owned object (a cluster, a VM, a service) holds of the quota.

    Claims are written only by ``tenants.services.quota_reserve`` / ``quota_release`` while
    the tenant row is locked, which makes reservations race-free.
    """

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="quota_claims")
    subject = models.CharField(
        max_length=120, help_text='What holds the claim, e.g. "cluster:42" or "vm:7".'
    )
    clusters = models.PositiveIntegerField(default=0)
    worker_nodes = models.PositiveIntegerField(default=0)
    vms = models.PositiveIntegerField(default=0)
    vcpu = models.PositiveIntegerField(default=0)
    memory_mib = models.PositiveIntegerField(default=0)
    storage_gib = models.PositiveIntegerField(default=0)
    load_balancer_ips = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TenantOwnedQuerySet["QuotaClaim"].as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "subject"], name="one_claim_per_subject"),
        ]

    def __str__(self) -> str:
        return f"{self.subject} in {self.tenant}"

    def amounts(self) -> dict[str, int]:
        return {resource: getattr(self, resource) for resource in QuotaResource.values}


class ApiTokenQuerySet(models.QuerySet["ApiToken"]):
    def usable(self) -> ApiTokenQuerySet:
        now = timezone.now()
        return self.filter(revoked_at__isnull=True, user__is_active=True).filter(
            Q(expires_at__isnull=True) | Q(expires_at__gt=now)
        )


class ApiToken(models.Model):
    """A per-user API credential. The secret is shown once; only its SHA-256 is kept.

    SHA-256 (not a slow password hash) is right here: the secret is 256 random bits, so
    there is nothing to brute-force, and every API request must verify it quickly.
    """

    class Scope(models.TextChoices):
        READ = "read", "Read only"
        WRITE = "write", "Read and write"

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=80)
    prefix = models.CharField(max_length=12, unique=True, editable=False)
    digest = models.CharField(max_length=64, editable=False)
    scope = models.CharField(max_length=8, choices=Scope.choices, default=Scope.READ)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def status(self) -> str:
        if self.revoked_at:
            return "revoked"
        if self.expires_at and self.expires_at <= timezone.now():
            return "expired"
        return "active"

    @property
    def allows_writes(self) -> bool:
        return self.scope == self.Scope.WRITE


class AuditEventQuerySet(models.QuerySet["AuditEvent"]):
    def for_user(self, user: User | AnonymousUser) -> AuditEventQuerySet:
        """Operators and auditors read everything; tenant admins read their tenants' events."""
        if not user.is_authenticated or not user.is_active:
            return self.none()
        if user.sees_every_tenant:
            return self.all()
        return self.filter(tenant_filter_for(user, Action.ADMIN, tenant_path="tenant__"))


class AuditEvent(models.Model):
    """One mutation: who did what to which object, when and from where.

    Tenant slug and object repr are copied so the trail survives deletions.
    """

    occurred_at = models.DateTimeField(default=timezone.now, db_index=True)
    actor = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_username = models.CharField(max_length=150, blank=True)
    token = models.ForeignKey(
        ApiToken, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    tenant = models.ForeignKey(
        Tenant, null=True, blank=True, on_delete=models.SET_NULL, related_name="audit_events"
    )
    tenant_slug = models.CharField(max_length=40, blank=True, db_index=True)
    object_type = models.CharField(max_length=40, db_index=True)
    object_id = models.CharField(max_length=64, blank=True)
    object_repr = models.CharField(max_length=200, blank=True)
    action = models.CharField(max_length=40, db_index=True)
    changes = models.JSONField(default=dict, blank=True)
    source_ip = models.GenericIPAddressField(null=True, blank=True)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["-occurred_at", "-id"]

    def __str__(self) -> str:
        return (
            f"{self.actor_username or 'system'} {self.action} {self.object_type} {self.object_repr}"
        )


__all__ = [
    "ApiToken",
    "AuditEvent",
    "Invitation",
    "Membership",
    "Quota",
    "QuotaClaim",
    "QuotaResource",
    "Tenant",
    "TenantOwnedQuerySet",
    "User",
]


# --- Tenant networks ----------------------------------------------------------------------


class SubnetPool(models.Model):
    """An operator-set supernet from which every tenant gets its own subnet, without overlap."""

    name = models.CharField(max_length=63, unique=True)
    cidr = models.CharField(
        max_length=43, unique=True, help_text="IPv4 supernet, e.g. 10.200.0.0/16"
    )
    subnet_prefix_length = models.PositiveSmallIntegerField(
        default=24, help_text="Size of each tenant's subnet (24 gives 254 addresses)."
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.cidr})"


class LoadBalancerRange(models.Model):
    """An operator-set range of public addresses, carved into per-tenant MetalLB shares."""

    name = models.CharField(max_length=63, unique=True)
    first_address = models.GenericIPAddressField(protocol="IPv4")
    last_address = models.GenericIPAddressField(protocol="IPv4")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.first_address}-{self.last_address})"


class TenantNetwork(models.Model):
    """A tenant's network in Kubernetes: namespace, Kube-OVN Vpc + Subnet, MetalLB share.

    The portal decides the addresses; the watcher fills in what the controllers report.
    """

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        PROVISIONING = "provisioning", "Provisioning"
        READY = "ready", "Ready"
        FAILED = "failed", "Failed"
        DELETING = "deleting", "Deleting"

    tenant = models.OneToOneField(Tenant, on_delete=models.CASCADE, related_name="network")
    namespace = models.CharField(max_length=63, unique=True)
    subnet_pool = models.ForeignKey(
        SubnetPool, null=True, on_delete=models.PROTECT, related_name="+"
    )
    subnet_cidr = models.CharField(max_length=43, unique=True, null=True, blank=True)
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    message = models.TextField(blank=True, help_text="Why it is not ready, in plain words.")
    vpc_ready = models.BooleanField(default=False)
    subnet_ready = models.BooleanField(default=False)
    address_pool_ready = models.BooleanField(default=False)
    subnet_available_ips = models.PositiveIntegerField(null=True, blank=True)
    subnet_used_ips = models.PositiveIntegerField(null=True, blank=True)
    lb_assigned_ips = models.PositiveIntegerField(null=True, blank=True)
    lb_available_ips = models.PositiveIntegerField(null=True, blank=True)
    applied_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TenantOwnedQuerySet["TenantNetwork"].as_manager()

    def __str__(self) -> str:
        return f"Network of {self.tenant}"


class LoadBalancerBlock(models.Model):
    """A contiguous run of addresses from a range, part of one tenant's MetalLB share.

    Addresses are also kept as integers so overlap checks are plain comparisons.
    """

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="lb_blocks")
    address_range = models.ForeignKey(
        LoadBalancerRange, on_delete=models.PROTECT, related_name="blocks"
    )
    first = models.BigIntegerField()
    last = models.BigIntegerField()

    objects = TenantOwnedQuerySet["LoadBalancerBlock"].as_manager()

    class Meta:
        ordering = ["first"]

    def __str__(self) -> str:
        return self.as_range()

    @property
    def size(self) -> int:
        return self.last - self.first + 1

    def as_range(self) -> str:
        return f"{IPv4Address(self.first)}-{IPv4Address(self.last)}"
