"""The local control plane itself: identity, CRDs, and surviving an API server restart."""

from __future__ import annotations

import threading
from typing import Any

import pytest
import yaml

from butler_portal.kube import binaries
from butler_portal.kube.adapter import KubeClient, with_retries
from butler_portal.kube.errors import Gone, Transient
from butler_portal.kube.localcp import LocalControlPlane, default_crd_dir, load_crds

pytestmark = pytest.mark.k8s


def config_map(name: str, namespace: str, **data: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace},
        "data": data,
    }


def test_api_server_reports_the_pinned_version(k8s: KubeClient) -> None:
    assert k8s.server_version() == binaries.KUBE_APISERVER_VERSION


def test_admin_kubeconfig_is_a_loadable_file(local_k8s: LocalControlPlane) -> None:
    kubeconfig = yaml.safe_load(local_k8s.kubeconfig_path.read_text())

    assert kubeconfig["clusters"][0]["cluster"]["server"] == local_k8s.server_url
    assert local_k8s.server_url.startswith("https://127.0.0.1:")
    assert local_k8s.kubeconfig_path.stat().st_mode & 0o077 == 0  # holds a private key


def test_loopback_traffic_ignores_a_proxy_from_the_environment(
    local_k8s: LocalControlPlane, monkeypatch: pytest.MonkeyPatch
) -> None:
    for variable in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.setenv(variable, "http://192.0.2.1:3128")  # TEST-NET: would never answer

    with local_k8s.client() as admin:
        namespaces, _ = admin.list("v1", "Namespace")

    assert "default" in {namespace["metadata"]["name"] for namespace in namespaces}


def test_every_vendored_crd_is_installed_and_served(k8s: KubeClient) -> None:
    expected = {crd["metadata"]["name"] for crd in load_crds(default_crd_dir())}
    installed, _ = k8s.list("apiextensions.k8s.io/v1", "CustomResourceDefinition")

    assert len(expected) == 44
    assert expected <= {crd["metadata"]["name"] for crd in installed}
    for crd in load_crds(default_crd_dir()):
        storage_version = next(v["name"] for v in crd["spec"]["versions"] if v["storage"])
        api_version = f"{crd['spec']['group']}/{storage_version}"
        resource = k8s.resource(api_version, crd["spec"]["names"]["kind"])
        assert resource.plural == crd["spec"]["names"]["plural"]
        assert resource.namespaced == (crd["spec"]["scope"] == "Namespaced")


def test_a_stopped_api_server_is_transient_and_restarting_keeps_the_data(
    local_k8s: LocalControlPlane, k8s: KubeClient, k8s_namespace: str
) -> None:
    k8s.apply(config_map("survivor", k8s_namespace, state="kept"))

    local_k8s.stop_apiserver()
    try:
        with pytest.raises(Transient):
            k8s.get("v1", "ConfigMap", "survivor", k8s_namespace)
    finally:
        local_k8s.start_apiserver()

    # The same client (same port, same CA) works again and etcd kept the object.
    assert k8s.get("v1", "ConfigMap", "survivor", k8s_namespace)["data"] == {"state": "kept"}


def test_after_restart_apiserver_a_watcher_resumes_or_relists(
    local_k8s: LocalControlPlane, k8s: KubeClient, k8s_namespace: str
) -> None:
    before = k8s.apply(config_map("before-restart", k8s_namespace))

    local_k8s.restart_apiserver()
    k8s.apply(config_map("after-restart", k8s_namespace))

    # The restarted server's watch cache starts at the revision it found in etcd, usually newer
    # than `before` (its own startup writes come first): resuming then answers 410 Gone, and
    # the watcher must list again. Either way no change is lost.
    try:
        events = k8s.watch(
            "v1",
            "ConfigMap",
            k8s_namespace,
            resource_version=before["metadata"]["resourceVersion"],
            timeout_seconds=10,
        )
        first = next(event for event in events if event.type != "BOOKMARK")
        events.close()
        seen = {first.object["metadata"]["name"]}
    except Gone:
        items, _ = k8s.list("v1", "ConfigMap", k8s_namespace)
        seen = {item["metadata"]["name"] for item in items}

    assert "after-restart" in seen


def test_with_retries_rides_out_an_api_server_restart(
    local_k8s: LocalControlPlane, k8s: KubeClient, k8s_namespace: str
) -> None:
    k8s.apply(config_map("patient", k8s_namespace))
    local_k8s.stop_apiserver()
    restarter = threading.Timer(1.0, local_k8s.start_apiserver)
    restarter.start()
    try:
        fetched = with_retries(
            lambda: k8s.get("v1", "ConfigMap", "patient", k8s_namespace), attempts=8, backoff=0.5
        )
    finally:
        restarter.join()

    assert fetched["metadata"]["name"] == "patient"


def test_a_second_control_plane_runs_side_by_side(local_k8s: LocalControlPlane) -> None:
    with LocalControlPlane(install_crds=False) as other, other.client() as other_client:
        namespaces, _ = other_client.list("v1", "Namespace")
        root_dir = other.root_dir
        assert other.server_url != local_k8s.server_url
        assert "default" in {namespace["metadata"]["name"] for namespace in namespaces}

    assert not root_dir.exists()  # its temporary folder is removed on stop
