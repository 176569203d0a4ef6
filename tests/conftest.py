"""Shared fixtures: the personas every test speaks in.

acme:   alice (admin), bob (member), carol (viewer)
globex: gina (admin), a tenant none of the acme people can see
platform: oscar (operator), audrey (auditor), nobody (signed in, no tenant at all)
"""

from __future__ import annotations

import pytest
from django.test import Client
from rest_framework.test import APIClient

from tenants.access import PlatformRole, TenantRole
from tenants.models import Membership, Quota, Tenant, User

PASSWORD = "correct-horse-battery-staple"

DEFAULT_LIMITS = {
    "clusters": 3,
    "worker_nodes": 10,
    "vms": 10,
    "vcpu": 48,
    "memory_mib": 98304,
    "storage_gib": 1000,
    "load_balancer_ips": 5,
}


def make_user(username: str, platform_role: str = "") -> User:
    return User.objects.create_user(
        username=username,
        password=PASSWORD,
        email=f"{username}@example.test",
        platform_role=platform_role,
    )


def make_tenant(slug: str, name: str, **limits: int) -> Tenant:
    tenant = Tenant.objects.create(slug=slug, name=name)
    Quota.objects.create(tenant=tenant, **{**DEFAULT_LIMITS, **limits})
    return tenant


@pytest.fixture
def acme(db: None) -> Tenant:
    return make_tenant("acme", "Acme Corp")


@pytest.fixture
def globex(db: None) -> Tenant:
    return make_tenant("globex", "Globex Inc")


@pytest.fixture
def alice(acme: Tenant) -> User:
    user = make_user("alice")
    Membership.objects.create(tenant=acme, user=user, role=TenantRole.ADMIN)
    return user


@pytest.fixture
def bob(acme: Tenant) -> User:
    user = make_user("bob")
    Membership.objects.create(tenant=acme, user=user, role=TenantRole.MEMBER)
    return user


@pytest.fixture
def carol(acme: Tenant) -> User:
    user = make_user("carol")
    Membership.objects.create(tenant=acme, user=user, role=TenantRole.VIEWER)
    return user


@pytest.fixture
def gina(globex: Tenant) -> User:
    user = make_user("gina")
    Membership.objects.create(tenant=globex, user=user, role=TenantRole.ADMIN)
    return user


@pytest.fixture
def oscar(db: None) -> User:
    return make_user("oscar", PlatformRole.OPERATOR)


@pytest.fixture
def audrey(db: None) -> User:
    return make_user("audrey", PlatformRole.AUDITOR)


@pytest.fixture
def nobody(db: None) -> User:
    return make_user("nobody")


@pytest.fixture
def personas(
    alice: User, bob: User, carol: User, gina: User, oscar: User, audrey: User, nobody: User
) -> dict[str, User]:
    return {u.username: u for u in (alice, bob, carol, gina, oscar, audrey, nobody)}


def browser_client_for(user: User | None) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


def api_client_for(user: User | None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client
