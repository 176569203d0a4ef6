"""/api/v1/tenants/: onboarding, renaming, suspension and quotas."""

from __future__ import annotations

import itertools

from django.db import transaction
from django.urls import reverse

from tenants.models import AuditEvent, Quota, Tenant, User
from tenants.services import quota_reserve
from tests.api_mixin import ACME_TENANT_VIEWERS, APIEndpointTests
from tests.conftest import DEFAULT_LIMITS, api_client_for, make_tenant

extra_tenant_numbers = itertools.count()


def tenant_url(slug: str, action: str = "") -> str:
    if action:
        return reverse(f"api:tenant-{action}", args=[slug])
    return reverse("api:tenant-detail", args=[slug])


def usage_by_resource(payload: list[dict[str, object]]) -> dict[object, dict[str, object]]:
    return {item["resource"]: item for item in payload}


class TestTenantEndpoint(APIEndpointTests):
    basename = "tenant"
    lookup_field = "slug"
    viewers = ACME_TENANT_VIEWERS
    creators = updaters = deleters = frozenset({"oscar"})
    list_as = "oscar"

    def make_object(self, tenant: Tenant) -> Tenant:
        return tenant

    def make_rows(self, count: int) -> None:
        for _ in range(count):
            number = next(extra_tenant_numbers)
            make_tenant(f"extra-{number}", f"Extra {number}")

    def create_payload(self) -> dict[str, object]:
        return {"slug": "initech", "name": "Initech", "limits": {"vms": 2, "vcpu": 8}}

    def update_payload(self) -> dict[str, object]:
        return {"name": "Acme Renamed"}

    def create_denied_status(self, persona: str) -> int:
        return 403  # tenants are created on the platform, not inside a tenant


def test_tenant_embeds_its_quota_usage(alice: User, acme: Tenant) -> None:
    with transaction.atomic():
        quota_reserve(tenant=acme, subject="vm:1", amounts={"vms": 2, "vcpu": 4})

    detail = api_client_for(alice).get(tenant_url("acme")).data
    listed = api_client_for(alice).get(reverse("api:tenant-list")).data["results"]

    vms = usage_by_resource(detail["quota"])["vms"]
    assert vms == {
        "resource": "vms",
        "name": "Virtual machines",
        "limit": 10,
        "used": 2,
        "available": 8,
        "percent": 20,
        "over_limit": False,
    }
    assert listed[0]["quota"] == detail["quota"]


def test_onboarding_sets_the_initial_quota(oscar: User) -> None:
    response = api_client_for(oscar).post(
        reverse("api:tenant-list"),
        {"slug": "initech", "name": "Initech", "limits": {"vms": 2}},
        format="json",
    )

    assert response.status_code == 201
    assert response.data["state"] == "active"
    limits = Quota.objects.get(tenant__slug="initech").limits()
    assert limits["vms"] == 2
    assert limits["clusters"] == 0  # left out: starts at zero
    assert AuditEvent.objects.filter(action="create", tenant_slug="initech", actor=oscar).exists()


def test_onboarding_refuses_a_bad_slug_on_its_field(oscar: User, acme: Tenant) -> None:
    client = api_client_for(oscar)
    taken = client.post(reverse("api:tenant-list"), {"slug": "acme", "name": "X"}, format="json")
    not_dns = client.post(reverse("api:tenant-list"), {"slug": "Ac_me", "name": "X"}, format="json")

    assert taken.status_code == not_dns.status_code == 400
    assert set(taken.data) == set(not_dns.data) == {"slug"}


def test_renaming_keeps_the_slug(oscar: User, acme: Tenant) -> None:
    response = api_client_for(oscar).put(
        tenant_url("acme"), {"slug": "other", "name": "Acme Renamed"}, format="json"
    )

    assert response.status_code == 200
    acme.refresh_from_db()
    assert (acme.slug, acme.name) == ("acme", "Acme Renamed")


def test_a_tenant_holding_quota_cannot_be_deleted(oscar: User, acme: Tenant) -> None:
    with transaction.atomic():
        quota_reserve(tenant=acme, subject="cluster:1", amounts={"clusters": 1})

    response = api_client_for(oscar).delete(tenant_url("acme"))

    assert response.status_code == 400
    assert "cluster:1" in response.data["non_field_errors"][0]
    assert Tenant.objects.filter(slug="acme").exists()


def test_operators_suspend_and_resume(personas: dict[str, User], acme: Tenant) -> None:
    statuses = {
        name: api_client_for(personas[name]).post(tenant_url("acme", "suspend")).status_code
        for name in ("alice", "audrey", "gina")
    }
    assert statuses == {"alice": 403, "audrey": 403, "gina": 404}

    oscar = api_client_for(personas["oscar"])
    suspended = oscar.post(tenant_url("acme", "suspend"))
    assert (suspended.status_code, suspended.data["state"]) == (200, "suspended")
    filtered = oscar.get(reverse("api:tenant-list"), {"state": "suspended"}).data["results"]
    assert [row["slug"] for row in filtered] == ["acme"]

    resumed = oscar.post(tenant_url("acme", "resume"))
    assert (resumed.status_code, resumed.data["state"]) == (200, "active")
    actions = AuditEvent.objects.filter(object_type="tenant", tenant_slug="acme")
    assert list(actions.values_list("action", flat=True)) == ["resume", "suspend"]


class TestQuotaEndpoint:
    def test_viewers_read_limit_used_and_available(self, carol: User, acme: Tenant) -> None:
        with transaction.atomic():
            quota_reserve(tenant=acme, subject="vm:1", amounts={"memory_mib": 4096})

        response = api_client_for(carol).get(tenant_url("acme", "quota"))

        assert response.status_code == 200
        assert response.data["tenant"] == "acme"
        memory = usage_by_resource(response.data["resources"])["memory_mib"]
        assert (memory["limit"], memory["used"], memory["available"]) == (98304, 4096, 94208)
        assert len(response.data["resources"]) == len(DEFAULT_LIMITS)

    def test_other_tenants_quota_is_404(self, gina: User, acme: Tenant) -> None:
        assert api_client_for(gina).get(tenant_url("acme", "quota")).status_code == 404

    def test_only_operators_change_it(self, personas: dict[str, User]) -> None:
        statuses = {
            name: api_client_for(personas[name])
            .patch(tenant_url("acme", "quota"), {"vms": 20}, format="json")
            .status_code
            for name in ("alice", "audrey", "gina", "oscar")
        }
        assert statuses == {"alice": 403, "audrey": 403, "gina": 404, "oscar": 200}

    def test_put_needs_every_resource(self, oscar: User, acme: Tenant) -> None:
        response = api_client_for(oscar).put(
            tenant_url("acme", "quota"), {"vms": 20}, format="json"
        )

        assert response.status_code == 400
        assert set(response.data) == set(DEFAULT_LIMITS) - {"vms"}

    def test_put_replaces_every_limit(self, oscar: User, acme: Tenant) -> None:
        limits = {resource: 7 for resource in DEFAULT_LIMITS}

        response = api_client_for(oscar).put(tenant_url("acme", "quota"), limits, format="json")

        assert response.status_code == 200
        assert Quota.objects.get(tenant=acme).limits() == limits

    def test_negative_limit_is_refused_on_its_field(self, oscar: User, acme: Tenant) -> None:
        response = api_client_for(oscar).patch(
            tenant_url("acme", "quota"), {"vcpu": -1}, format="json"
        )

        assert response.status_code == 400
        assert set(response.data) == {"vcpu"}

    def test_below_usage_needs_force(self, oscar: User, acme: Tenant) -> None:
        with transaction.atomic():
            quota_reserve(tenant=acme, subject="vm:1", amounts={"vms": 4, "vcpu": 16})
        client = api_client_for(oscar)
        lower = {"vms": 2, "vcpu": 8, "clusters": 1}

        refused = client.patch(tenant_url("acme", "quota"), lower, format="json")

        assert refused.status_code == 400
        assert set(refused.data) == {"vms", "vcpu"}  # each field below usage, and only those
        assert "already uses 4" in refused.data["vms"][0]
        assert Quota.objects.get(tenant=acme).vms == 10

        forced = client.patch(tenant_url("acme", "quota"), {**lower, "force": True}, format="json")

        assert forced.status_code == 200
        vms = usage_by_resource(forced.data["resources"])["vms"]
        assert (vms["limit"], vms["used"], vms["over_limit"]) == (2, 4, True)
        event = AuditEvent.objects.get(object_type="quota", action="update")
        assert event.changes["forced"] is True
        assert event.actor == oscar
