"""``/healthz`` and ``/readyz`` answer probes whatever the Host header, and say what is wrong;
the operator console names the components the management cluster lacks."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.test import Client
from pytest_django.fixtures import Settings as SettingsWrapper

from butler_portal import health
from butler_portal.kube.adapter import KubeClient
from tenants.models import User

pytestmark = pytest.mark.django_db

PROBE_HOST = "10.1.2.3:8000"  # a pod address, not in ALLOWED_HOSTS


@pytest.fixture(autouse=True)
def _fresh_kubernetes_health() -> Iterator[None]:
    health.forget_kubernetes_health()
    yield
    health.forget_kubernetes_health()


@pytest.fixture
def production_like(settings: SettingsWrapper) -> None:
    settings.DEBUG = False
    settings.ALLOWED_HOSTS = ["portal.example.com"]
    settings.SECURE_SSL_REDIRECT = True
    settings.KUBE_MODE = "off"


@pytest.fixture
def gadgets_needed(settings: SettingsWrapper) -> None:
    """The portal also needs a kind no API server serves (as when a component is missing)."""
    settings.WATCHER_HANDLER_MODULES = [
        *settings.WATCHER_HANDLER_MODULES,
        "tests.health.unserved_kind_module",
    ]


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_probes_answer_over_http_whatever_the_host(production_like: None, path: str) -> None:
    response = Client().get(path, HTTP_HOST=PROBE_HOST)

    assert response.status_code == 200
    assert response.json()["status"] == "ok"


def test_other_pages_still_refuse_an_unknown_host(production_like: None) -> None:
    response = Client().get("/login/", HTTP_HOST=PROBE_HOST, secure=True)

    assert response.status_code == 400


def test_readiness_without_a_management_cluster_says_so(settings: SettingsWrapper) -> None:
    settings.KUBE_MODE = "off"

    body = Client().get("/readyz").json()

    assert body["status"] == "ok"
    assert body["checks"]["database"] == {"ok": True}
    assert body["checks"]["kubernetes"]["configured"] is False
    assert "No management cluster" in body["checks"]["kubernetes"]["detail"]


def test_readiness_fails_when_redis_does_not_answer(settings: SettingsWrapper) -> None:
    settings.KUBE_MODE = "off"
    settings.REDIS_URL = f"redis://:s3cret-password@127.0.0.1:{closed_port()}/0"

    response = Client().get("/readyz")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["redis"]["ok"] is False
    assert "s3cret" not in response.content.decode()


def test_readiness_names_the_kinds_not_served_and_who_provides_them(
    portal_k8s: KubeClient, gadgets_needed: None
) -> None:
    response = Client().get("/readyz")

    assert response.status_code == 200  # pages still work: degraded, not out of service
    body = response.json()
    assert body["status"] == "degraded"
    kubernetes = body["checks"]["kubernetes"]
    assert kubernetes["reachable"] is True
    assert kubernetes["missing_kinds"] == [
        {
            "api_version": "gadgets.butler.test/v1",
            "kind": "Gadget",
            "component": "gadgets.butler.test",
        }
    ]


def test_readiness_says_when_the_management_cluster_does_not_answer(
    settings: SettingsWrapper, tmp_path: Path
) -> None:
    from butler_portal.kube import forget_clients

    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        f"clusters: [{{name: c, cluster: {{server: 'https://127.0.0.1:{closed_port()}', "
        "insecure-skip-tls-verify: true}}]\n"
        "contexts: [{name: c, context: {cluster: c, user: u}}]\n"
        "users: [{name: u, user: {token: t}}]\n"
    )
    settings.KUBE_MODE = "kubeconfig"
    settings.KUBECONFIG = str(kubeconfig)
    forget_clients()
    try:
        body = Client().get("/readyz").json()
    finally:
        forget_clients()

    assert body["status"] == "degraded"
    assert body["checks"]["kubernetes"]["reachable"] is False


def test_operators_and_auditors_see_which_components_are_missing(
    portal_k8s: KubeClient, gadgets_needed: None
) -> None:
    User.objects.create_user("oscar", password="pw-oscar-123", platform_role="operator")
    User.objects.create_user("audrey", password="pw-audrey-123", platform_role="auditor")
    for username in ("oscar", "audrey"):
        client = Client()
        client.force_login(User.objects.get(username=username))

        page = client.get("/operator/fleet/").content.decode()
        banner = client.get("/operator/platform-health/").content.decode()

        assert 'hx-get="/operator/platform-health/"' in page
        assert "The management cluster is missing components." in banner
        assert "<code>Gadget</code> (gadgets.butler.test/v1)" in banner


def test_all_is_quiet_when_everything_is_served(portal_k8s: KubeClient) -> None:
    client = Client()
    client.force_login(User.objects.create_user("oscar", platform_role="operator"))

    banner = client.get("/operator/platform-health/").content.decode()

    assert "banner" not in banner
    assert "hidden" in banner


def test_tenant_users_get_no_platform_health(portal_k8s: KubeClient) -> None:
    client = Client()
    client.force_login(User.objects.create_user("bob"))

    assert client.get("/operator/platform-health/").status_code == 403
    assert client.get("/readyz").status_code == 200  # probes are public, and say little
