"""``manage.py watch`` as a real process: it leads, follows status, and on SIGTERM stops
cleanly and releases the lease."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from pytest_django.fixtures import Settings as SettingsWrapper

from butler_portal.kube.adapter import KubeClient
from butler_portal.kube.errors import NotFound
from butler_portal.kube.lease import LEASE_API_VERSION
from butler_portal.kube.localcp import LocalControlPlane
from butler_portal.watcher import LEASE_NAME
from tenants.models import LoadBalancerRange, TenantNetwork, User
from tests.watcher.support import eventually, onboard, report_network_ready

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_watch_refuses_to_start_without_kubernetes(settings: SettingsWrapper) -> None:
    settings.KUBE_MODE = "off"
    with pytest.raises(CommandError, match="KUBE_MODE is off"):
        call_command("watch")


@pytest.mark.k8s
@pytest.mark.django_db(transaction=True)
def test_manage_py_watch_follows_status_and_releases_its_lease_on_sigterm(
    local_k8s: LocalControlPlane,
    portal_k8s: KubeClient,
    address_space: LoadBalancerRange,
    operator: User,
    k8s_namespace: str,
    tmp_path: Path,
) -> None:
    network = TenantNetwork.objects.get(tenant=onboard(operator, "cmd-watch"))
    db = connection.settings_dict
    environment = {
        **os.environ,
        # The test database, whose rows this test committed.
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "DEBUG": "true",
        "KUBE_MODE": "kubeconfig",
        "KUBECONFIG": str(local_k8s.kubeconfig_path),
        "WATCHER_LEADER_ELECTION": "true",
        "WATCHER_LEASE_NAMESPACE": k8s_namespace,
        "WATCHER_RECONCILE_MINUTES": "0",
    }
    log_path = tmp_path / "watch.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "manage.py", "watch"],
            cwd=REPO_ROOT,
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        assert eventually(lambda: _holder(portal_k8s, k8s_namespace) is not None, 30), (
            log_path.read_text()
        )
        report_network_ready(portal_k8s, network)
        assert eventually(lambda: _state(network) == TenantNetwork.State.READY, 30), (
            log_path.read_text()
        )

        process.send_signal(signal.SIGTERM)
        # Generous: on a loaded machine the informer threads take a while to notice.
        assert process.wait(45) == 0
    finally:
        if process.poll() is None:
            process.kill()
    log_text = log_path.read_text()
    assert "SIGTERM received; stopping" in log_text
    assert "released by" in log_text
    assert _holder(portal_k8s, k8s_namespace) is None


def _holder(client: KubeClient, namespace: str) -> str | None:
    try:
        lease = client.get(LEASE_API_VERSION, "Lease", LEASE_NAME, namespace)
    except NotFound:
        return None
    holder: str | None = lease["spec"].get("holderIdentity")
    return holder


def _state(network: TenantNetwork) -> str:
    network.refresh_from_db()
    return network.state
