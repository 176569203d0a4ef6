"""/api/v1/memberships/: who is in a tenant, role changes and removal."""

from __future__ import annotations

import itertools

from django.urls import reverse

from tenants.access import TenantRole
from tenants.models import Membership, Tenant, User
from tests.api_mixin import ACME_TENANT_VIEWERS, APIEndpointTests
from tests.conftest import api_client_for

member_numbers = itertools.count()


def membership_url(membership: Membership) -> str:
    return reverse("api:membership-detail", args=[membership.pk])


class TestMembershipEndpoint(APIEndpointTests):
    basename = "membership"
    viewers = ACME_TENANT_VIEWERS
    updaters = deleters = frozenset({"alice", "oscar"})

    def make_object(self, tenant: Tenant) -> Membership:
        user = User.objects.create(username=f"member-{next(member_numbers)}")
        return Membership.objects.create(tenant=tenant, user=user, role=TenantRole.VIEWER)

    def update_payload(self) -> dict[str, object]:
        return {"role": TenantRole.MEMBER.value}


def test_the_last_admin_cannot_be_demoted(alice: User, bob: User) -> None:
    own = Membership.objects.get(user=alice)

    response = api_client_for(alice).patch(membership_url(own), {"role": "member"}, format="json")

    assert response.status_code == 400
    assert response.data == {"role": ["The last admin of a tenant cannot be demoted."]}
    own.refresh_from_db()
    assert own.role == TenantRole.ADMIN


def test_an_admin_can_step_down_once_another_admin_exists(alice: User, bob: User) -> None:
    client = api_client_for(alice)
    promoted = client.patch(
        membership_url(Membership.objects.get(user=bob)), {"role": "admin"}, format="json"
    )
    stepped_down = client.patch(
        membership_url(Membership.objects.get(user=alice)), {"role": "viewer"}, format="json"
    )

    assert (promoted.status_code, stepped_down.status_code) == (200, 200)
    assert stepped_down.data["role"] == "viewer"


def test_the_last_admin_cannot_be_removed(alice: User, oscar: User) -> None:
    response = api_client_for(oscar).delete(membership_url(Membership.objects.get(user=alice)))

    assert response.status_code == 400
    assert "last admin" in response.data["non_field_errors"][0]
    assert Membership.objects.filter(user=alice).exists()


def test_an_unknown_role_is_refused_on_its_field(alice: User, carol: User) -> None:
    response = api_client_for(alice).patch(
        membership_url(Membership.objects.get(user=carol)), {"role": "owner"}, format="json"
    )

    assert response.status_code == 400
    assert set(response.data) == {"role"}


def test_filters_narrow_but_never_widen(personas: dict[str, User]) -> None:
    def listed(persona: str, **filters: str) -> list[tuple[str, str]]:
        response = api_client_for(personas[persona]).get(reverse("api:membership-list"), filters)
        return sorted((row["tenant"], row["user"]) for row in response.data["results"])

    assert listed("oscar", tenant="globex") == [("globex", "gina")]
    assert listed("oscar", tenant="acme", role="admin") == [("acme", "alice")]
    assert listed("oscar", user="carol") == [("acme", "carol")]
    assert listed("alice", tenant="globex") == []
    assert listed("carol") == [("acme", "alice"), ("acme", "bob"), ("acme", "carol")]
