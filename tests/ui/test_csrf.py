"""Every form and htmx request carries the CSRF token, and the portal enforces it."""

from __future__ import annotations

import re

from django.test import Client
from django.urls import reverse

from tenants.models import ApiToken, Tenant, User


def csrf_client(user: User) -> tuple[Client, str]:
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    page = client.get(reverse("tokens")).content.decode()
    header = re.search(r'hx-headers=\'\{"X-CSRFToken": "([^"]+)"\}\'', page)
    assert header is not None, "the page hands htmx its CSRF token"
    return client, header.group(1)


def test_posts_without_the_token_are_refused(bob: User) -> None:
    client, _ = csrf_client(bob)
    response = client.post(reverse("token-create"), {"name": "sneaky", "scope": "write"})
    assert response.status_code == 403
    assert b"This form has expired" in response.content
    assert not ApiToken.objects.exists()


def test_form_posts_with_the_token_pass(bob: User) -> None:
    client, token = csrf_client(bob)
    response = client.post(
        reverse("token-create"), {"name": "legit", "scope": "read", "csrfmiddlewaretoken": token}
    )
    assert response.status_code == 200
    assert ApiToken.objects.filter(name="legit").exists()


def test_htmx_posts_send_the_token_as_a_header(alice: User, acme: Tenant) -> None:
    client, token = csrf_client(alice)
    url = reverse("invitation-create", args=["acme"])
    refused = client.post(url, {"role": "viewer"}, headers={"HX-Request": "true"})
    accepted = client.post(
        url, {"role": "viewer"}, headers={"HX-Request": "true", "X-CSRFToken": token}
    )
    assert (refused.status_code, accepted.status_code) == (403, 200)


def test_sign_out_is_protected_too(bob: User) -> None:
    client, _ = csrf_client(bob)
    assert client.post(reverse("logout")).status_code == 403
    assert client.get(reverse("tokens")).status_code == 200  # still signed in
