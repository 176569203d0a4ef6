"""/api/v1/me/: who the caller is and which tenants they can see."""

from __future__ import annotations

from typing import Any

from tenants.models import ApiToken, User
from tests.api_mixin import token_client_for
from tests.conftest import api_client_for

ME_URL = "/api/v1/me/"


def me(user: User | None) -> Any:
    return api_client_for(user).get(ME_URL)


def test_a_tenant_admin(alice: User, gina: User) -> None:
    profile = me(alice).data

    assert (profile["username"], profile["email"], profile["platform_role"]) == (
        "alice",
        "alice@example.test",
        "",
    )
    assert profile["memberships"] == [
        {"tenant": "acme", "tenant_name": "Acme Corp", "role": "admin"}
    ]
    assert profile["tenants"] == [
        {"slug": "acme", "name": "Acme Corp", "state": "active", "role": "admin"}
    ]


def test_an_operator_sees_every_tenant_without_a_role(oscar: User, alice: User, gina: User) -> None:
    profile = me(oscar).data

    assert profile["platform_role"] == "operator"
    assert profile["memberships"] == []
    assert [(t["slug"], t["role"]) for t in profile["tenants"]] == [
        ("acme", None),
        ("globex", None),
    ]


def test_someone_without_a_tenant(nobody: User, acme: Any) -> None:
    profile = me(nobody).data

    assert (profile["memberships"], profile["tenants"]) == ([], [])


def test_anonymous_is_401_and_a_token_works(carol: User) -> None:
    client, _ = token_client_for(carol, ApiToken.Scope.READ)

    assert me(None).status_code == 401
    assert client.get(ME_URL).data["tenants"][0]["role"] == "viewer"
