"""/api/v1/tokens/: the caller's own API tokens, hashed, shown once, expiring, revocable."""

from __future__ import annotations

import hashlib
import itertools
from datetime import timedelta
from typing import Any

from django.urls import reverse
from django.utils import timezone

from tenants.audit import Actor
from tenants.models import ApiToken, Tenant, User
from tenants.services import token_create, user_set_active
from tests.api_mixin import PERSONAS, APIEndpointTests, Operation, bearer_client
from tests.conftest import api_client_for

ME_URL = "/api/v1/me/"
token_numbers = itertools.count()


def new_token(user: User, scope: str = ApiToken.Scope.WRITE, **kwargs: Any) -> tuple[ApiToken, str]:
    return token_create(
        actor=Actor(user), name=f"token-{next(token_numbers)}", scope=scope, **kwargs
    )


class TestApiTokenEndpoint(APIEndpointTests):
    basename = "token"
    # Tokens are personal: alice's is hers alone, whatever anyone's role.
    viewers = frozenset({"alice"})
    globex_viewers = frozenset({"gina"})
    creators = frozenset(PERSONAS)
    deleters = frozenset({"alice"})

    def make_object(self, tenant: Tenant) -> ApiToken:
        owner = self.personas["alice" if tenant == self.acme else "gina"]
        return new_token(owner)[0]

    def create_payload(self) -> dict[str, object]:
        return {"name": "ci pipeline", "scope": "write"}

    def took_effect(self, operation: Operation, response: Any) -> bool:
        if operation == "delete":  # revoked, and kept for the audit trail
            return ApiToken.objects.get(pk=self.acme_object.pk).status == "revoked"
        return super().took_effect(operation, response)


def test_the_secret_is_shown_once_and_only_its_hash_is_kept(alice: User) -> None:
    client = api_client_for(alice)
    expires_at = timezone.now() + timedelta(days=30)

    created = client.post(
        reverse("api:token-list"),
        {"name": "ci", "scope": "read", "expires_at": expires_at.isoformat()},
        format="json",
    )

    assert created.status_code == 201
    secret = created.data["token"]
    token = ApiToken.objects.get(pk=created.data["id"])
    assert token.digest == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in {token.name, token.prefix, token.digest}
    assert (token.user, token.scope, token.expires_at) == (alice, "read", expires_at)
    listed = client.get(reverse("api:token-list")).data["results"]
    shown = client.get(reverse("api:token-detail", args=[token.pk])).data
    assert all("token" not in row for row in [*listed, shown])
    assert bearer_client(secret).get(ME_URL).data["username"] == "alice"


def test_every_issued_secret_authenticates(alice: User) -> None:
    # The random part may contain "_", the separator of the token's parts.
    secrets = [new_token(alice)[1] for _ in range(30)]

    assert {bearer_client(secret).get(ME_URL).status_code for secret in secrets} == {200}


def test_use_is_recorded(alice: User) -> None:
    token, secret = new_token(alice)

    bearer_client(secret).get(ME_URL)

    token.refresh_from_db()
    assert token.last_used_at is not None


def test_expired_revoked_disabled_or_forged_tokens_are_401(alice: User, oscar: User) -> None:
    expired, expired_secret = new_token(alice, expires_at=timezone.now() + timedelta(days=1))
    ApiToken.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    revoked, revoked_secret = new_token(alice)
    api_client_for(alice).post(reverse("api:token-revoke", args=[revoked.pk]))
    _, disabled_owner_secret = new_token(alice)
    user_set_active(actor=Actor(oscar), user=alice, active=False)
    _, good_secret = new_token(oscar)

    statuses = {
        name: bearer_client(secret).get(ME_URL).status_code
        for name, secret in {
            "expired": expired_secret,
            "revoked": revoked_secret,
            "owner disabled": disabled_owner_secret,
            "forged": good_secret[:-4] + "abcd",
            "malformed": "not-a-token",
            "good": good_secret,
        }.items()
    }

    assert statuses == {
        "expired": 401,
        "revoked": 401,
        "owner disabled": 401,
        "forged": 401,
        "malformed": 401,
        "good": 200,
    }


def test_revoking_keeps_the_token_listed_as_revoked(alice: User) -> None:
    token, _ = new_token(alice)
    client = api_client_for(alice)

    revoked = client.post(reverse("api:token-revoke", args=[token.pk]))
    deleted = client.delete(reverse("api:token-detail", args=[token.pk]))  # idempotent

    assert (revoked.status_code, revoked.data["status"]) == (200, "revoked")
    assert deleted.status_code == 204
    assert client.get(reverse("api:token-detail", args=[token.pk])).data["status"] == "revoked"


def test_a_read_only_token_can_neither_create_nor_revoke(alice: User) -> None:
    victim, _ = new_token(alice)
    _, read_only_secret = new_token(alice, scope=ApiToken.Scope.READ)
    client = bearer_client(read_only_secret)

    statuses = (
        client.post(reverse("api:token-list"), {"name": "escalate", "scope": "write"}).status_code,
        client.post(reverse("api:token-revoke", args=[victim.pk])).status_code,
        client.delete(reverse("api:token-detail", args=[victim.pk])).status_code,
    )

    assert statuses == (403, 403, 403)
    assert ApiToken.objects.filter(user=alice).count() == 2
    victim.refresh_from_db()
    assert victim.status == "active"


def test_expiry_must_be_in_the_future_and_within_the_maximum(alice: User, settings: Any) -> None:
    client = api_client_for(alice)
    past = timezone.now() - timedelta(minutes=1)
    too_far = timezone.now() + timedelta(days=settings.API_TOKEN_MAX_LIFETIME_DAYS + 1)

    answers = [
        client.post(
            reverse("api:token-list"), {"name": "x", "expires_at": when.isoformat()}, format="json"
        )
        for when in (past, too_far)
    ]

    assert [(a.status_code, set(a.data)) for a in answers] == [(400, {"expires_at"})] * 2
