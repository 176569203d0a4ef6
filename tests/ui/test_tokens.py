"""API tokens: the secret is shown once, errors stay on their fields, revoking asks first."""

from __future__ import annotations

import json
import re
from datetime import date, timedelta

from django.urls import reverse
from django.utils import timezone

from tenants import services
from tenants.audit import Actor
from tenants.models import ApiToken, User
from tests.conftest import browser_client_for
from tests.ui.conftest import htmx, queries_for_get

TOKENS = reverse("tokens")
CREATE = reverse("token-create")


def test_secret_is_shown_once_and_works(bob: User) -> None:
    client = browser_client_for(bob)
    response = client.post(CREATE, {"name": "CI pipeline", "scope": "write"})
    text = response.content.decode()
    found = re.search(r"bpt_[0-9a-f]{8}_[\w-]+", text)
    assert found is not None
    secret = found.group(0)
    assert "no-store" in response["Cache-Control"]
    assert "it is shown only this once" in text.replace("It is", "it is")

    token = services.token_authenticate(secret)
    assert token is not None
    assert (token.user, token.name, token.scope) == (bob, "CI pipeline", "write")

    later = client.get(TOKENS).content.decode()
    assert secret not in later
    assert f"bpt_{token.prefix}_" in later  # the list names it by prefix only


def test_htmx_create_swaps_the_card_and_refreshes_the_list(bob: User) -> None:
    response = browser_client_for(bob).post(
        CREATE, {"name": "terraform", "scope": "read"}, headers=htmx("token-create")
    )
    text = response.content.decode()
    assert text.lstrip().startswith('<section id="token-create"')
    assert json.loads(response["HX-Trigger"]) == {"tokens-changed": {}}
    assert "Token “terraform” created" in text


def test_expiry_is_the_end_of_the_chosen_day(bob: User) -> None:
    day = date.today() + timedelta(days=30)
    browser_client_for(bob).post(
        CREATE, {"name": "short-lived", "scope": "read", "expires_at": day.isoformat()}
    )
    token = ApiToken.objects.get()
    expires = timezone.localtime(token.expires_at)
    assert (expires.date(), expires.hour, expires.minute) == (day, 23, 59)


def test_service_refusals_land_on_the_field_and_keep_the_input(bob: User) -> None:
    response = browser_client_for(bob).post(
        CREATE,
        {"name": "old", "scope": "write", "expires_at": "2001-01-01"},
        headers=htmx("token-create"),
    )
    text = response.content.decode()
    assert "The expiry must be in the future." in text
    assert 'id="id_expires_at_error"' in text
    assert 'value="old"' in text
    assert 'value="write" required id="id_scope_1" checked' in text
    assert 'value="2001-01-01"' in text
    assert not ApiToken.objects.exists()


def test_a_name_is_required(bob: User) -> None:
    response = browser_client_for(bob).post(CREATE, {"name": "", "scope": "read"})
    assert b"This field is required." in response.content
    assert not ApiToken.objects.exists()


def test_revoking_asks_then_revokes(bob: User) -> None:
    token, _ = services.token_create(actor=Actor(user=bob), name="old script", scope="read")
    client = browser_client_for(bob)
    url = reverse("token-revoke", args=[token.pk])
    assert (
        b"Revoke \xe2\x80\x9cold script\xe2\x80\x9d?"
        in client.get(url, headers=htmx("modal-body")).content
    )
    assert client.post(url, headers=htmx("modal-body"))["HX-Redirect"] == TOKENS
    token.refresh_from_db()
    assert token.status == "revoked"
    page = client.get(TOKENS).content.decode()
    assert "Revoked" in page
    assert url not in page  # no revoke button on a revoked token


def test_only_own_tokens_are_listed(alice: User, bob: User) -> None:
    services.token_create(actor=Actor(user=alice), name="alice's robot", scope="read")
    page = browser_client_for(bob).get(TOKENS).content.decode()
    assert "alice&#x27;s robot" not in page
    assert "No tokens yet" in page


def test_token_list_query_count_is_constant(bob: User) -> None:
    client = browser_client_for(bob)
    services.token_create(actor=Actor(user=bob), name="one", scope="read")
    few = queries_for_get(client, TOKENS)
    for number in range(10):
        services.token_create(actor=Actor(user=bob), name=f"token {number}", scope="write")
    assert queries_for_get(client, TOKENS) == few
