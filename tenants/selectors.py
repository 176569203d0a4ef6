"""Reads that more than one view needs: quota usage, a user's tenants, network usage, and
the action log of a tenant-owned object (a cluster's, a VM's)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from ipaddress import IPv4Network
from typing import TYPE_CHECKING, Any

from django.core.exceptions import NON_FIELD_ERRORS
from django.db.models import Sum

from tenants.addressing import Span, gateway_of
from tenants.models import (
    QUOTA_UNITS,
    AuditEvent,
    LoadBalancerBlock,
    LoadBalancerRange,
    Quota,
    QuotaClaim,
    QuotaResource,
    SubnetPool,
    Tenant,
    TenantNetwork,
)

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from django.db.models import QuerySet

    from butler_portal.kube.adapter import KubeClient
    from butler_portal.watcher.drift import DriftReport
    from tenants.owned import TenantOwnedRow


def format_amount(resource: str, amount: int) -> str:
    """Human units: memory in GiB past 1 GiB, storage in GiB, counts as plain numbers."""
    if resource == QuotaResource.MEMORY_MIB:
        if amount >= 1024 and amount % 1024 == 0:
            return f"{amount // 1024} GiB"
        if amount >= 1024:
            return f"{amount / 1024:.1f} GiB"
        return f"{amount} MiB"
    unit = QUOTA_UNITS.get(resource)
    return f"{amount} {unit}" if unit else str(amount)


def format_against(resource: str, amount: int, limit: int) -> str:
    """``amount`` as it reads beside its limit: in the limit's unit ("0.5 GiB of 128 GiB",
    never "512 MiB of 128 GiB"), and nothing as a plain 0 ("0 of 128 GiB", not "0 MiB")."""
    if amount == 0:
        return "0"
    if resource != QuotaResource.MEMORY_MIB or limit <= 0:
        return format_amount(resource, amount)
    if limit < 1024:  # the limit reads in MiB
        return f"{amount} MiB"
    if amount % 1024 == 0:
        return f"{amount // 1024} GiB"
    tenths = f"{amount / 1024:.1f}"
    # Below a tenth of a GiB the MiB say it better than "0.0 GiB".
    return f"{tenths} GiB" if tenths != "0.0" else f"{amount} MiB"


def usage_level(percent: int) -> str:
    """A word for a gauge's or bar's colour: the same thresholds everywhere."""
    if percent >= 90:
        return "critical"
    if percent >= 70:
        return "warning"
    return "ok"


@dataclass(frozen=True)
class QuotaUsage:
    resource: str
    label: str
    limit: int
    used: int

    @property
    def available(self) -> int:
        return max(self.limit - self.used, 0)

    @property
    def percent(self) -> int:
        """Share of the limit in use, 0–100 (over-limit after a forced decrease shows 100)."""
        if self.limit == 0:
            return 100 if self.used else 0
        return min(round(100 * self.used / self.limit), 100)

    @property
    def level(self) -> str:
        """A word for the gauge's colour."""
        if self.used > self.limit:
            return "critical"
        return usage_level(self.percent)

    @property
    def over_limit(self) -> bool:
        return self.used > self.limit

    def display(self, amount: int) -> str:
        """``amount`` beside this limit (``format_against``)."""
        return format_against(self.resource, amount, self.limit)

    @property
    def used_display(self) -> str:
        return self.display(self.used)

    @property
    def limit_display(self) -> str:
        return self.display(self.limit)

    @property
    def available_display(self) -> str:
        return self.display(self.available)


def quota_used(tenant: Tenant) -> dict[str, int]:
    """What the tenant's claims add up to, per resource (one query)."""
    totals = QuotaClaim.objects.filter(tenant=tenant).aggregate(
        **{resource: Sum(resource) for resource in QuotaResource.values}
    )
    return {resource: totals[resource] or 0 for resource in QuotaResource.values}


def quota_usage(tenant: Tenant) -> list[QuotaUsage]:
    """Limit, used and available for every resource of the tenant (two queries)."""
    limits = Quota.objects.get(tenant=tenant).limits()
    used = quota_used(tenant)
    return [
        QuotaUsage(resource=resource, label=label, limit=limits[resource], used=used[resource])
        for resource, label in QuotaResource.choices
    ]


def quota_usage_for_tenants(tenants: Iterable[Tenant]) -> dict[int, list[QuotaUsage]]:
    """Usage for many tenants at once (the operator's list), in two queries whatever the count."""
    tenant_ids = [tenant.pk for tenant in tenants]
    limits = {
        quota.tenant_id: quota.limits() for quota in Quota.objects.filter(tenant_id__in=tenant_ids)
    }
    sums = {f"sum_{resource}": Sum(resource) for resource in QuotaResource.values}
    # Plain dicts: the annotation names are computed, which typed rows cannot express.
    used_rows: list[dict[str, Any]] = [
        dict(row)
        for row in QuotaClaim.objects.filter(tenant_id__in=tenant_ids)
        .values("tenant_id")
        .annotate(**sums)
    ]
    used = {
        row["tenant_id"]: {
            resource: row[f"sum_{resource}"] or 0 for resource in QuotaResource.values
        }
        for row in used_rows
    }
    empty = dict.fromkeys(QuotaResource.values, 0)
    return {
        tenant_id: [
            QuotaUsage(
                resource=resource,
                label=label,
                limit=limits.get(tenant_id, empty)[resource],
                used=used.get(tenant_id, empty)[resource],
            )
            for resource, label in QuotaResource.choices
        ]
        for tenant_id in tenant_ids
    }


# --- Networks -----------------------------------------------------------------------------


@dataclass(frozen=True)
class AddressUsage:
    """Used out of total (addresses, subnets), with what ``components/meter.html`` shows."""

    label: str
    used: int
    total: int

    @property
    def free(self) -> int:
        return max(self.total - self.used, 0)

    @property
    def percent(self) -> int:
        if self.total == 0:
            return 100 if self.used else 0
        return min(round(100 * self.used / self.total), 100)

    @property
    def level(self) -> str:
        return usage_level(self.percent)

    @property
    def used_display(self) -> str:
        return f"{self.used:,}"

    @property
    def limit_display(self) -> str:
        return f"{self.total:,}"


@dataclass(frozen=True)
class NetworkCheck:
    """One part of a tenant network that a controller must report ready."""

    label: str
    #: The part in a sentence ("waiting for the VPC").
    noun: str
    #: None when the part is not needed (no load-balancer addresses: no address pool).
    ready: bool | None


# What a network in each state is waiting for, when the controllers gave no reason.
NETWORK_STATE_EXPLANATIONS: dict[str, str] = {
    TenantNetwork.State.PENDING: "Waiting to be set up in Kubernetes.",
    TenantNetwork.State.PROVISIONING: "Kube-OVN and MetalLB are setting up the network.",
    TenantNetwork.State.FAILED: "The network could not be set up.",
    TenantNetwork.State.DELETING: "The namespace and network are being removed.",
}


@dataclass(frozen=True)
class TenantNetworkSummary:
    """A tenant's network as its members see it: addresses, readiness, load-balancer share."""

    network: TenantNetwork
    lb_blocks: list[LoadBalancerBlock]
    lb_quota: int

    @property
    def state(self) -> str:
        return self.network.state

    @property
    def is_ready(self) -> bool:
        return self.network.state == TenantNetwork.State.READY

    @property
    def in_progress(self) -> bool:
        """Whether something is still happening (the panel shows a spinner)."""
        return self.network.state in {
            TenantNetwork.State.PENDING,
            TenantNetwork.State.PROVISIONING,
            TenantNetwork.State.DELETING,
        }

    @property
    def explanation(self) -> str:
        """Why it is not ready, in plain words ("" once ready)."""
        if self.is_ready:
            return ""
        if self.network.message:
            return self.network.message
        waiting = [check.noun for check in self.checks if check.ready is False]
        if self.network.state == TenantNetwork.State.PROVISIONING and waiting:
            return f"Waiting for {_joined(waiting)} to be ready."
        return NETWORK_STATE_EXPLANATIONS.get(self.network.state, "")

    @property
    def gateway(self) -> str | None:
        return gateway_of(self.network.subnet_cidr) if self.network.subnet_cidr else None

    @property
    def checks(self) -> list[NetworkCheck]:
        return [
            NetworkCheck("VPC", "the VPC", self.network.vpc_ready),
            NetworkCheck("Subnet", "the subnet", self.network.subnet_ready),
            NetworkCheck("Address pool", "the load-balancer address pool", self.address_pool_ready),
        ]

    @property
    def address_pool_ready(self) -> bool | None:
        """MetalLB's pool of the tenant's addresses; None when the tenant holds none."""
        return self.network.address_pool_ready if self.lb_blocks else None

    @property
    def subnet_usage(self) -> AddressUsage | None:
        """Addresses in use in the subnet, once Kube-OVN has reported them."""
        used, available = self.network.subnet_used_ips, self.network.subnet_available_ips
        if used is None or available is None:
            return None
        return AddressUsage("Subnet addresses", used, used + available)

    @property
    def lb_ranges(self) -> list[str]:
        return [block.as_range() for block in self.lb_blocks]

    @property
    def lb_share_size(self) -> int:
        return sum(block.size for block in self.lb_blocks)

    @property
    def lb_usage(self) -> AddressUsage | None:
        """Load-balancer addresses assigned to services, once MetalLB has reported them."""
        assigned, available = self.network.lb_assigned_ips, self.network.lb_available_ips
        if assigned is None or available is None:
            return None
        return AddressUsage("Load-balancer addresses", assigned, assigned + available)


def _joined(parts: list[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    return parts[0] if len(parts) == 1 else f"{', '.join(parts[:-1])} and {parts[-1]}"


def tenant_network_summary(tenant: Tenant) -> TenantNetworkSummary | None:
    """The tenant's network, or None before one was allocated (two queries)."""
    network = TenantNetwork.objects.select_related("tenant__quota").filter(tenant=tenant).first()
    if network is None:
        return None
    return TenantNetworkSummary(
        network=network,
        lb_blocks=list(LoadBalancerBlock.objects.filter(tenant=tenant).order_by("first")),
        lb_quota=network.tenant.quota.load_balancer_ips,
    )


@dataclass(frozen=True)
class SubnetPoolUsage:
    """How much of a subnet pool the tenants' subnets take."""

    pool: SubnetPool
    tenant_count: int
    allocated_addresses: int
    #: Addresses Kube-OVN reports in use, summed over the pool's tenant subnets.
    addresses_in_use: int

    @property
    def total_addresses(self) -> int:
        return IPv4Network(self.pool.cidr).num_addresses

    @property
    def free_addresses(self) -> int:
        return max(self.total_addresses - self.allocated_addresses, 0)

    @property
    def capacity(self) -> int:
        """Tenants the pool holds at its current subnet size (what is allocated plus what fits)."""
        subnet_size: int = 2 ** (32 - self.pool.subnet_prefix_length)
        return self.tenant_count + self.free_addresses // subnet_size

    @property
    def subnets(self) -> AddressUsage:
        return AddressUsage("Tenant subnets", self.tenant_count, self.capacity)


def subnet_pool_usages(pools: Iterable[SubnetPool]) -> list[SubnetPoolUsage]:
    """Usage of each pool, in one query whatever the number of pools and tenants."""
    pools = list(pools)
    tenants: dict[int, int] = dict.fromkeys((pool.pk for pool in pools), 0)
    allocated = dict(tenants)
    in_use = dict(tenants)
    subnets = TenantNetwork.objects.filter(
        subnet_pool__in=pools, subnet_cidr__isnull=False
    ).values_list("subnet_pool_id", "subnet_cidr", "subnet_used_ips")
    for pool_id, cidr, used_ips in subnets:
        if pool_id is None or cidr is None:  # excluded by the filter; narrows the types
            continue
        tenants[pool_id] += 1
        allocated[pool_id] += IPv4Network(cidr).num_addresses
        in_use[pool_id] += used_ips or 0
    return [
        SubnetPoolUsage(
            pool=pool,
            tenant_count=tenants[pool.pk],
            allocated_addresses=allocated[pool.pk],
            addresses_in_use=in_use[pool.pk],
        )
        for pool in pools
    ]


@dataclass(frozen=True)
class RangeHolding:
    """The blocks of one range that make up (part of) one tenant's MetalLB share."""

    tenant: Tenant
    blocks: list[str]
    size: int


@dataclass(frozen=True)
class LoadBalancerRangeUsage:
    """Which tenants hold which addresses of a load-balancer range."""

    address_range: LoadBalancerRange
    holdings: list[RangeHolding]

    @property
    def size(self) -> int:
        return Span.between(self.address_range.first_address, self.address_range.last_address).size

    @property
    def allocated(self) -> int:
        return sum(holding.size for holding in self.holdings)

    @property
    def free(self) -> int:
        return max(self.size - self.allocated, 0)

    @property
    def addresses(self) -> AddressUsage:
        return AddressUsage("Allocated addresses", self.allocated, self.size)


def lb_range_usages(ranges: Iterable[LoadBalancerRange]) -> list[LoadBalancerRangeUsage]:
    """Usage of each range with its holders, in one query whatever the number of blocks."""
    ranges = list(ranges)
    holdings: dict[int, dict[int, RangeHolding]] = {r.pk: {} for r in ranges}
    blocks = (
        LoadBalancerBlock.objects.filter(address_range__in=ranges)
        .select_related("tenant")
        .order_by("first")
    )
    for block in blocks:
        by_tenant = holdings[block.address_range_id]
        held = by_tenant.get(block.tenant_id)
        by_tenant[block.tenant_id] = RangeHolding(
            tenant=block.tenant,
            blocks=[*(held.blocks if held else []), block.as_range()],
            size=(held.size if held else 0) + block.size,
        )
    return [
        LoadBalancerRangeUsage(address_range=r, holdings=list(holdings[r.pk].values()))
        for r in ranges
    ]


# --- Quota preview (what a request would take, before it is made) -------------------------


@dataclass(frozen=True)
class QuotaLine:
    resource: str
    label: str
    requested: int
    used: int
    limit: int
    field: str = NON_FIELD_ERRORS  # the form field that drives this resource

    @property
    def available(self) -> int:
        return max(self.limit - self.used, 0)

    @property
    def fits(self) -> bool:
        return self.requested <= self.available

    @property
    def used_after(self) -> int:
        return self.used + self.requested

    def display(self, amount: int) -> str:
        """``amount`` beside this limit (``format_against``)."""
        return format_against(self.resource, amount, self.limit)

    @property
    def refusal(self) -> str:
        if self.fits:
            return ""
        return (
            f"Needs {self.display(self.requested)} more {self.label.lower()} but only "
            f"{self.display(self.available)} of {self.display(self.limit)} is left in the quota."
        )


@dataclass(frozen=True)
class QuotaPreview:
    lines: list[QuotaLine]

    @property
    def fits(self) -> bool:
        return all(line.fits for line in self.lines)

    def errors(self) -> dict[str, list[str]]:
        """Refusals keyed by the form field the user would change (as the service raises)."""
        errors: dict[str, list[str]] = {}
        for line in self.lines:
            if not line.fits:
                errors.setdefault(line.field, []).append(line.refusal)
        return errors


def quota_preview(
    tenant: Tenant,
    amounts: Mapping[str, int],
    *,
    held: Mapping[str, int] | None = None,
    fields: Mapping[str, str],
) -> QuotaPreview:
    """What ``amounts`` would take of the tenant's quota, against what is left.

    ``held`` is what the subject already holds (only the difference counts); ``fields`` maps
    each resource to the form field that drives it, so refusals land on the right field.
    """
    limits = Quota.objects.get(tenant=tenant).limits()
    used = quota_used(tenant)
    held = held or {}
    return QuotaPreview(
        lines=[
            QuotaLine(
                resource=resource,
                label=QuotaResource(resource).label,
                requested=max(amount - held.get(resource, 0), 0),
                used=used[resource],
                limit=limits[resource],
                field=fields.get(resource, NON_FIELD_ERRORS),
            )
            for resource, amount in amounts.items()
        ]
    )


def object_activity(obj: TenantOwnedRow) -> QuerySet[AuditEvent]:
    """The object's action log: every audited change to it, newest first."""
    return AuditEvent.objects.filter(
        tenant_id=obj.tenant_id, object_type=obj._meta.model_name, object_id=str(obj.pk)
    ).select_related("token")


# --- Drift ----------------------------------------------------------------------------------

NO_MANAGEMENT_CLUSTER = "The portal runs without a management cluster (KUBE_MODE=off)."


class ManagementClusterUnavailable(Exception):
    """No management cluster is configured, or it did not answer; the message says which."""


@contextmanager
def management_client() -> Iterator[KubeClient]:
    """The management cluster's client, for one piece of work; its failures (and its
    absence) become ``ManagementClusterUnavailable``."""
    from butler_portal.kube import kube_client
    from butler_portal.kube.errors import KubeError

    client = kube_client()
    if client is None:
        raise ManagementClusterUnavailable(NO_MANAGEMENT_CLUSTER)
    try:
        yield client
    except KubeError as error:
        raise ManagementClusterUnavailable(
            f"The management cluster did not answer: {error}"
        ) from error


def drift_now() -> DriftReport:
    """The portal's records against the management cluster, compared now; changes nothing."""
    from butler_portal.watcher.drift import drift_report
    from butler_portal.watcher.registry import collect_drift_checks, handler_modules

    with management_client() as client:
        return drift_report(client, collect_drift_checks(handler_modules()))
