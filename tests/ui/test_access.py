"""Who may open which page: every page for every persona.

acme: alice admin, bob member, carol viewer; globex: gina admin; oscar operator,
audrey auditor, nobody without a tenant. A tenant outside a user's reach is 404, a page
their role does not allow is 403, anonymous visitors are sent to sign in.
"""

from __future__ import annotations

import pytest
from django.template.loader import render_to_string
from django.test import Client
from django.urls import reverse

from tenants.access import TenantRole
from tenants.models import ApiToken, Invitation, Membership, Tenant, User
from tests.conftest import browser_client_for

EVERYONE = ("alice", "bob", "carol", "gina", "oscar", "audrey", "nobody")
ACME_READERS = {"alice": 200, "bob": 200, "carol": 200, "oscar": 200, "audrey": 200}
ACME_ADMINS = {"alice": 200, "oscar": 200, "bob": 403, "carol": 403, "audrey": 403}
PLATFORM_READERS = {"oscar": 200, "audrey": 200}
PLATFORM_OPERATORS = {"oscar": 200, "audrey": 403}
AUDIT_READERS = {"alice": 200, "gina": 200, "oscar": 200, "audrey": 200}


def expected(allowed: dict[str, int], outsiders: int) -> dict[str, int]:
    """Everyone not listed in ``allowed`` gets ``outsiders``."""
    return {name: allowed.get(name, outsiders) for name in EVERYONE}


@pytest.fixture
def pages(personas: dict[str, User], acme: Tenant) -> dict[str, tuple[str, dict[str, int]]]:
    bob_membership = Membership.objects.get(tenant=acme, user=personas["bob"])
    invitation = Invitation.objects.create(
        tenant=acme,
        role=TenantRole.MEMBER,
        token_digest="0" * 64,
        expires_at="2999-01-01T00:00:00Z",
    )
    return {
        "dashboard": (reverse("tenant-dashboard", args=["acme"]), expected(ACME_READERS, 404)),
        "members": (reverse("members", args=["acme"]), expected(ACME_READERS, 404)),
        "member-remove": (
            reverse("member-remove", args=["acme", bob_membership.pk]),
            expected(ACME_ADMINS, 404),
        ),
        "invitation-revoke": (
            reverse("invitation-revoke", args=["acme", invitation.pk]),
            expected(ACME_ADMINS, 404),
        ),
        "tokens": (reverse("tokens"), expected({}, 200)),
        "audit": (reverse("audit"), expected(AUDIT_READERS, 403)),
        "audit-export": (reverse("audit-export"), expected(AUDIT_READERS, 403)),
        "operator-tenants": (reverse("operator-tenants"), expected(PLATFORM_READERS, 403)),
        "operator-tenant": (
            reverse("operator-tenant", args=["acme"]),
            expected(PLATFORM_READERS, 403),
        ),
        "operator-tenant-create": (
            reverse("operator-tenant-create"),
            expected(PLATFORM_OPERATORS, 403),
        ),
        "operator-tenant-delete": (
            reverse("operator-tenant-delete", args=["acme"]),
            expected(PLATFORM_OPERATORS, 403),
        ),
        "operator-users": (reverse("operator-users"), expected(PLATFORM_READERS, 403)),
        "operator-user-disable": (
            reverse("operator-user-disable", args=[personas["bob"].pk]),
            expected(PLATFORM_OPERATORS, 403),
        ),
    }


PAGE_NAMES = [
    "dashboard",
    "members",
    "member-remove",
    "invitation-revoke",
    "tokens",
    "audit",
    "audit-export",
    "operator-tenants",
    "operator-tenant",
    "operator-tenant-create",
    "operator-tenant-delete",
    "operator-users",
    "operator-user-disable",
]


@pytest.mark.parametrize("page", PAGE_NAMES)
def test_every_persona_gets_the_expected_status(
    page: str, pages: dict[str, tuple[str, dict[str, int]]], personas: dict[str, User]
) -> None:
    url, statuses = pages[page]
    for username, status in statuses.items():
        response = browser_client_for(personas[username]).get(url)
        assert response.status_code == status, f"{username} on {url}"


@pytest.mark.parametrize("page", PAGE_NAMES)
def test_anonymous_visitors_are_sent_to_sign_in(
    page: str, pages: dict[str, tuple[str, dict[str, int]]]
) -> None:
    url, _ = pages[page]
    response = Client().get(url)
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('login')}?next={url}"


def test_anonymous_htmx_request_redirects_the_whole_page(acme: Tenant) -> None:
    members = reverse("members", args=["acme"])
    response = Client().get(
        members, headers={"HX-Request": "true", "HX-Current-URL": f"http://testserver{members}"}
    )
    assert response.status_code == 200
    assert response["HX-Redirect"] == f"{reverse('login')}?next={members}"


def test_outsider_tenant_looks_like_a_missing_one(gina: User, acme: Tenant) -> None:
    client = browser_client_for(gina)
    missing = client.get(reverse("tenant-dashboard", args=["no-such-tenant"]))
    hidden = client.get(reverse("tenant-dashboard", args=["acme"]))
    assert missing.status_code == hidden.status_code == 404
    assert b"Acme" not in hidden.content
    assert b"Nothing here" in hidden.content  # the portal's own page, with its navigation
    assert b'class="sidenav"' in hidden.content


def test_forbidden_pages_say_why(carol: User, acme: Tenant) -> None:
    response = browser_client_for(carol).get(reverse("audit"))
    assert response.status_code == 403
    assert b"You cannot do this" in response.content
    assert b"The audit log is for tenant admins and platform staff." in response.content


def test_the_server_error_page_needs_no_request_context() -> None:
    page = render_to_string("500.html")
    assert "Something went wrong on our side" in page
    assert "portal.css" in page


@pytest.mark.parametrize(
    ("username", "status"), [("carol", 403), ("bob", 403), ("gina", 404), ("alice", 302)]
)
def test_only_admins_change_roles(
    username: str, status: int, personas: dict[str, User], acme: Tenant
) -> None:
    target = Membership.objects.get(tenant=acme, user=personas["bob"])
    response = browser_client_for(personas[username]).post(
        reverse("member-role", args=["acme", target.pk]), {"role": TenantRole.VIEWER}
    )
    assert response.status_code == status
    target.refresh_from_db()
    assert target.role == (TenantRole.VIEWER if status == 302 else TenantRole.MEMBER)


@pytest.mark.parametrize(
    ("url_name", "args"),
    [
        ("invitation-create", ["acme"]),
        ("member-remove", ["acme", "BOB"]),
    ],
)
def test_viewers_and_members_cannot_mutate(
    url_name: str, args: list[str], personas: dict[str, User], acme: Tenant
) -> None:
    bob_membership = Membership.objects.get(tenant=acme, user=personas["bob"])
    url = reverse(url_name, args=[bob_membership.pk if arg == "BOB" else arg for arg in args])
    for username in ("carol", "bob"):
        response = browser_client_for(personas[username]).post(url, {"role": "admin"})
        assert response.status_code == 403, username
    assert Membership.objects.filter(pk=bob_membership.pk).exists()
    assert not Invitation.objects.exists()


def test_auditors_cannot_change_anything_in_the_console(
    audrey: User, acme: Tenant, bob: User
) -> None:
    client = browser_client_for(audrey)
    posts = [
        (reverse("operator-tenant-create"), {"slug": "x", "name": "X"}),
        (reverse("operator-quota", args=["acme"]), {"clusters": 0}),
        (reverse("operator-tenant-suspend", args=["acme"]), {}),
        (reverse("operator-tenant-delete", args=["acme"]), {"confirmation": "acme"}),
        (reverse("operator-user-disable", args=[bob.pk]), {}),
        (reverse("member-role", args=["acme", bob.memberships.get().pk]), {"role": "admin"}),
    ]
    for url, data in posts:
        assert client.post(url, data).status_code == 403, url
    acme.refresh_from_db()
    bob.refresh_from_db()
    assert acme.is_active
    assert bob.is_active
    assert Tenant.objects.count() == 1


def test_tokens_of_other_users_are_not_found(alice: User, bob: User) -> None:
    token = ApiToken.objects.create(user=bob, name="bob's", prefix="abcd1234", digest="x" * 64)
    response = browser_client_for(alice).get(reverse("token-revoke", args=[token.pk]))
    assert response.status_code == 404
