"""Fixtures for cluster tests: the seeded catalog, cluster rows, STATUS.md-shaped objects."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import pytest
from pytest_django.fixtures import Settings as SettingsWrapper

from butler_portal import realtime
from clusters.models import Cluster, ClusterAddon, InstanceType, KubernetesVersion
from clusters.seed import seed_catalog
from clusters.services import ClusterSpec, cluster_request
from clusters.status import cluster_refresh
from tenants.audit import Actor
from tenants.models import Tenant, User

cluster_numbers = itertools.count(1)


@pytest.fixture(autouse=True)
def _kubernetes_off_unless_asked(settings: SettingsWrapper) -> None:
    """No API server unless a test asks for one (``portal_k8s`` switches it on after this)."""
    settings.KUBE_MODE = "off"


@pytest.fixture
def catalog(db: None) -> None:
    ensure_catalog()


def ensure_catalog() -> None:
    """The seeded catalog (for set-up code that runs before the ``catalog`` fixture)."""
    if not KubernetesVersion.objects.exists():
        seed_catalog()


def version(name: str) -> KubernetesVersion:
    return KubernetesVersion.objects.get(version=name)


def instance_type(name: str) -> InstanceType:
    return InstanceType.objects.get(name=name)


def spec(name: str = "web", **fields: Any) -> ClusterSpec:
    return ClusterSpec(
        name=name,
        version=fields.pop("version", None) or version("v1.35.4"),
        instance_type=fields.pop("instance_type", None) or instance_type("m1.medium"),
        **fields,
    )


def request(tenant: Tenant, user: User, name: str = "web", **fields: Any) -> Cluster:
    """Ask for a cluster through the service, as the API and the UI do."""
    return cluster_request(actor=Actor(user), tenant=tenant, spec=spec(name, **fields))


def make_cluster_row(tenant: Tenant, **fields: Any) -> Cluster:
    """A cluster row as it stands in the database, without going through provisioning.

    For tests about reading and permissions; tests about requesting use ``cluster_request``.
    """
    default_version = fields.pop("version", None) or version("v1.35.4")
    cluster = Cluster.objects.create(
        tenant=tenant,
        name=fields.pop("name", f"cluster-{next(cluster_numbers)}"),
        version=default_version,
        worker_version=fields.pop("worker_version", default_version),
        instance_type=fields.pop("instance_type", None) or instance_type("m1.medium"),
        **fields,
    )
    cluster.addons.set(ClusterAddon.objects.filter(required=True))
    cluster_refresh(cluster)
    return cluster


# --- Objects shaped as STATUS.md describes them ---------------------------------------------


def condition(
    kind: str, status: str = "True", reason: str = "", message: str = ""
) -> dict[str, str]:
    return {
        "type": kind,
        "status": status,
        "reason": reason or ("Succeeded" if status == "True" else "Failed"),
        "message": message,
        "lastTransitionTime": "2026-11-26T10:00:00Z",
    }


def meta(name: str, namespace: str = "tenant-acme", **extra: Any) -> dict[str, Any]:
    return {"name": name, "namespace": namespace, "generation": 1, **extra}


def capi_cluster(
    name: str = "demo",
    *,
    phase: str = "Provisioned",
    available: str | None = "True",
    available_message: str = "",
    initialized: bool = True,
    namespace: str = "tenant-acme",
    **metadata: Any,
) -> dict[str, Any]:
    conditions = []
    if available is not None:
        conditions.append(
            condition(
                "Available",
                available,
                "Available" if available == "True" else "NotAvailable",
                available_message,
            )
        )
    return {
        "apiVersion": "cluster.x-k8s.io/v1beta2",
        "kind": "Cluster",
        "metadata": meta(name, namespace, **metadata),
        "spec": {"controlPlaneEndpoint": {"host": "192.0.2.10", "port": 6443}},
        "status": {
            "phase": phase,
            "observedGeneration": 1,
            "initialization": {
                "infrastructureProvisioned": True,
                "controlPlaneInitialized": initialized,
            },
            "conditions": conditions,
        },
    }


KCP_STEPS = (
    "TenantControlPlaneCreated",
    "TenantControlPlaneAddressReady",
    "ControlPlaneEndpointPatched",
    "InfrastructureClusterPatched",
    "KamajiControlPlaneIsInitialized",
    "KubeadmResourcesCreated",
    "KamajiControlPlaneIsReady",
)


def kamaji_control_plane(
    name: str = "demo",
    *,
    version: str = "v1.35.4",
    running: str | None = "v1.35.4",
    done_until: str | None = None,
    waiting: tuple[str, str, str] | None = None,
    replicas: int = 2,
    namespace: str = "tenant-acme",
) -> dict[str, Any]:
    """A KamajiControlPlane whose reconcile got as far as ``done_until`` (all, if None).

    ``waiting`` = (condition, reason, message) for the step it is stuck at.
    """
    conditions = []
    for kind in KCP_STEPS:
        if waiting and kind == waiting[0]:
            conditions.append(condition(kind, "False", waiting[1], waiting[2]))
            break
        conditions.append(condition(kind))
        if kind == done_until:
            break
    passed = {c["type"] for c in conditions if c["status"] == "True"}
    initialized = "KamajiControlPlaneIsInitialized" in passed
    ready = "KamajiControlPlaneIsReady" in passed
    endpoint = (
        {"host": "192.0.2.10", "port": 6443} if "ControlPlaneEndpointPatched" in passed else {}
    )
    return {
        "apiVersion": "controlplane.cluster.x-k8s.io/v1alpha2",
        "kind": "KamajiControlPlane",
        "metadata": meta(name, namespace),
        "spec": {
            "version": version,
            "replicas": replicas,
            **({"controlPlaneEndpoint": endpoint} if endpoint else {}),
        },
        "status": {
            "ready": ready,
            "version": (running or "") if initialized else "",
            "externalManagedControlPlane": True,
            "initialization": {"controlPlaneInitialized": initialized},
            "replicas": replicas if initialized else 0,
            "readyReplicas": replicas if ready else 0,
            "conditions": conditions,
        },
    }


def tenant_control_plane(
    name: str = "demo",
    *,
    state: str = "Ready",
    version: str = "v1.35.4",
    endpoint: str = "192.0.2.10:6443",
    replicas: int = 2,
    ready_replicas: int = 2,
    namespace: str = "tenant-acme",
) -> dict[str, Any]:
    return {
        "apiVersion": "kamaji.clastix.io/v1alpha1",
        "kind": "TenantControlPlane",
        "metadata": meta(name, namespace, labels={"butler.io/cluster": name}),
        "spec": {},
        "status": {
            "controlPlaneEndpoint": endpoint,
            "kubernetesResources": {
                "version": {"status": state, "version": version},
                "deployment": {"replicas": replicas, "readyReplicas": ready_replicas},
            },
        },
    }


def machine_deployment(
    cluster: str = "demo",
    *,
    replicas: int = 2,
    ready: int = 2,
    up_to_date: int | None = None,
    existing: int | None = None,
    version: str = "v1.35.4",
    rolling_out: bool = False,
    scaling_message: str = "",
    namespace: str = "tenant-acme",
) -> dict[str, Any]:
    existing = replicas if existing is None else existing
    up_to_date = existing if up_to_date is None else up_to_date
    conditions = [
        condition("Available", "True" if ready >= replicas else "False"),
        condition(
            "RollingOut",
            "True" if rolling_out else "False",
            "RollingOut" if rolling_out else "NotRollingOut",
        ),
    ]
    if scaling_message:
        conditions.append(condition("ScalingUp", "True", "ScalingUp", scaling_message))
    return {
        "apiVersion": "cluster.x-k8s.io/v1beta2",
        "kind": "MachineDeployment",
        "metadata": meta(
            f"{cluster}-md-0", namespace, labels={"cluster.x-k8s.io/cluster-name": cluster}
        ),
        "spec": {
            "clusterName": cluster,
            "replicas": replicas,
            "template": {
                "spec": {"version": version, "infrastructureRef": {"name": f"{cluster}-md-0-abc"}}
            },
        },
        "status": {
            "observedGeneration": 1,
            "phase": "Running"
            if existing == replicas
            else ("ScalingUp" if existing < replicas else "ScalingDown"),
            "replicas": existing,
            "readyReplicas": ready,
            "availableReplicas": ready,
            "upToDateReplicas": up_to_date,
            "conditions": conditions,
        },
    }


def machine(
    name: str,
    *,
    cluster: str = "demo",
    phase: str = "Running",
    node: str | None = None,
    ready: bool = True,
    created: str = "2026-11-26T10:00:00Z",
    waiting: tuple[str, str] | None = None,
    failure: str = "",
    version: str = "v1.35.4",
    namespace: str = "tenant-acme",
    **metadata: Any,
) -> dict[str, Any]:
    conditions = [condition("Ready", "True" if ready else "False")]
    if waiting:
        conditions.append(condition(waiting[0], "False", "NotReady", waiting[1]))
    status: dict[str, Any] = {"phase": phase, "observedGeneration": 1, "conditions": conditions}
    if node or phase == "Running":
        status["nodeRef"] = {"name": node or name}
    if failure:
        status["deprecated"] = {"v1beta1": {"failureReason": "VMFailed", "failureMessage": failure}}
    return {
        "apiVersion": "cluster.x-k8s.io/v1beta2",
        "kind": "Machine",
        "metadata": meta(
            name,
            namespace,
            creationTimestamp=created,
            labels={"cluster.x-k8s.io/cluster-name": cluster},
            **metadata,
        ),
        "spec": {"clusterName": cluster, "version": version},
        "status": status,
    }


def helm_release(
    addon: str,
    *,
    cluster: str = "demo",
    ready: str | None = "True",
    reason: str = "",
    message: str = "",
    stalled: bool = False,
    generation: int = 1,
    observed: int = 1,
    namespace: str = "tenant-acme",
) -> dict[str, Any]:
    conditions = []
    if ready is not None:
        conditions.append(
            condition(
                "Ready",
                ready,
                reason or ("InstallSucceeded" if ready == "True" else "Progressing"),
                message,
            )
        )
    if stalled:
        conditions.append(condition("Stalled", "True", "RetriesExceeded", message))
    return {
        "apiVersion": "helm.toolkit.fluxcd.io/v2",
        "kind": "HelmRelease",
        "metadata": {
            **meta(
                f"{cluster}-{addon}",
                namespace,
                labels={"butler.io/cluster": cluster, "butler.io/addon": addon},
            ),
            "generation": generation,
        },
        "spec": {},
        "status": {"observedGeneration": observed, "conditions": conditions},
    }


def ready_cluster_objects(
    name: str = "demo",
    *,
    workers: int = 2,
    version: str = "v1.35.4",
    addons: tuple[str, ...] = ("cilium", "portal-access"),
    namespace: str = "tenant-acme",
) -> list[dict[str, Any]]:
    """Everything a fully Ready cluster reports."""
    return [
        capi_cluster(name, namespace=namespace),
        kamaji_control_plane(name, version=version, running=version, namespace=namespace),
        tenant_control_plane(name, version=version, namespace=namespace),
        machine_deployment(
            name, replicas=workers, ready=workers, version=version, namespace=namespace
        ),
        *[
            machine(
                f"{name}-md-0-x{index}",
                cluster=name,
                created=f"2026-11-26T10:0{index}:00Z",
                version=version,
                namespace=namespace,
            )
            for index in range(workers)
        ],
        *[helm_release(addon, cluster=name, namespace=namespace) for addon in addons],
    ]


def asleep_cluster_objects(
    name: str = "demo", *, version: str = "v1.35.4", namespace: str = "tenant-acme"
) -> list[dict[str, Any]]:
    """What a hibernated cluster reports: Kamaji Sleeping, no workers."""
    kcp = kamaji_control_plane(name, version=version, running=version, namespace=namespace)
    kcp["status"] |= {"ready": False, "replicas": 0, "readyReplicas": 0}
    return [
        capi_cluster(name, available="False", namespace=namespace),
        kcp,
        tenant_control_plane(
            name,
            state="Sleeping",
            version=version,
            replicas=0,
            ready_replicas=0,
            namespace=namespace,
        ),
        machine_deployment(name, replicas=0, ready=0, version=version, namespace=namespace),
    ]


@pytest.fixture
def published_events(
    monkeypatch: pytest.MonkeyPatch,
) -> list[tuple[int, str, Any, dict[str, Any]]]:
    """A spy on the channel layer's door: the tenant events sent, as (tenant, kind, id, data).

    Events still go out for real; the websocket side is tested in tests/realtime.
    """
    sent: list[tuple[int, str, Any, dict[str, Any]]] = []
    send = realtime.send_tenant_event

    def record(tenant_id: int, kind: str, object_id: Any = None, **data: Any) -> None:
        sent.append((tenant_id, kind, object_id, data))
        send(tenant_id, kind, object_id, **data)

    monkeypatch.setattr(realtime, "send_tenant_event", record)
    return sent


def observe(
    cluster: Cluster, objects: list[dict[str, Any]], *, gone: Sequence[dict[str, Any]] = ()
) -> Cluster:
    """Feed objects to the watcher's handlers, as if Kubernetes reported them (``gone``:
    reported deleted)."""
    from clusters.status import cluster_observe

    for obj in gone:
        cluster_observe(kind=obj["kind"], event_type="DELETED", obj=obj)
    for obj in objects:
        cluster_observe(kind=obj["kind"], event_type="MODIFIED", obj=obj)
    cluster.refresh_from_db()
    return cluster


def machines_of(cluster: Cluster) -> list[dict[str, Any]]:
    """The Machines the watcher last saw for ``cluster`` (to report them gone)."""
    return list(cluster.observations.filter(kind="Machine").values_list("body", flat=True))


def make_ready(cluster: Cluster) -> Cluster:
    """Bring a cluster row to Ready the way the watcher would: applied, then reported."""
    from django.utils import timezone

    Cluster.objects.filter(pk=cluster.pk).update(applied_at=timezone.now())
    cluster.refresh_from_db()
    objects = ready_cluster_objects(
        cluster.name,
        workers=cluster.worker_count,
        version=cluster.version.version,
        addons=tuple(cluster.addons.values_list("name", flat=True)),
        namespace=f"tenant-{cluster.tenant.slug}",
    )
    return observe(cluster, objects)
