"""Sign-in, sign-out, lockout and where the home page sends each kind of user."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from tenants.access import TenantRole
from tenants.models import Membership, Tenant, User
from tests.conftest import PASSWORD, browser_client_for


@pytest.mark.parametrize(
    ("username", "landing"),
    [
        ("alice", "/t/acme/"),
        ("gina", "/t/globex/"),
        ("oscar", "/operator/"),
        ("audrey", "/operator/"),
    ],
)
def test_home_sends_users_where_they_work(
    username: str, landing: str, personas: dict[str, User]
) -> None:
    response = browser_client_for(personas[username]).get(reverse("home"))
    assert response.status_code == 302
    assert response["Location"] == landing


def test_operators_with_a_membership_land_on_their_tenant(oscar: User, globex: Tenant) -> None:
    Membership.objects.create(tenant=globex, user=oscar, role=TenantRole.VIEWER)
    response = browser_client_for(oscar).get(reverse("home"))
    assert response["Location"] == "/t/globex/"


def test_users_without_a_tenant_get_a_friendly_explanation(nobody: User) -> None:
    response = browser_client_for(nobody).get(reverse("home"))
    assert response.status_code == 200
    assert b"You are not in a tenant yet" in response.content
    assert reverse("tokens").encode() in response.content


def test_anonymous_home_goes_to_sign_in() -> None:
    response = Client().get(reverse("home"))
    assert response["Location"] == f"{reverse('login')}?next=/"


def test_sign_in_lands_on_the_next_page(alice: User) -> None:
    client = Client()
    page = client.get(reverse("login"))
    assert b'<label class="field-label" for="id_username">' in page.content
    response = client.post(
        reverse("login"),
        {"username": "alice", "password": PASSWORD, "next": "/account/tokens/"},
    )
    assert response.status_code == 302
    assert response["Location"] == "/account/tokens/"


def test_wrong_password_explains_and_keeps_the_username(alice: User) -> None:
    response = Client().post(reverse("login"), {"username": "alice", "password": "nope"})
    assert response.status_code == 200
    assert b"Please enter a correct username and password" in response.content
    assert b'value="alice"' in response.content
    assert b'role="alert"' in response.content


def test_repeated_failures_lock_the_account_with_an_explanation(alice: User) -> None:
    client = Client()
    statuses = [
        client.post(reverse("login"), {"username": "alice", "password": "nope"}).status_code
        for _ in range(5)
    ]
    locked = client.post(reverse("login"), {"username": "alice", "password": PASSWORD})
    assert statuses[0] == 200
    assert locked.status_code == 429
    text = locked.content.decode()
    assert "Sign-in paused" in text
    assert "15 minutes" in text
    assert "<strong>alice</strong>" in text
    # Even the right password does not get in during the wait.
    assert "_auth_user_id" not in client.session


def test_sign_out_needs_a_post(alice: User) -> None:
    client = browser_client_for(alice)
    assert client.get(reverse("logout")).status_code == 405
    response = client.post(reverse("logout"))
    assert response["Location"] == reverse("login")
    assert client.get(reverse("tokens")).status_code == 302


def test_signed_in_pages_carry_the_navigation(alice: User) -> None:
    response = browser_client_for(alice).get(reverse("members", args=["acme"]))
    text = response.content.decode()
    assert 'aria-current="page"' in text
    assert reverse("tenant-dashboard", args=["acme"]) in text
    assert reverse("audit") in text  # alice administers acme
    assert reverse("operator-tenants") not in text  # and is no operator
    assert 'data-live-url="/ws/tenants/acme/"' in text
    assert "js/live.js" in text


def test_bob_is_not_offered_the_audit_log(bob: User) -> None:
    response = browser_client_for(bob).get(reverse("tenant-dashboard", args=["acme"]))
    assert reverse("audit").encode() not in response.content


def test_pages_outside_a_tenant_open_no_live_channel(alice: User) -> None:
    response = browser_client_for(alice).get(reverse("tokens"))
    assert b"data-live-url" not in response.content
