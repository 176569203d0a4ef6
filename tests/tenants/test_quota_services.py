"""Quota reservations: limits, resizing, release, and no over-commit under concurrency."""

from __future__ import annotations

import threading

import pytest
from django.core.exceptions import ValidationError
from django.db import connection, connections, transaction

from tenants.audit import Actor
from tenants.models import AuditEvent, QuotaClaim, Tenant, User
from tenants.selectors import quota_usage
from tenants.services import quota_release, quota_reserve, quota_update
from tests.conftest import make_tenant


def reserve(tenant: Tenant, subject: str, **amounts: int) -> QuotaClaim:
    with transaction.atomic():
        return quota_reserve(tenant=tenant, subject=subject, amounts=amounts)


def usage_of(tenant: Tenant) -> dict[str, tuple[int, int]]:
    return {u.resource: (u.used, u.limit) for u in quota_usage(tenant)}


def test_reservations_add_up_and_release(acme: Tenant) -> None:
    reserve(acme, "cluster:1", clusters=1, worker_nodes=3, vcpu=6, memory_mib=12288)
    reserve(acme, "vm:1", vms=1, vcpu=2, memory_mib=4096, storage_gib=20)

    usage = usage_of(acme)
    assert usage["clusters"] == (1, 3)
    assert usage["vcpu"] == (8, 48)
    assert usage["memory_mib"] == (16384, 98304)

    quota_release(tenant=acme, subject="cluster:1")
    assert usage_of(acme)["vcpu"] == (2, 48)
    quota_release(tenant=acme, subject="cluster:1")  # idempotent
    assert QuotaClaim.objects.filter(tenant=acme).count() == 1


def test_exceeding_names_the_resource_and_keeps_nothing(acme: Tenant) -> None:
    reserve(acme, "cluster:1", clusters=3)
    with pytest.raises(ValidationError) as raised:
        reserve(acme, "cluster:2", clusters=1, vcpu=4)
    assert set(raised.value.message_dict) == {"clusters"}
    assert "only 0 of 3" in raised.value.message_dict["clusters"][0]
    assert not QuotaClaim.objects.filter(subject="cluster:2").exists()


def test_resizing_a_claim_checks_only_the_increase(acme: Tenant) -> None:
    reserve(acme, "cluster:1", worker_nodes=8)
    reserve(acme, "cluster:1", worker_nodes=10)  # +2 fits exactly
    with pytest.raises(ValidationError) as raised:
        reserve(acme, "cluster:1", worker_nodes=11)
    assert "worker_nodes" in raised.value.message_dict
    reserve(acme, "cluster:1", worker_nodes=2)  # scaling down always works
    assert usage_of(acme)["worker_nodes"] == (2, 10)


@pytest.mark.django_db(transaction=True)
def test_reserve_outside_a_transaction_is_a_programming_error() -> None:
    acme = make_tenant("acme", "Acme Corp")
    with pytest.raises(RuntimeError):
        quota_reserve(tenant=acme, subject="x", amounts={"vms": 1})


def test_quota_cannot_drop_below_usage_without_force(acme: Tenant, oscar: User) -> None:
    reserve(acme, "vm:1", vms=4)
    with pytest.raises(ValidationError) as raised:
        quota_update(actor=Actor(oscar), tenant=acme, limits={"vms": 2})
    assert "vms" in raised.value.message_dict
    assert usage_of(acme)["vms"] == (4, 10)

    quota_update(actor=Actor(oscar), tenant=acme, limits={"vms": 2}, force=True)
    assert usage_of(acme)["vms"] == (4, 2)
    event = AuditEvent.objects.get(action="update", object_type="quota")
    assert event.changes == {"vms": [10, 2], "forced": True}
    assert event.actor == oscar


def test_unknown_or_negative_amounts_are_refused(acme: Tenant) -> None:
    with pytest.raises(ValidationError) as raised:
        reserve(acme, "x", gpus=1)
    assert "gpus" in raised.value.message_dict
    with pytest.raises(ValidationError):
        reserve(acme, "x", vms=-1)


@pytest.mark.django_db(transaction=True)
def test_concurrent_reservations_never_exceed_the_limit() -> None:
    """50 threads, each on its own database connection, race for a limit of 10."""
    if connection.vendor != "postgresql":
        pytest.fail("The concurrency guarantee is tested on Postgres; set DATABASE_URL.")
    tenant = make_tenant("race", "Race Ltd", clusters=10)
    start = threading.Barrier(50)
    granted: list[str] = []
    refused: list[str] = []
    lock = threading.Lock()

    def attempt(n: int) -> None:
        try:
            start.wait()
            try:
                reserve(tenant, f"cluster:{n}", clusters=1)
                outcome = granted
            except ValidationError:
                outcome = refused
            with lock:
                outcome.append(str(n))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=attempt, args=(n,)) for n in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(granted) == 10
    assert len(refused) == 40
    assert QuotaClaim.objects.filter(tenant=tenant).count() == 10


@pytest.mark.django_db(transaction=True)
async def test_reserving_and_releasing_tell_open_dashboards() -> None:
    """Each quota change publishes one "quota" event to the tenant's group, after commit."""
    from asgiref.sync import sync_to_async
    from channels.layers import get_channel_layer

    from butler_portal.realtime import tenant_group

    tenant = await sync_to_async(make_tenant)("live", "Live Ltd")
    layer = get_channel_layer()
    assert layer is not None
    channel = await layer.new_channel()
    await layer.group_add(tenant_group(tenant.pk), channel)

    await sync_to_async(reserve)(tenant, "vm:1", vms=1)
    await sync_to_async(quota_release)(tenant=tenant, subject="vm:1")

    kinds = [(await layer.receive(channel))["event"]["kind"] for _ in range(2)]
    assert kinds == ["quota", "quota"]
