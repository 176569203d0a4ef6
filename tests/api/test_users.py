"""/api/v1/users/: accounts, for operators (who act) and auditors (who only read)."""

from __future__ import annotations

import itertools

from django.urls import reverse

from tenants.access import TenantRole
from tenants.models import ApiToken, Membership, Tenant, User
from tests.api_mixin import APIEndpointTests, bearer_client, token_client_for
from tests.conftest import api_client_for

user_numbers = itertools.count()


class TestUserEndpoint(APIEndpointTests):
    basename = "user"
    viewers = globex_viewers = frozenset({"oscar", "audrey"})
    platform_only = True
    list_as = "oscar"

    def make_object(self, tenant: Tenant) -> User:
        user = User.objects.create(username=f"user-{next(user_numbers)}")
        Membership.objects.create(tenant=tenant, user=user, role=TenantRole.MEMBER)
        return user


def test_accounts_show_their_memberships(oscar: User, alice: User) -> None:
    shown = api_client_for(oscar).get(reverse("api:user-detail", args=[alice.pk])).data

    assert (shown["username"], shown["is_active"], shown["platform_role"]) == ("alice", True, "")
    assert shown["memberships"] == [{"tenant": "acme", "tenant_name": "Acme Corp", "role": "admin"}]


def test_filters(personas: dict[str, User]) -> None:
    client = api_client_for(personas["audrey"])

    def listed(**filters: str) -> list[str]:
        rows = client.get(reverse("api:user-list"), filters).data["results"]
        return [row["username"] for row in rows]

    assert listed(tenant="acme") == ["alice", "bob", "carol"]
    assert listed(platform_role="operator") == ["oscar"]
    assert listed(username="GIN") == ["gina"]
    assert listed(is_active="false") == []


def test_operators_disable_and_enable_accounts(personas: dict[str, User]) -> None:
    bob = personas["bob"]
    bobs_client, bobs_token = token_client_for(bob, ApiToken.Scope.WRITE)
    disable_url = reverse("api:user-disable", args=[bob.pk])
    refused = {
        name: api_client_for(personas[name]).post(disable_url).status_code
        for name in ("alice", "audrey", "nobody")
    }
    assert refused == {"alice": 403, "audrey": 403, "nobody": 403}

    disabled = api_client_for(personas["oscar"]).post(disable_url)

    assert (disabled.status_code, disabled.data["is_active"]) == (200, False)
    bobs_token.refresh_from_db()
    assert bobs_token.status == "revoked"
    assert bobs_client.get("/api/v1/me/").status_code == 401

    enabled = api_client_for(personas["oscar"]).post(reverse("api:user-enable", args=[bob.pk]))

    assert (enabled.status_code, enabled.data["is_active"]) == (200, True)
    assert bobs_client.get("/api/v1/me/").status_code == 401  # revoked tokens stay revoked


def test_an_operator_cannot_disable_themselves(oscar: User) -> None:
    response = api_client_for(oscar).post(reverse("api:user-disable", args=[oscar.pk]))

    assert response.status_code == 400
    assert "your own account" in response.data["non_field_errors"][0]


def test_unknown_accounts_are_404_for_operators(oscar: User) -> None:
    assert api_client_for(oscar).get(reverse("api:user-detail", args=[999999])).status_code == 404
    assert bearer_client("bpt_x_y").get(reverse("api:user-list")).status_code == 401
