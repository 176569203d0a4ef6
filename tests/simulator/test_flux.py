"""Flux HelmRepository and HelmRelease (STATUS.md §9)."""

from __future__ import annotations

import base64

import pytest

from butler_portal.kube.adapter import KubeClient
from butler_portal.simulator import FAIL_ANNOTATION, Simulator
from tests.simulator.conftest import Manifest, condition, example, is_true, reach, status

pytestmark = pytest.mark.k8s


def flux_objects(namespace: str, **annotations: str) -> tuple[Manifest, Manifest]:
    repository, release = example("flux-helmrelease.yaml", namespace)
    release["metadata"]["annotations"] = annotations
    return repository, release


def kubeconfig_secret(name: str, namespace: str) -> Manifest:
    config = base64.b64encode(b"apiVersion: v1\nkind: Config\n").decode()
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "data": {"admin.svc": config},
    }


def test_a_release_waits_for_its_kubeconfig_secret_then_installs(
    k8s: KubeClient, k8s_namespace: str, simulator: Simulator
) -> None:
    repository, release = flux_objects(k8s_namespace)
    k8s.apply(repository)
    k8s.apply(release)

    waiting = reach(
        k8s, release, lambda r: condition(r, "Ready").get("reason") == "RESTClientError"
    )
    assert condition(waiting, "Ready")["message"] == (
        f"could not get KubeConfig secret '{k8s_namespace}/tenant-a-admin-kubeconfig': "
        'secrets "tenant-a-admin-kubeconfig" not found'
    )
    assert condition(waiting, "Ready")["status"] == "False"
    ready_repository = reach(k8s, repository, lambda r: is_true(r, "Ready"))
    assert status(ready_repository, "artifact", "revision").startswith("sha256:")

    # Kamaji writes the Secret once the tenant control plane is up.
    k8s.apply(kubeconfig_secret("tenant-a-admin-kubeconfig", k8s_namespace))
    installed = reach(k8s, release, lambda r: is_true(r, "Ready"))

    ready = condition(installed, "Ready")
    assert ready["reason"] == "InstallSucceeded"
    assert ready["message"] == (
        "Helm install succeeded for release kube-system/cilium.v1 with chart cilium@1.17.0"
    )
    assert status(installed, "observedGeneration") == installed["metadata"]["generation"]
    assert condition(installed, "Reconciling") == {}
    (revision,) = status(installed, "history")
    assert (revision["status"], revision["version"], revision["chartVersion"]) == (
        "deployed",
        1,
        "1.17.0",
    )


def test_a_failing_install_reports_install_failed_and_stalls_after_its_retries(
    k8s: KubeClient, k8s_namespace: str, simulator: Simulator
) -> None:
    repository, release = flux_objects(k8s_namespace, **{FAIL_ANNOTATION: "timed out waiting"})
    k8s.apply(kubeconfig_secret("tenant-a-admin-kubeconfig", k8s_namespace))
    k8s.apply(repository)
    k8s.apply(release)

    stalled = reach(k8s, release, lambda r: is_true(r, "Stalled"))

    ready = condition(stalled, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "InstallFailed")
    assert ready["message"].endswith(": timed out waiting")
    # The example allows 3 retries: 4 attempts in all.
    assert status(stalled, "installFailures") == 4
    assert condition(stalled, "Stalled")["reason"] == "RetriesExceeded"
