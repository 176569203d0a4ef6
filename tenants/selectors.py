"""Reads that more than one view needs: quota usage, a user's tenants."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.db.models import Sum

from tenants.models import QUOTA_UNITS, Quota, QuotaClaim, QuotaResource, Tenant

if TYPE_CHECKING:
    from collections.abc import Iterable


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
        if self.used > self.limit or self.percent >= 90:
            return "critical"
        if self.percent >= 70:
            return "warning"
        return "ok"

    @property
    def over_limit(self) -> bool:
        return self.used > self.limit

    def display(self, amount: int) -> str:
        return format_amount(self.resource, amount)

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
