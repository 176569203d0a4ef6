"""The watcher's side: objects in, cluster rows, timeline and tenant events out."""

from __future__ import annotations

from typing import Any

import pytest
from django.utils import timezone

from butler_portal.kube.adapter import KubeClient
from clusters.models import Cluster, ClusterObservation, ClusterStep
from clusters.services import cluster_delete
from clusters.status import cluster_observe, status_handlers
from tenants.audit import Actor
from tenants.models import Tenant, User
from tenants.selectors import quota_used
from tests.clusters.conftest import (
    capi_cluster,
    kamaji_control_plane,
    machine,
    make_cluster_row,
    make_ready,
    observe,
    ready_cluster_objects,
    request,
    tenant_control_plane,
)

pytestmark = pytest.mark.usefixtures("catalog")


def applied(cluster: Cluster) -> Cluster:
    Cluster.objects.filter(pk=cluster.pk).update(applied_at=timezone.now())
    cluster.refresh_from_db()
    return cluster


def step(cluster: Cluster, key: str) -> ClusterStep:
    return cluster.steps.get(key=key)


def test_steps_get_timestamps_as_they_start_and_finish(acme: Tenant) -> None:
    cluster = applied(make_cluster_row(acme, name="demo"))
    endpoint = step(cluster, "endpoint")
    assert (endpoint.state, endpoint.started_at, endpoint.finished_at) == ("pending", None, None)

    waiting = kamaji_control_plane(
        waiting=("TenantControlPlaneAddressReady", "Failed", "no IP yet")
    )
    observe(cluster, [waiting])
    endpoint = step(cluster, "endpoint")
    assert endpoint.state == "active"
    assert endpoint.started_at is not None
    assert endpoint.finished_at is None
    started = endpoint.started_at

    observe(cluster, [kamaji_control_plane(done_until="ControlPlaneEndpointPatched")])
    endpoint = step(cluster, "endpoint")
    assert (endpoint.state, endpoint.message) == ("done", "https://192.0.2.10:6443")
    assert endpoint.started_at == started
    assert endpoint.finished_at is not None
    assert endpoint.finished_at >= started
    cluster.refresh_from_db()
    assert cluster.endpoint == "192.0.2.10:6443"
    assert cluster.phase == Cluster.Phase.PROVISIONING
    assert step(cluster, "worker-0").started_at is None


def test_a_ready_cluster_records_when_it_became_ready(acme: Tenant) -> None:
    cluster = make_ready(make_cluster_row(acme, name="demo"))

    assert cluster.phase == Cluster.Phase.READY
    assert cluster.ready_at is not None
    assert (cluster.control_plane_version, cluster.ready_workers) == ("v1.35.4", 2)
    assert set(cluster.steps.values_list("state", flat=True)) == {"done"}
    assert ClusterObservation.objects.filter(cluster=cluster).count() == len(
        ready_cluster_objects()
    )

    first_ready = cluster.ready_at
    observe(cluster, [tenant_control_plane(state="NotReady", ready_replicas=0), _not_ready_kcp()])
    assert (cluster.phase, cluster.ready_at) == (Cluster.Phase.DEGRADED, first_ready)


def _not_ready_kcp() -> dict[str, Any]:
    kcp = kamaji_control_plane()
    kcp["status"]["ready"] = False
    return kcp


def test_an_event_goes_out_only_when_something_changed(
    acme: Tenant, published_events: list[Any], django_capture_on_commit_callbacks: Any
) -> None:
    cluster = applied(make_cluster_row(acme, name="demo"))
    with django_capture_on_commit_callbacks(execute=True):
        observe(cluster, [capi_cluster(available="False")])
        observe(cluster, [capi_cluster(available="False")])
        observe(cluster, [kamaji_control_plane(done_until="TenantControlPlaneCreated")])

    assert published_events == [
        (acme.pk, "cluster.changed", cluster.pk, {"phase": "provisioning"}),
        (acme.pk, "cluster.changed", cluster.pk, {"phase": "provisioning"}),
    ]


def test_objects_map_to_their_tenants_cluster_by_namespace(acme: Tenant, globex: Tenant) -> None:
    ours = applied(make_cluster_row(acme, name="demo"))
    theirs = applied(make_cluster_row(globex, name="demo"))

    assert (
        cluster_observe(
            kind="Machine",
            event_type="ADDED",
            obj=machine("demo-md-0-a", namespace="tenant-globex"),
        )
        == theirs.pk
    )
    assert (
        cluster_observe(
            kind="Cluster", event_type="ADDED", obj=capi_cluster(namespace="tenant-acme")
        )
        == ours.pk
    )
    # Nobody's: an unknown namespace, or a cluster the portal does not know.
    assert (
        cluster_observe(
            kind="Cluster", event_type="ADDED", obj=capi_cluster(namespace="kube-system")
        )
        is None
    )
    assert cluster_observe(kind="Cluster", event_type="ADDED", obj=capi_cluster("other")) is None

    assert list(ours.observations.values_list("kind", flat=True)) == ["Cluster"]
    assert list(theirs.observations.values_list("kind", flat=True)) == ["Machine"]


def test_a_deleted_machine_leaves_the_timeline(acme: Tenant) -> None:
    cluster = make_ready(make_cluster_row(acme, name="demo", worker_count=2))
    gone = machine("demo-md-0-x1", created="2026-11-26T10:01:00Z")

    cluster_observe(kind="Machine", event_type="DELETED", obj=gone)

    cluster.refresh_from_db()
    assert not cluster.observations.filter(kind="Machine", name="demo-md-0-x1").exists()
    assert step(cluster, "worker-1").state == "active"


def test_the_capi_cluster_disappearing_finishes_a_deletion(
    acme: Tenant, bob: User, settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    cluster = make_ready(request(acme, bob, "demo"))
    settings.KUBE_MODE = "kubeconfig"
    assert cluster_delete(actor=Actor(bob), cluster=cluster, confirm_name="demo") is False
    assert quota_used(acme)["clusters"] == 1

    # With Kubernetes gone from the settings again, the teardown has nothing left to wait for.
    settings.KUBE_MODE = "off"
    with django_capture_on_commit_callbacks(execute=True):
        cluster_observe(kind="Cluster", event_type="DELETED", obj=capi_cluster("demo"))

    assert not Cluster.objects.filter(pk=cluster.pk).exists()
    assert quota_used(acme)["clusters"] == 0


@pytest.mark.k8s
def test_every_watched_kind_is_served_by_the_api_server(k8s: KubeClient) -> None:
    watched = status_handlers()

    served = {
        (w.api_version, w.kind): k8s.resource(w.api_version, w.kind).namespaced for w in watched
    }
    assert served == {
        ("cluster.x-k8s.io/v1beta2", "Cluster"): True,
        ("controlplane.cluster.x-k8s.io/v1alpha2", "KamajiControlPlane"): True,
        ("kamaji.clastix.io/v1alpha1", "TenantControlPlane"): True,
        ("cluster.x-k8s.io/v1beta2", "MachineDeployment"): True,
        ("cluster.x-k8s.io/v1beta2", "Machine"): True,
        ("helm.toolkit.fluxcd.io/v2", "HelmRelease"): True,
    }
    for kind in watched:
        assert kind.label_selector, f"{kind} would follow every object of its kind"
