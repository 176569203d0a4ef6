"""Kamaji TenantControlPlane: states, endpoint, Secrets, deletion (STATUS.md §1)."""

from __future__ import annotations

import base64
from typing import Any

import pytest
import yaml
from cryptography import x509

from butler_portal.kube.adapter import KubeClient
from butler_portal.simulator import DELAY_ANNOTATION, FAIL_ANNOTATION, Simulator
from tests.simulator.conftest import Manifest, example, fetch, get, history, reach, status
from tests.simulator_fixtures import wait_for

pytestmark = pytest.mark.k8s

KAMAJI = "kamaji.clastix.io/v1alpha1"


def tenant_control_plane(namespace: str, **changes: Any) -> Manifest:
    tcp = example("kamaji-tenantcontrolplane.yaml", namespace)[0]
    tcp["spec"] |= changes
    return tcp


def version_field(tcp: Manifest | None, field: str) -> str | None:
    value = status(tcp, "kubernetesResources", "version", field)
    return str(value) if value is not None else None


def state_of(tcp: Manifest | None) -> str | None:
    return version_field(tcp, "status")


def running_version(tcp: Manifest | None) -> str | None:
    return version_field(tcp, "version")


def secret_text(k8s: KubeClient, name: str, namespace: str, key: str) -> bytes:
    secret = get(k8s, "v1", "Secret", name, namespace)
    assert secret is not None, f"Secret {name} is missing"
    return base64.b64decode(secret["data"][key])


def test_it_provisions_behind_its_load_balancer_address(
    k8s: KubeClient, k8s_namespace: str, address_pool: Manifest, simulator: Simulator
) -> None:
    tcp = k8s.apply(tenant_control_plane(k8s_namespace))

    seen = history(k8s, tcp, until=lambda t: state_of(t) == "Ready")

    ready = seen[-1]
    address = status(ready, "kubernetesResources", "service", "loadBalancer", "ingress")[0]["ip"]
    assert address in address_pool["spec"]["addresses"][0]
    assert status(ready, "controlPlaneEndpoint") == f"{address}:6443"
    assert running_version(ready) == "v1.35.7"
    assert "Provisioning" in [state_of(t) for t in seen]
    deployment = status(ready, "kubernetesResources", "deployment")
    assert (deployment["replicas"], deployment["readyReplicas"]) == (2, 2)
    assert status(ready, "kubeconfig", "admin", "secretName") == "tenant-a-admin-kubeconfig"


def test_its_kubeconfigs_point_at_the_endpoint_and_trust_its_ca(
    k8s: KubeClient, k8s_namespace: str, address_pool: Manifest, simulator: Simulator
) -> None:
    tcp = k8s.apply(tenant_control_plane(k8s_namespace))
    ready = reach(k8s, tcp, lambda t: state_of(t) == "Ready")

    ca = x509.load_pem_x509_certificate(secret_text(k8s, "tenant-a-ca", k8s_namespace, "ca.crt"))
    servers = {}
    for key in ("admin.conf", "admin.svc", "super-admin.conf"):
        config = yaml.safe_load(secret_text(k8s, "tenant-a-admin-kubeconfig", k8s_namespace, key))
        servers[key] = config["clusters"][0]["cluster"]["server"]
        certificate = x509.load_pem_x509_certificate(
            base64.b64decode(config["users"][0]["user"]["client-certificate-data"])
        )
        certificate.verify_directly_issued_by(ca)  # raises if the CA did not sign it
    assert servers == {
        "admin.conf": f"https://{status(ready, 'controlPlaneEndpoint')}",
        "super-admin.conf": f"https://{status(ready, 'controlPlaneEndpoint')}",
        "admin.svc": f"https://tenant-a.{k8s_namespace}.svc:6443",
    }
    assert secret_text(k8s, "tenant-a-ca", k8s_namespace, "tls.crt") == secret_text(
        k8s, "tenant-a-ca", k8s_namespace, "ca.crt"
    )


def test_without_a_load_balancer_address_it_stays_provisioning(
    k8s: KubeClient, k8s_namespace: str, simulator: Simulator
) -> None:
    tcp = k8s.apply(tenant_control_plane(k8s_namespace))

    # MetalLB has no pool for this namespace: the Service gets none, the endpoint waits.
    wait_for(
        lambda: [
            e
            for e in k8s.list("v1", "Event", k8s_namespace).items
            if e["reason"] == "AllocationFailed"
        ]
    )
    waiting = reach(k8s, tcp, lambda t: state_of(t))
    assert state_of(waiting) == "Provisioning"
    assert status(waiting, "controlPlaneEndpoint") is None


def test_a_version_change_goes_through_upgrading(
    k8s: KubeClient, k8s_namespace: str, simulator: Simulator
) -> None:
    manifest = tenant_control_plane(
        k8s_namespace, controlPlane={"service": {"serviceType": "ClusterIP"}}
    )
    tcp = k8s.apply(manifest)
    reach(k8s, tcp, lambda t: state_of(t) == "Ready")

    manifest["spec"]["kubernetes"]["version"] = "v1.36.0"
    k8s.apply(manifest)
    seen = history(k8s, tcp, until=lambda t: running_version(t) == "v1.36.0")

    upgrading = [t for t in seen if state_of(t) == "Upgrading"]
    assert upgrading, [state_of(t) for t in seen]
    assert running_version(upgrading[0]) == "v1.35.7"  # the old version runs meanwhile
    assert state_of(seen[-1]) == "Ready"


def test_zero_replicas_put_it_to_sleep_and_back(
    k8s: KubeClient, k8s_namespace: str, simulator: Simulator
) -> None:
    manifest = tenant_control_plane(
        k8s_namespace, controlPlane={"service": {"serviceType": "ClusterIP"}}
    )
    tcp = k8s.apply(manifest)
    reach(k8s, tcp, lambda t: state_of(t) == "Ready")

    manifest["spec"]["controlPlane"]["deployment"] = {"replicas": 0}
    k8s.apply(manifest)
    asleep = reach(k8s, tcp, lambda t: state_of(t) == "Sleeping")
    assert status(asleep, "kubernetesResources", "deployment", "replicas") == 0

    manifest["spec"]["controlPlane"]["deployment"] = {"replicas": 2}
    k8s.apply(manifest)
    seen = history(k8s, tcp, until=lambda t: state_of(t) == "Ready")
    assert "NotReady" in [state_of(t) for t in seen]  # pods starting, none ready yet


def test_an_injected_failure_makes_it_not_ready(
    k8s: KubeClient, k8s_namespace: str, simulator: Simulator
) -> None:
    manifest = tenant_control_plane(
        k8s_namespace, controlPlane={"service": {"serviceType": "ClusterIP"}}
    )
    manifest["metadata"]["annotations"] = {FAIL_ANNOTATION: "etcd: connection refused"}
    tcp = k8s.apply(manifest)

    failed = reach(k8s, tcp, lambda t: state_of(t) == "NotReady")

    conditions = status(failed, "kubernetesResources", "deployment", "conditions")
    progressing = next(c for c in conditions if c["type"] == "Progressing")
    assert progressing["reason"] == "ProgressDeadlineExceeded"
    assert "etcd: connection refused" in progressing["message"]
    assert running_version(failed) is None


def test_deleting_it_takes_its_service_and_secrets_along(
    k8s: KubeClient, k8s_namespace: str, simulator: Simulator
) -> None:
    manifest = tenant_control_plane(
        k8s_namespace, controlPlane={"service": {"serviceType": "ClusterIP"}}
    )
    manifest["metadata"]["annotations"] = {DELAY_ANNOTATION: "0.3"}
    tcp = k8s.apply(manifest)
    reach(k8s, tcp, lambda t: state_of(t) == "Ready")

    k8s.delete_manifest(tcp)
    # Kamaji's finalizer holds it for a step: deleting is visible.
    reach(k8s, tcp, lambda t: t["metadata"].get("deletionTimestamp"))

    wait_for(lambda: fetch(k8s, tcp) is None)
    wait_for(lambda: not k8s.list("v1", "Secret", k8s_namespace).items)
    assert get(k8s, "v1", "Service", "tenant-a", k8s_namespace) is None
