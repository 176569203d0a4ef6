"""The invitation landing page: join with the current account or a new one."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from tenants import services
from tenants.access import TenantRole
from tenants.audit import Actor
from tenants.models import Invitation, Membership, Tenant, User
from tests.conftest import browser_client_for


@pytest.fixture
def invitation(alice: User, acme: Tenant) -> tuple[Invitation, str]:
    return services.invitation_create(
        actor=Actor(user=alice), tenant=acme, role=TenantRole.MEMBER, email="newbie@example.com"
    )


def landing(secret: str) -> str:
    return reverse("invitation", args=[secret])


def test_anonymous_visitors_see_the_tenant_and_both_ways_in(
    invitation: tuple[Invitation, str],
) -> None:
    _, secret = invitation
    response = Client().get(landing(secret))
    text = response.content.decode()
    assert response.status_code == 200
    assert "Acme Corp" in text
    assert "Member" in text
    assert "invited by <strong>alice</strong>" in text
    assert f'href="{reverse("login")}?next={landing(secret)}"' in text
    assert 'value="newbie@example.com"' in text  # the sign-up form starts with the invited address


@pytest.mark.parametrize(
    ("make_unusable", "status", "message"),
    [
        (lambda inv: setattr(inv, "revoked_at", timezone.now()), 410, "was revoked"),
        (
            lambda inv: setattr(inv, "expires_at", timezone.now() - timedelta(hours=1)),
            410,
            "has expired",
        ),
        (lambda inv: setattr(inv, "accepted_at", timezone.now()), 410, "already used"),
    ],
)
def test_unusable_links_explain_why(
    invitation: tuple[Invitation, str], make_unusable, status: int, message: str
) -> None:
    row, secret = invitation
    make_unusable(row)
    row.save()
    response = Client().get(landing(secret))
    assert response.status_code == status
    assert message in response.content.decode()
    assert b"Create account and join" not in response.content


def test_unknown_links_are_not_found(db: None) -> None:
    response = Client().get(landing("not-a-real-secret"))
    assert response.status_code == 404
    assert b"This invitation link is not valid" in response.content


def test_signed_in_user_joins_with_one_click(
    invitation: tuple[Invitation, str], gina: User, acme: Tenant
) -> None:
    _, secret = invitation
    client = browser_client_for(gina)
    page = client.get(landing(secret)).content.decode()
    assert "Join Acme Corp" in page
    assert reverse("invitation-accept", args=[secret]) in page

    response = client.post(reverse("invitation-accept", args=[secret]), follow=True)
    assert response.redirect_chain == [(reverse("tenant-dashboard", args=["acme"]), 302)]
    assert b"Welcome to Acme Corp. You joined as member." in response.content
    assert Membership.objects.get(tenant=acme, user=gina).role == TenantRole.MEMBER


def test_existing_members_are_told_what_accepting_does(
    invitation: tuple[Invitation, str], carol: User
) -> None:
    _, secret = invitation
    page = browser_client_for(carol).get(landing(secret)).content.decode()
    assert "You are already viewer in Acme Corp." in page


def test_accepting_a_used_link_shows_the_reason(
    invitation: tuple[Invitation, str], gina: User, bob: User
) -> None:
    _, secret = invitation
    browser_client_for(bob).post(reverse("invitation-accept", args=[secret]))
    response = browser_client_for(gina).post(reverse("invitation-accept", args=[secret]))
    assert response.status_code == 410
    assert b"This invitation link is accepted and cannot be used." in response.content
    assert not Membership.objects.filter(user=gina, tenant__slug="acme").exists()


def test_anonymous_accept_goes_to_sign_in_and_back(invitation: tuple[Invitation, str]) -> None:
    _, secret = invitation
    response = Client().post(reverse("invitation-accept", args=[secret]))
    assert response["Location"] == f"{reverse('login')}?next={landing(secret)}"


def test_sign_up_creates_the_account_joins_and_signs_in(
    invitation: tuple[Invitation, str], acme: Tenant
) -> None:
    _, secret = invitation
    client = Client()
    response = client.post(
        reverse("invitation-signup", args=[secret]),
        {"username": "newbie", "email": "newbie@example.com", "password": "a-long-passphrase-9"},
    )
    assert response["Location"] == reverse("tenant-dashboard", args=["acme"])
    user = User.objects.get(username="newbie")
    assert user.check_password("a-long-passphrase-9")
    assert Membership.objects.get(tenant=acme, user=user).role == TenantRole.MEMBER
    assert client.get(reverse("tenant-dashboard", args=["acme"])).status_code == 200


def test_sign_up_errors_keep_what_was_typed(invitation: tuple[Invitation, str]) -> None:
    row, secret = invitation
    response = Client().post(
        reverse("invitation-signup", args=[secret]),
        {"username": "newbie", "email": "newbie@example.com", "password": "12345"},
    )
    text = response.content.decode()
    assert response.status_code == 200
    assert "This password is too short." in text
    assert 'id="id_password_error"' in text
    assert 'value="newbie"' in text
    assert 'value="newbie@example.com"' in text
    assert 'value="12345"' not in text  # passwords are never echoed back
    assert not User.objects.filter(username="newbie").exists()
    row.refresh_from_db()
    assert row.status == "pending"


def test_sign_up_with_a_taken_username(invitation: tuple[Invitation, str], bob: User) -> None:
    _, secret = invitation
    response = Client().post(
        reverse("invitation-signup", args=[secret]),
        {"username": "BOB", "email": "b@example.com", "password": "a-long-passphrase-9"},
    )
    assert b"This username is taken." in response.content
    assert 'id="id_username_error"' in response.content.decode()


def test_sign_up_on_a_revoked_link_creates_no_account(
    invitation: tuple[Invitation, str], alice: User
) -> None:
    row, secret = invitation
    services.invitation_revoke(actor=Actor(user=alice), invitation=row)
    response = Client().post(
        reverse("invitation-signup", args=[secret]),
        {"username": "newbie", "email": "n@example.com", "password": "a-long-passphrase-9"},
    )
    assert response.status_code == 410
    assert not User.objects.filter(username="newbie").exists()
