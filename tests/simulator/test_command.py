"""Where the simulator agrees to run, and ``manage.py simulate``."""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from django.core.management import CommandError, call_command
from pytest_django.fixtures import Settings as SettingsWrapper

from butler_portal.kube import forget_clients
from butler_portal.kube.adapter import KubeClient
from butler_portal.kube.localcp import LocalControlPlane
from butler_portal.simulator import NotLocalCluster, Simulator, SimulatorConfig
from butler_portal.simulator.runtime import kubeconfig_server
from tests.simulator.conftest import condition, example, reach, unique
from tests.simulator_fixtures import wait_for


def kubeconfig(path: Path, server: str) -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [
                    {"name": "other", "cluster": {"server": "https://127.0.0.1:1"}},
                    {"name": "prod", "cluster": {"server": server}},
                ],
                "users": [{"name": "me", "user": {"token": "not-a-real-token"}}],
                "contexts": [
                    {"name": "other", "context": {"cluster": "other", "user": "me"}},
                    {"name": "prod", "context": {"cluster": "prod", "user": "me"}},
                ],
                "current-context": "prod",
            }
        )
    )
    return path


@pytest.fixture
def kube_settings(settings: SettingsWrapper) -> Iterator[SettingsWrapper]:
    """Settings the test may point at a kubeconfig; cached clients are dropped around it."""
    forget_clients()
    yield settings
    forget_clients()


def test_the_server_of_the_current_context_is_the_one_checked(tmp_path: Path) -> None:
    path = kubeconfig(tmp_path / "kubeconfig", "https://203.0.113.5:6443")

    assert kubeconfig_server(path) == "https://203.0.113.5:6443"


@pytest.mark.parametrize(
    "server", ["https://203.0.113.5:6443", "https://kube.example.com", "https://10.0.0.1"]
)
def test_it_refuses_an_api_server_off_loopback(tmp_path: Path, server: str) -> None:
    path = kubeconfig(tmp_path / "kubeconfig", server)

    with pytest.raises(NotLocalCluster, match="not a local control plane"):
        Simulator.from_kubeconfig(path)


def test_force_lets_it_run_anywhere(tmp_path: Path) -> None:
    path = kubeconfig(tmp_path / "kubeconfig", "https://203.0.113.5:6443")

    simulator = Simulator.from_kubeconfig(path, force=True)  # built, not started

    assert simulator.controllers


@pytest.mark.parametrize(
    "server", ["https://127.0.0.1:6443", "https://localhost:6443", "https://[::1]:6443"]
)
def test_loopback_servers_are_accepted(tmp_path: Path, server: str) -> None:
    Simulator.from_kubeconfig(kubeconfig(tmp_path / "kubeconfig", server))


def test_the_command_refuses_a_remote_cluster(
    kube_settings: SettingsWrapper, tmp_path: Path
) -> None:
    kube_settings.KUBE_MODE = "kubeconfig"
    kube_settings.KUBECONFIG = str(kubeconfig(tmp_path / "kubeconfig", "https://203.0.113.5:6443"))

    with pytest.raises(CommandError, match="not a local control plane"):
        call_command("simulate", "--duration", "0")


@pytest.mark.k8s
def test_the_command_simulates_the_configured_cluster(
    kube_settings: SettingsWrapper,
    local_k8s: LocalControlPlane,
    k8s: KubeClient,
    k8s_namespace: str,
) -> None:
    kube_settings.KUBE_MODE = "kubeconfig"
    kube_settings.KUBECONFIG = str(local_k8s.kubeconfig_path)
    output = io.StringIO()
    # Default delays (a 1 s network step) at speed 4.
    command = threading.Thread(
        target=call_command,
        args=("simulate", "--speed", "4", "--duration", "4"),
        kwargs={"stdout": output},
    )
    command.start()
    wait_for(lambda: "Simulating" in output.getvalue())
    subnet = example("kubeovn-subnet.yaml", k8s_namespace, kind="Subnet")[0]
    subnet["metadata"]["name"] = unique("subnet")
    k8s.apply(subnet)

    reach(k8s, subnet, lambda s: condition(s, "Ready").get("status") == "True")
    command.join()
    assert output.getvalue().endswith("Simulator stopped\n")


def test_the_config_takes_the_speed_and_metallb_namespace_from_settings(
    settings: SettingsWrapper,
) -> None:
    settings.SIMULATOR_SPEED = 3
    settings.METALLB_NAMESPACE = "lb-system"

    config = SimulatorConfig.from_settings()

    assert (config.speed, config.metallb_namespace) == (3.0, "lb-system")
    assert config.step_seconds("network") == pytest.approx(1 / 3)
