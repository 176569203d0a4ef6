"""Shared fixtures: the personas every test speaks in.

acme:   alice (admin), bob (member), carol (viewer)
globex: gina (admin), a tenant none of the acme people can see
platform: oscar (operator), audrey (auditor), nobody (signed in, no tenant at all)
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any, cast

import pytest
from django.test import Client
from pytest_django.fixtures import Settings as SettingsWrapper
from rest_framework.test import APIClient

from butler_portal.kube.adapter import KubeClient
from butler_portal.kube.localcp import LocalControlPlane
from tenants.access import PlatformRole, TenantRole
from tenants.models import LoadBalancerRange, Membership, Quota, Tenant, User
from tests.kube_support import portal_pointed_at

# Shared test bases live outside test modules: let pytest explain their failed asserts too.
pytest.register_assert_rewrite("tests.api_mixin")

pytest_plugins = ["tests.kube_fixtures", "tests.simulator_fixtures"]

PASSWORD = "correct-horse-battery-staple"


def pytest_configure(config: pytest.Config) -> None:
    from django.conf import settings

    # Hashing strength is Django's concern, not ours: a fast hasher keeps persona setup cheap.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


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


@pytest.fixture(scope="session", autouse=True)
def _close_stray_connections(django_db_setup: None, django_db_blocker: object) -> Iterator[None]:
    """Async consumers run DB code in worker threads whose connections outlive the tests;
    end them before the test database is dropped, or Postgres refuses to drop it."""
    yield
    from django.db import connection

    # Only when a test database was created: a run without database tests never made one.
    created = connection.settings_dict["NAME"] == cast(Any, connection.creation)._get_test_db_name()
    if connection.vendor == "postgresql" and created:
        with django_db_blocker.unblock(), connection.cursor() as cursor:  # type: ignore[attr-defined]
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )


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


# In CI a skipped test is a failure: a skip there means something was not really tested.
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def _skipped_tests(config: pytest.Config) -> list[str]:
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None:
        return []
    reports = reporter.stats.get("skipped", []) + reporter.stats.get("xfailed", [])
    return [getattr(report, "nodeid", "?") for report in reports]


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    skipped = _skipped_tests(terminalreporter.config) if IN_CI else []
    if skipped:
        terminalreporter.write_line(
            f"CI forbids skipped tests; {len(skipped)} skipped: {', '.join(skipped)}", red=True
        )


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if IN_CI and _skipped_tests(session.config) and exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture
def portal_k8s(local_k8s: LocalControlPlane, settings: SettingsWrapper) -> Iterator[KubeClient]:
    """Point the portal (services, tasks) at the session's real local API server."""
    with portal_pointed_at(local_k8s, settings) as client:
        yield client


@pytest.fixture
def address_space(db: None) -> LoadBalancerRange:
    """Room for tenant networks: the default subnet pool exists; add load-balancer addresses."""
    return LoadBalancerRange.objects.create(
        name="test-public", first_address="192.0.2.10", last_address="192.0.2.99"
    )
