"""Quantities beside their limit read in the limit's unit, and nothing used reads as a plain 0:
"0 of 128 GiB", "0.5 GiB of 128 GiB", never "0 MiB of 128 GiB" or "512 MiB of 128 GiB"."""

from __future__ import annotations

import re

import pytest
from django.db import transaction
from django.urls import reverse

from tenants import services
from tenants.models import QuotaResource, Tenant, User
from tenants.selectors import format_against
from tests.ui.conftest import page_text

MEMORY = QuotaResource.MEMORY_MIB
STORAGE = QuotaResource.STORAGE_GIB
VMS = QuotaResource.VMS
GIB = 1024


@pytest.mark.parametrize(
    ("resource", "amount", "limit", "shown"),
    [
        (MEMORY, 0, 128 * GIB, "0"),
        (MEMORY, 512, 128 * GIB, "0.5 GiB"),
        (MEMORY, 1536, 128 * GIB, "1.5 GiB"),
        (MEMORY, 24 * GIB, 96 * GIB, "24 GiB"),
        (MEMORY, 128 * GIB, 128 * GIB, "128 GiB"),
        (MEMORY, 10, 128 * GIB, "10 MiB"),  # too small for a tenth of a GiB: MiB says it
        (MEMORY, 256, 768, "256 MiB"),  # a limit in MiB keeps the amount in MiB
        (MEMORY, 2 * GIB, 768, "2048 MiB"),
        (MEMORY, 4 * GIB, 0, "4 GiB"),  # no limit: the amount's own unit
        (STORAGE, 0, 500, "0"),
        (STORAGE, 30, 500, "30 GiB"),
        (VMS, 0, 10, "0"),
        (VMS, 3, 10, "3"),
    ],
)
def test_an_amount_reads_in_its_limits_unit(
    resource: str, amount: int, limit: int, shown: str
) -> None:
    assert format_against(resource, amount, limit) == shown


def reserve(tenant: Tenant, subject: str, **amounts: int) -> None:
    with transaction.atomic():
        services.quota_reserve(tenant=tenant, subject=subject, amounts=amounts)


def gauges(page: str) -> dict[str, str]:
    """Each gauge's label and numbers, as a person reads them."""
    found = re.findall(
        r'<h3 class="gauge-label">([^<]+)</h3>\s*<p class="gauge-numbers"><strong>([^<]+)</strong>'
        r' <span class="muted nowrap">([^<]+)</span>',
        page,
    )
    return {label: f"{used} {limit}" for label, used, limit in found}


def test_an_unused_quota_reads_0_of_its_limit_on_the_dashboard(alice: User, acme: Tenant) -> None:
    page = page_text(alice, reverse("tenant-dashboard", args=["acme"]))

    assert gauges(page)["Memory"] == "0 of 96 GiB"
    assert gauges(page)["Storage"] == "0 of 1000 GiB"
    assert 'aria-label="Memory: 0 of 96 GiB used (0%)"' in page
    assert "0 MiB" not in page


def test_half_a_gib_reads_in_gib_beside_a_limit_in_gib(alice: User, acme: Tenant) -> None:
    reserve(acme, "vm:1", vms=1, vcpu=1, memory_mib=512)

    page = page_text(alice, reverse("tenant-dashboard", args=["acme"]))

    assert gauges(page)["Memory"] == "0.5 GiB of 96 GiB"
    assert "95.5 GiB available" in page


def test_the_operators_meters_read_0_of_the_limit(oscar: User, acme: Tenant) -> None:
    page = page_text(oscar, reverse("operator-tenants"))

    meters = re.findall(
        r'<span class="meter-text">([^<]*)<span class="muted"> / ([^<]+)</span>', page
    )
    assert ("0", "96 GiB") in meters
    assert "0 MiB" not in page
