"""From what Kubernetes reports to what a tenant sees: phase, reason and timeline.

Pure functions, no database: ``read_*`` turn one object's status (shaped as
``../shared/crds/STATUS.md`` describes) into facts, and ``derive`` combines the facts of
every object behind a cluster with what the tenant asked for into a ``Picture``: the
portal phase, the first failing (or awaited) thing in plain words, and the timeline.
``clusters.status`` stores the objects and applies the picture to the database.

Controllers report progress on several objects at once (STATUS.md §10.11): the Kamaji
control-plane provider's conditions walk through creation, endpoint and kubeconfig; the
TenantControlPlane says whether the API server runs; the MachineDeployment and its Machines
count workers; each add-on's HelmRelease says whether it is installed; and the CAPI
Cluster's ``Available`` condition sums it all up.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from butler_portal.lifecycle import (
    STEP_ACTIVE,
    STEP_DONE,
    STEP_FAILED,
    STEP_PENDING,
    Condition,
    Manifest,
    Step,
    conditions_of,
    is_deleting,
    metadata_of,
    plain,
    status_of,
)
from clusters.manifests import ADDON_KEY

# Phase values (the same strings as Cluster.Phase; this module stays free of the models so
# it runs without a database).
PENDING, PROVISIONING, READY = "pending", "provisioning", "ready"
SCALING, UPGRADING, HIBERNATED = "scaling", "upgrading", "hibernated"
DEGRADED, DELETING, FAILED = "degraded", "deleting", "failed"

# HelmRelease Ready=False reasons that mean "it went wrong", not "still working".
HELM_FAILURE_REASONS = frozenset(
    {
        "InstallFailed",
        "UpgradeFailed",
        "TestFailed",
        "RollbackFailed",
        "UninstallFailed",
        "ArtifactFailed",
        "InitFailed",
        "GetLastReleaseFailed",
        "RetriesExceeded",
    }
)


def normalise_version(version: str | None) -> str:
    """Kamaji and CAPI accept versions with or without the leading "v"; compare with it."""
    if not version:
        return ""
    return version if version.startswith("v") else f"v{version}"


# --- Reading one object ---------------------------------------------------------------------


def _is_current(obj: Manifest) -> bool:
    """Whether status describes the latest spec (observedGeneration caught up)."""
    generation = metadata_of(obj).get("generation")
    observed = status_of(obj).get("observedGeneration")
    return generation is None or observed is None or observed >= generation


def _endpoint(host: Any, port: Any) -> str:
    if not host:
        return ""
    return f"{host}:{port or 6443}"


@dataclass(frozen=True)
class ClusterFacts:
    """The CAPI ``Cluster`` (v1beta2, STATUS.md §10.2)."""

    phase: str
    available: bool | None  # None: not reported yet
    available_message: str
    control_plane_initialized: bool
    deleting: bool
    deleting_message: str
    endpoint: str


def read_cluster(obj: Manifest) -> ClusterFacts:
    status, conditions = status_of(obj), conditions_of(obj)
    available = conditions.get("Available")
    deleting = conditions.get("Deleting")
    initialized = conditions.get("ControlPlaneInitialized")
    spec_endpoint = (obj.get("spec") or {}).get("controlPlaneEndpoint") or {}
    phase = str(status.get("phase") or "")
    return ClusterFacts(
        phase=phase,
        available=(available.is_true and _is_current(obj)) if available else None,
        available_message=""
        if available is None or available.is_true
        else plain(available.message),
        control_plane_initialized=bool(
            (status.get("initialization") or {}).get("controlPlaneInitialized")
            or (initialized and initialized.is_true)
        ),
        deleting=is_deleting(obj) or phase == "Deleting",
        deleting_message=plain(deleting.message) if deleting and deleting.is_true else "",
        endpoint=_endpoint(spec_endpoint.get("host"), spec_endpoint.get("port")),
    )


@dataclass(frozen=True)
class ControlPlaneFacts:
    """The ``KamajiControlPlane`` (v1alpha2, STATUS.md §10.4)."""

    spec_version: str
    version: str  # what actually runs (copied from the TCP once it is Ready)
    ready: bool
    initialized: bool
    desired_replicas: int | None
    replicas: int
    ready_replicas: int
    endpoint: str
    conditions: Mapping[str, Condition] = field(default_factory=dict)


def read_control_plane(obj: Manifest) -> ControlPlaneFacts:
    spec, status = obj.get("spec") or {}, status_of(obj)
    endpoint = spec.get("controlPlaneEndpoint") or {}
    return ControlPlaneFacts(
        spec_version=normalise_version(spec.get("version")),
        version=normalise_version(status.get("version")),
        ready=bool(status.get("ready")),
        initialized=bool((status.get("initialization") or {}).get("controlPlaneInitialized")),
        desired_replicas=spec.get("replicas"),
        replicas=int(status.get("replicas") or 0),
        ready_replicas=int(status.get("readyReplicas") or 0),
        endpoint=_endpoint(endpoint.get("host"), endpoint.get("port")),
        conditions=conditions_of(obj),
    )


@dataclass(frozen=True)
class TenantControlPlaneFacts:
    """Kamaji's ``TenantControlPlane`` (STATUS.md §1): the API server itself."""

    state: str  # Provisioning | NotReady | Ready | Upgrading | Sleeping | ...
    version: str
    endpoint: str
    replicas: int
    ready_replicas: int


def read_tenant_control_plane(obj: Manifest) -> TenantControlPlaneFacts:
    status = status_of(obj)
    resources = status.get("kubernetesResources") or {}
    version = resources.get("version") or {}
    deployment = resources.get("deployment") or {}
    return TenantControlPlaneFacts(
        state=str(version.get("status") or ""),
        version=normalise_version(version.get("version")),
        endpoint=str(status.get("controlPlaneEndpoint") or ""),
        replicas=int(deployment.get("replicas") or 0),
        ready_replicas=int(deployment.get("readyReplicas") or 0),
    )


@dataclass(frozen=True)
class MachineDeploymentFacts:
    """The worker pool's ``MachineDeployment`` (v1beta2, STATUS.md §10.6)."""

    desired_replicas: int | None
    version: str
    template: str
    phase: str
    replicas: int
    ready_replicas: int
    available_replicas: int
    up_to_date_replicas: int
    current: bool
    rolling_out: bool
    scaling_message: str


def read_machine_deployment(obj: Manifest) -> MachineDeploymentFacts:
    spec, status, conditions = obj.get("spec") or {}, status_of(obj), conditions_of(obj)
    template_spec = (spec.get("template") or {}).get("spec") or {}
    scaling = conditions.get("ScalingUp") or conditions.get("ScalingDown")
    rolling = conditions.get("RollingOut")
    return MachineDeploymentFacts(
        desired_replicas=spec.get("replicas"),
        version=normalise_version(template_spec.get("version")),
        template=str((template_spec.get("infrastructureRef") or {}).get("name") or ""),
        phase=str(status.get("phase") or ""),
        replicas=int(status.get("replicas") or 0),
        ready_replicas=int(status.get("readyReplicas") or 0),
        available_replicas=int(status.get("availableReplicas") or 0),
        up_to_date_replicas=int(status.get("upToDateReplicas") or 0),
        current=_is_current(obj),
        rolling_out=bool(rolling and rolling.is_true),
        scaling_message=plain(scaling.message) if scaling and scaling.is_true else "",
    )


@dataclass(frozen=True)
class MachineFacts:
    """One worker ``Machine`` (v1beta2, STATUS.md §10.7)."""

    name: str
    created: str
    phase: str
    node: str
    ready: bool
    waiting_message: str
    failure: str
    deleting: bool


MACHINE_WAIT_CONDITIONS = ("BootstrapConfigReady", "InfrastructureReady", "NodeHealthy", "Ready")


def read_machine(obj: Manifest) -> MachineFacts:
    status, conditions, metadata = status_of(obj), conditions_of(obj), metadata_of(obj)
    legacy = (status.get("deprecated") or {}).get("v1beta1") or {}
    waiting = next(
        (
            plain(conditions[kind].message)
            for kind in MACHINE_WAIT_CONDITIONS
            if kind in conditions and conditions[kind].is_false and conditions[kind].message
        ),
        "",
    )
    ready = conditions.get("Ready")
    return MachineFacts(
        name=str(metadata.get("name") or ""),
        created=str(metadata.get("creationTimestamp") or ""),
        phase=str(status.get("phase") or "Pending"),
        node=str((status.get("nodeRef") or {}).get("name") or ""),
        ready=bool(ready and ready.is_true),
        waiting_message=waiting,
        failure=plain(legacy.get("failureMessage") or legacy.get("failureReason")),
        deleting=is_deleting(obj) or status.get("phase") == "Deleting",
    )


@dataclass(frozen=True)
class HelmReleaseFacts:
    """An add-on's Flux ``HelmRelease`` (STATUS.md §9)."""

    addon: str
    ready: bool | None
    failed: bool
    message: str


def read_helm_release(obj: Manifest) -> HelmReleaseFacts:
    conditions = conditions_of(obj)
    ready, stalled = conditions.get("Ready"), conditions.get("Stalled")
    addon = str((metadata_of(obj).get("labels") or {}).get(ADDON_KEY) or "")
    # Ready is only trustworthy for the current generation (a changed spec is being worked on).
    current = _is_current(obj)
    failed = bool(stalled and stalled.is_true) or bool(
        ready and ready.is_false and ready.reason in HELM_FAILURE_REASONS
    )
    message = plain(
        (stalled.message if stalled and stalled.is_true else "") or (ready.message if ready else "")
    )
    return HelmReleaseFacts(
        addon=addon,
        ready=(ready.is_true and current) if ready else None,
        failed=failed,
        message=message,
    )


# --- The whole cluster ----------------------------------------------------------------------


@dataclass(frozen=True)
class Desired:
    """What the tenant asked for, and where the portal itself stands with it."""

    name: str
    version: str
    worker_version: str
    worker_count: int
    hibernated: bool = False
    addons: Sequence[str] = ()
    applied: bool = False
    deleting: bool = False
    apply_error: str = ""
    ever_ready: bool = False
    address_pool: str = ""


@dataclass(frozen=True)
class Facts:
    """Everything Kubernetes currently reports about one cluster."""

    cluster: ClusterFacts | None = None
    control_plane: ControlPlaneFacts | None = None
    tenant_control_plane: TenantControlPlaneFacts | None = None
    workers: MachineDeploymentFacts | None = None
    machines: Sequence[MachineFacts] = ()
    releases: Mapping[str, HelmReleaseFacts] = field(default_factory=dict)

    @classmethod
    def from_objects(cls, objects: Iterable[Manifest]) -> Facts:
        found: dict[str, Any] = {"machines": [], "releases": {}}
        for obj in objects:
            kind = obj.get("kind")
            if kind == "Cluster":
                found["cluster"] = read_cluster(obj)
            elif kind == "KamajiControlPlane":
                found["control_plane"] = read_control_plane(obj)
            elif kind == "TenantControlPlane":
                found["tenant_control_plane"] = read_tenant_control_plane(obj)
            elif kind == "MachineDeployment":
                found["workers"] = read_machine_deployment(obj)
            elif kind == "Machine":
                found["machines"].append(read_machine(obj))
            elif kind == "HelmRelease":
                release = read_helm_release(obj)
                found["releases"][release.addon] = release
        live = [machine for machine in found["machines"] if not machine.deleting]
        found["machines"] = sorted(live, key=lambda machine: (machine.created, machine.name))
        return cls(**found)

    @property
    def endpoint(self) -> str:
        tcp, kcp, cluster = self.tenant_control_plane, self.control_plane, self.cluster
        return (
            (tcp.endpoint if tcp else "")
            or (kcp.endpoint if kcp else "")
            or (cluster.endpoint if cluster else "")
        )

    @property
    def control_plane_initialized(self) -> bool:
        return bool(
            (self.control_plane and self.control_plane.initialized)
            or (self.cluster and self.cluster.control_plane_initialized)
        )

    @property
    def control_plane_version(self) -> str:
        if self.control_plane and self.control_plane.version:
            return self.control_plane.version
        return self.tenant_control_plane.version if self.tenant_control_plane else ""

    @property
    def ready_workers(self) -> int:
        if self.workers is not None:
            return self.workers.ready_replicas
        return sum(1 for machine in self.machines if machine.ready)


@dataclass(frozen=True)
class Picture:
    phase: str
    reason: str
    steps: Sequence[Step]
    endpoint: str = ""
    control_plane_version: str = ""
    control_plane_ready: bool = False
    control_plane_initialized: bool = False
    ready_workers: int = 0


def derive(desired: Desired, objects: Iterable[Manifest]) -> Picture:
    facts = Facts.from_objects(objects)
    steps = timeline(desired, facts)
    phase, reason = phase_of(desired, facts, steps)
    return Picture(
        phase=phase,
        reason=reason,
        steps=steps,
        endpoint=facts.endpoint,
        control_plane_version=facts.control_plane_version,
        control_plane_ready=bool(facts.control_plane and facts.control_plane.ready),
        control_plane_initialized=facts.control_plane_initialized,
        ready_workers=facts.ready_workers,
    )


# --- Timeline -------------------------------------------------------------------------------


def timeline(desired: Desired, facts: Facts) -> list[Step]:
    return [
        *_control_plane_steps(desired, facts),
        *_worker_steps(desired, facts),
        *_addon_steps(desired, facts),
    ]


def _control_plane_step(
    key: str,
    label: str,
    position: int,
    *,
    done: bool,
    previous_done: bool,
    facts: Facts,
    condition: str,
    waiting: str,
    done_message: str = "",
) -> Step:
    """A step the Kamaji control-plane provider reports through one of its conditions.

    Its reasons are odd (STATUS.md §10.4): "Failed" means waiting and requeued, "Pending" a
    real error, so the message is what counts.
    """
    if done:
        return Step(key, label, position, STEP_DONE, done_message)
    if not previous_done:
        return Step(key, label, position)
    reported = facts.control_plane.conditions.get(condition) if facts.control_plane else None
    if reported and reported.is_false and reported.reason == "Pending":
        return Step(key, label, position, STEP_FAILED, plain(reported.message) or waiting)
    detail = plain(reported.message) if reported and not reported.is_true else ""
    return Step(key, label, position, STEP_ACTIVE, f"{waiting}: {detail}" if detail else waiting)


def _control_plane_steps(desired: Desired, facts: Facts) -> list[Step]:
    kcp, tcp = facts.control_plane, facts.tenant_control_plane
    applied = desired.applied or kcp is not None
    created = tcp is not None or bool(
        kcp and (condition := kcp.conditions.get("TenantControlPlaneCreated")) and condition.is_true
    )
    endpoint = facts.endpoint
    running = facts.control_plane_initialized
    kubeconfig = bool(
        kcp
        and (
            kcp.ready
            or ((condition := kcp.conditions.get("KubeadmResourcesCreated")) and condition.is_true)
        )
    )
    creating = (
        "Waiting for the Kamaji provider to create the control plane"
        if kcp
        else "Waiting for Cluster API to pick up the cluster"
    )
    return [
        _control_plane_step(
            "control-plane",
            "Control plane created",
            10,
            done=created,
            previous_done=applied,
            facts=facts,
            condition="TenantControlPlaneCreated",
            waiting=creating,
        ),
        _control_plane_step(
            "endpoint",
            "Endpoint assigned",
            20,
            done=bool(endpoint),
            previous_done=created,
            facts=facts,
            condition="TenantControlPlaneAddressReady",
            waiting=(
                f"Waiting for a load-balancer address from pool {desired.address_pool}"
                if desired.address_pool
                else "Waiting for a load-balancer address"
            ),
            done_message=f"https://{endpoint}" if endpoint else "",
        ),
        _control_plane_step(
            "control-plane-ready",
            "Control plane running",
            30,
            done=running,
            previous_done=bool(endpoint),
            facts=facts,
            condition="KamajiControlPlaneIsInitialized",
            waiting=_api_server_progress(tcp),
            done_message=facts.control_plane_version,
        ),
        _control_plane_step(
            "kubeconfig",
            "Kubeconfig issued",
            40,
            done=kubeconfig,
            previous_done=running,
            facts=facts,
            condition="KubeadmResourcesCreated",
            waiting="Writing the cluster's kubeconfig",
        ),
    ]


def _api_server_progress(tcp: TenantControlPlaneFacts | None) -> str:
    if tcp is None or not tcp.replicas:
        return "Starting the API server"
    return f"Starting the API server ({tcp.ready_replicas} of {tcp.replicas} ready)"


MACHINE_PHASE_WORDS = {
    "Pending": "Waiting for its bootstrap configuration",
    "Provisioning": "Creating the virtual machine",
    "Provisioned": "Virtual machine booting; waiting for the node to join",
    "Running": "Joining the cluster",
    "Updating": "Updating in place",
}


def _worker_step(index: int, machine: MachineFacts | None, desired: Desired, facts: Facts) -> Step:
    key, label, position = f"worker-{index}", f"Worker {index + 1} joined", 100 + index
    if machine is None:
        if desired.hibernated:
            return Step(key, label, position, STEP_PENDING, "Stopped while the cluster hibernates")
        if not facts.control_plane_initialized:
            return Step(key, label, position, STEP_PENDING, "Starts once the control plane runs")
        blocker = facts.workers.scaling_message if facts.workers else ""
        return Step(
            key,
            label,
            position,
            STEP_ACTIVE,
            blocker or "Waiting for Cluster API to create the machine",
        )
    if machine.failure:
        return Step(key, label, position, STEP_FAILED, machine.failure)
    if machine.node:
        suffix = "" if machine.ready else " (not Ready yet: waiting for the network add-on)"
        return Step(key, label, position, STEP_DONE, f"Node {machine.node}{suffix}")
    words = MACHINE_PHASE_WORDS.get(machine.phase, machine.phase)
    message = f"{words}: {machine.waiting_message}" if machine.waiting_message else words
    return Step(key, label, position, STEP_ACTIVE, message)


def _worker_steps(desired: Desired, facts: Facts) -> list[Step]:
    machines = list(facts.machines)
    return [
        _worker_step(index, machines[index] if index < len(machines) else None, desired, facts)
        for index in range(desired.worker_count)
    ]


def _addon_steps(desired: Desired, facts: Facts) -> list[Step]:
    steps = []
    for offset, addon in enumerate(desired.addons):
        key, label, position = f"addon-{addon}", f"Add-on {addon} ready", 1000 + offset
        release = facts.releases.get(addon)
        if release is not None and release.ready:
            steps.append(Step(key, label, position, STEP_DONE))
        elif release is not None and release.failed:
            steps.append(
                Step(key, label, position, STEP_FAILED, release.message or "Installing failed")
            )
        elif not facts.control_plane_initialized:
            steps.append(
                Step(key, label, position, STEP_PENDING, "Installs once the control plane runs")
            )
        else:
            message = (release.message if release else "") or "Waiting for Flux to install it"
            steps.append(Step(key, label, position, STEP_ACTIVE, message))
    return steps


# --- Phase ----------------------------------------------------------------------------------


def _first(steps: Sequence[Step], state: str) -> Step | None:
    return next((step for step in steps if step.state == state), None)


def phase_of(desired: Desired, facts: Facts, steps: Sequence[Step]) -> tuple[str, str]:
    """The portal phase and, unless all is well, the first thing wrong or awaited."""
    if desired.deleting:
        deleting = facts.cluster.deleting_message if facts.cluster else ""
        return DELETING, deleting or "Deleting the workers, then the control plane."
    if desired.apply_error:
        return FAILED, desired.apply_error
    if not desired.applied:
        return PENDING, "Queued for provisioning."
    if desired.hibernated:
        return HIBERNATED, "" if _asleep(facts) else "Stopping the control plane and the workers."

    failed, active = _first(steps, STEP_FAILED), _first(steps, STEP_ACTIVE)
    control_plane_ok = _control_plane_ok(desired, facts)
    workers_ok = _workers_ok(desired, facts)
    addons_ok = all(step.state == STEP_DONE for step in steps if step.key.startswith("addon-"))
    available = bool(facts.cluster and facts.cluster.available)

    if not desired.ever_ready:
        if control_plane_ok and workers_ok and addons_ok and available:
            return READY, ""
        if failed or active:
            return PROVISIONING, (failed or active).message  # type: ignore[union-attr]
        unavailable = facts.cluster.available_message if facts.cluster else ""
        return (
            PROVISIONING,
            unavailable or "Waiting for Cluster API to report the cluster available.",
        )

    if upgrading := _upgrade_progress(desired, facts):
        return UPGRADING, upgrading
    if scaling := _scaling_progress(desired, facts):
        return SCALING, scaling
    if not control_plane_ok:
        state = facts.tenant_control_plane.state if facts.tenant_control_plane else ""
        return (
            DEGRADED,
            f"The control plane is not ready{f' (Kamaji reports {state})' if state else ''}.",
        )
    if failed:
        return (
            DEGRADED,
            f"{failed.label.removesuffix(' ready').removesuffix(' joined')}: {failed.message}",
        )
    if not available:
        unavailable = facts.cluster.available_message if facts.cluster else ""
        return DEGRADED, unavailable or "Cluster API reports the cluster unavailable."
    if not addons_ok and active:
        return DEGRADED, f"{active.label.removesuffix(' ready')}: {active.message}"
    return READY, ""


def _asleep(facts: Facts) -> bool:
    tcp, kcp, workers = facts.tenant_control_plane, facts.control_plane, facts.workers
    control_plane_down = (tcp.state == "Sleeping") if tcp else (kcp is None or kcp.replicas == 0)
    return control_plane_down and (workers is None or workers.replicas == 0)


def _control_plane_ok(desired: Desired, facts: Facts) -> bool:
    kcp = facts.control_plane
    return bool(kcp and kcp.ready and kcp.version == normalise_version(desired.version))


def _workers_ok(desired: Desired, facts: Facts) -> bool:
    workers = facts.workers
    wanted = desired.worker_count
    return bool(
        workers
        and workers.current
        and workers.desired_replicas == wanted
        and workers.replicas == wanted
        and workers.ready_replicas >= wanted
        and workers.up_to_date_replicas >= wanted
        and workers.version == normalise_version(desired.worker_version)
    )


def _upgrade_progress(desired: Desired, facts: Facts) -> str:
    target = normalise_version(desired.version)
    running = facts.control_plane_version
    if running and running != target:
        return f"Upgrading the control plane from {running} to {target}."
    if normalise_version(desired.worker_version) != target:
        return f"The control plane runs {target}; the workers follow next."
    workers = facts.workers
    if workers and (
        workers.version != target
        or workers.rolling_out
        or workers.up_to_date_replicas < (workers.desired_replicas or 0)
    ):
        return (
            f"Replacing workers with {target}: "
            f"{workers.up_to_date_replicas} of {desired.worker_count} done."
        )
    return ""


def _scaling_progress(desired: Desired, facts: Facts) -> str:
    workers = facts.workers
    wanted = desired.worker_count
    settled = bool(
        workers
        and workers.desired_replicas == wanted
        and workers.replicas == wanted
        and workers.ready_replicas >= wanted
    )
    if settled:
        return ""
    if not _control_plane_ok(desired, facts):
        return "Waking up: starting the control plane."
    ready = workers.ready_replicas if workers else 0
    blocker = f" {workers.scaling_message}" if workers and workers.scaling_message else ""
    return f"Scaling the workers to {wanted}: {ready} ready.{blocker}"
