"""From what Kubernetes reports to what a tenant sees: phase, reason and timeline.

Pure functions, no database: ``read_*`` turn one object's status (shaped as
``../shared/crds/STATUS.md`` describes) into facts, and ``derive`` combines the facts of
every object behind a cluster with what the tenant asked for into a ``Picture``: the
portal phase, the first failing (or awaited) thing in plain words, and the timeline.
``clusters.status`` stores the objects and applies the picture to the database.

Day 2 starts from the action the person asked for (``Desired.action``: scale, upgrade,
hibernate, wake, delete), not from a guess at what the objects are doing: a scale-up leaves
workers "not up to date" for a moment and an upgrade's rolling update has one worker too
many, and neither is the other action. The badge names the action until Kubernetes reports
it done (``action_finished``); each action has its own timeline whose steps count what is
done (so its progress only moves forward). Controller messages go through
``butler_portal.explain``: a plain sentence, with the controller's words kept as ``raw``.

Controllers report progress on several objects at once (STATUS.md §10.11): the Kamaji
control-plane provider's conditions walk through creation, endpoint and kubeconfig; the
TenantControlPlane says whether the API server runs; the MachineDeployment and its Machines
count workers; each add-on's HelmRelease says whether it is installed; and the CAPI
Cluster's ``Available`` condition sums it all up.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from butler_portal.explain import ASK_OPERATORS, Said, explain
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
    status_of,
)
from clusters.manifests import ADDON_KEY

# Phase values (the same strings as Cluster.Phase; this module stays free of the models so
# it runs without a database).
PENDING, PROVISIONING, READY = "pending", "provisioning", "ready"
SCALING, UPGRADING, HIBERNATED = "scaling", "upgrading", "hibernated"
HIBERNATING, WAKING = "hibernating", "waking"
DEGRADED, DELETING, FAILED = "degraded", "deleting", "failed"

# Day-2 actions (the same strings as Cluster.Action); "" is none under way.
SCALE, UPGRADE, HIBERNATE, WAKE, DELETE = "scale", "upgrade", "hibernate", "wake", "delete"

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
        else available.message.strip(),
        control_plane_initialized=bool(
            (status.get("initialization") or {}).get("controlPlaneInitialized")
            or (initialized and initialized.is_true)
        ),
        deleting=is_deleting(obj) or phase == "Deleting",
        deleting_message=deleting.message.strip() if deleting and deleting.is_true else "",
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
        scaling_message=scaling.message.strip() if scaling and scaling.is_true else "",
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
    version: str = ""

    @property
    def joined(self) -> bool:
        """Its node is in the cluster and Ready."""
        return bool(self.node) and self.ready


MACHINE_WAIT_CONDITIONS = ("BootstrapConfigReady", "InfrastructureReady", "NodeHealthy", "Ready")


def read_machine(obj: Manifest) -> MachineFacts:
    status, conditions, metadata = status_of(obj), conditions_of(obj), metadata_of(obj)
    legacy = (status.get("deprecated") or {}).get("v1beta1") or {}
    waiting = next(
        (
            conditions[kind].message.strip()
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
        failure=str(legacy.get("failureMessage") or legacy.get("failureReason") or "").strip(),
        deleting=is_deleting(obj) or status.get("phase") == "Deleting",
        version=normalise_version((obj.get("spec") or {}).get("version")),
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
    message = (
        (stalled.message if stalled and stalled.is_true else "") or (ready.message if ready else "")
    ).strip()
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
    # The day-2 action under way ("" for none, or while the cluster is first provisioned).
    action: str = ""
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
    machines: Sequence[MachineFacts] = ()  # the live ones, oldest first
    leaving_machines: int = 0  # Machines Kubernetes was asked to delete, not gone yet
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
        found["leaving_machines"] = len(found["machines"]) - len(live)
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

    @property
    def joined_workers(self) -> int:
        """Live workers whose node is in the cluster and Ready."""
        return sum(1 for machine in self.machines if machine.joined)

    def workers_on(self, version: str) -> int:
        """Live workers running ``version`` and joined (an upgrade's count of done)."""
        return sum(1 for machine in self.machines if machine.joined and machine.version == version)


@dataclass(frozen=True)
class Picture:
    phase: str
    reason: str
    steps: Sequence[Step]
    # The controller's words behind ``reason`` ("" when the reason is the portal's own).
    reason_raw: str = ""
    # The day-2 action still under way ("" once Kubernetes reports it done).
    action: str = ""
    endpoint: str = ""
    control_plane_version: str = ""
    control_plane_ready: bool = False
    control_plane_initialized: bool = False
    ready_workers: int = 0


def derive(desired: Desired, objects: Iterable[Manifest]) -> Picture:
    facts = Facts.from_objects(objects)
    if desired.deleting:
        desired = replace(desired, action=DELETE)
    elif desired.action and action_finished(desired, facts):
        desired = replace(desired, action="")
    steps = timeline(desired, facts)
    phase, reason = phase_of(desired, facts, steps)
    return Picture(
        phase=phase,
        reason=reason.text,
        reason_raw=reason.raw,
        action=desired.action,
        steps=steps,
        endpoint=facts.endpoint,
        control_plane_version=facts.control_plane_version,
        control_plane_ready=bool(facts.control_plane and facts.control_plane.ready),
        control_plane_initialized=facts.control_plane_initialized,
        ready_workers=facts.ready_workers,
    )


# --- Timeline -------------------------------------------------------------------------------


def timeline(desired: Desired, facts: Facts) -> list[Step]:
    """The steps of what the cluster is doing: its action's own, else how it stands."""
    if desired.action == DELETE:
        return _deletion_steps(facts)
    if desired.hibernated:
        return _hibernation_steps(facts)
    if desired.action == UPGRADE:
        return _upgrade_steps(desired, facts)
    if desired.action == WAKE:
        return _wake_steps(desired, facts)
    steps = [
        *_control_plane_steps(desired, facts),
        *_worker_steps(desired, facts),
        *_addon_steps(desired, facts),
    ]
    if desired.action == SCALE:
        steps.append(_scale_step(desired, facts))
    return sorted(steps, key=lambda step: step.position)


def progress(steps: Sequence[Step]) -> tuple[int, int]:
    """(done, all) steps: what a progress bar shows."""
    return sum(1 for step in steps if step.state == STEP_DONE), len(steps)


def hold_progress(steps: Sequence[Step], done_before: Mapping[str, Step]) -> list[Step]:
    """``steps``, with those already done within the same action kept done.

    Kubernetes may report a step's object going back a moment (a restarted API server, a
    release reconciling again); within one action the person asked for, what was done stays
    done, so its progress never goes backwards. A failure still shows.
    """
    return [
        done_before[step.key]
        if step.key in done_before and step.state in {STEP_ACTIVE, STEP_PENDING}
        else step
        for step in steps
    ]


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


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
    trouble: str,
    done_message: str = "",
) -> Step:
    """A step the Kamaji control-plane provider reports through one of its conditions.

    Its reasons are odd (STATUS.md §10.4): "Failed" means waiting and requeued, "Pending" a
    real error, so the message is what counts; it is explained, never shown bare.
    """
    if done:
        return Step(key, label, position, STEP_DONE, done_message)
    if not previous_done:
        return Step(key, label, position)
    reported = facts.control_plane.conditions.get(condition) if facts.control_plane else None
    if reported and reported.is_false and reported.reason == "Pending":
        failed = f"{trouble}. {ASK_OPERATORS}"
        said = explain(reported.message, fallback=failed)
        return Step(key, label, position, STEP_FAILED, said.text or failed, said.raw)
    said = explain(reported.message if reported and not reported.is_true else "", fallback=waiting)
    return Step(key, label, position, STEP_ACTIVE, said.text or waiting, said.raw)


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
            trouble="The control plane could not be created",
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
            trouble="No load-balancer address could be assigned",
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
            trouble="The API server could not start",
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
            trouble="The cluster's kubeconfig could not be written",
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
CREATING_MACHINE = "Waiting for Cluster API to create the machine"
MACHINE_FAILED = f"Its virtual machine failed. {ASK_OPERATORS}"


def _machine_progress(machine: MachineFacts) -> Said:
    """How far a worker that has not joined yet got, in words."""
    if machine.node:
        return Said(f"Node {machine.node} joined; waiting for it to be Ready")
    words = MACHINE_PHASE_WORDS.get(machine.phase, "Getting the virtual machine ready")
    said = explain(machine.waiting_message, fallback=words)
    return said if said else Said(words)


def _machine_step(key: str, label: str, position: int, machine: MachineFacts) -> Step:
    if machine.failure:
        said = explain(machine.failure, fallback=MACHINE_FAILED)
        return Step(key, label, position, STEP_FAILED, said.text or MACHINE_FAILED, said.raw)
    if machine.node:
        suffix = "" if machine.ready else " (not Ready yet: waiting for the network add-on)"
        return Step(key, label, position, STEP_DONE, f"Node {machine.node}{suffix}")
    said = _machine_progress(machine)
    return Step(key, label, position, STEP_ACTIVE, said.text, said.raw)


def _awaited_machine(key: str, label: str, position: int, facts: Facts) -> Step:
    """A worker Cluster API has not created yet: what holds it back, explained."""
    blocker = facts.workers.scaling_message if facts.workers else ""
    said = explain(blocker, fallback=CREATING_MACHINE)
    return Step(key, label, position, STEP_ACTIVE, said.text or CREATING_MACHINE, said.raw)


def _worker_step(index: int, machine: MachineFacts | None, facts: Facts) -> Step:
    key, label, position = f"worker-{index}", f"Worker {index + 1} joined", 100 + index
    if machine is not None:
        return _machine_step(key, label, position, machine)
    if not facts.control_plane_initialized:
        return Step(key, label, position, STEP_PENDING, "Starts once the control plane runs")
    return _awaited_machine(key, label, position, facts)


def _worker_steps(desired: Desired, facts: Facts) -> list[Step]:
    machines = list(facts.machines)
    return [
        _worker_step(index, machines[index] if index < len(machines) else None, facts)
        for index in range(desired.worker_count)
    ]


def _addon_step(
    addon: str,
    release: HelmReleaseFacts | None,
    *,
    key: str,
    position: int,
    can_start: bool,
    pending: str,
    working: str,
) -> Step:
    label = f"Add-on {addon} ready"
    if release is not None and release.ready:
        return Step(key, label, position, STEP_DONE)
    if release is not None and release.failed:
        failed = f"Installing it failed. {ASK_OPERATORS}"
        said = explain(release.message, fallback=failed)
        return Step(key, label, position, STEP_FAILED, said.text or failed, said.raw)
    if not can_start:
        return Step(key, label, position, STEP_PENDING, pending)
    if release is None:
        return Step(key, label, position, STEP_ACTIVE, "Waiting for Flux to install it")
    said = explain(release.message, fallback=working)
    return Step(key, label, position, STEP_ACTIVE, said.text or working, said.raw)


def _addon_steps(desired: Desired, facts: Facts) -> list[Step]:
    return [
        _addon_step(
            addon,
            facts.releases.get(addon),
            key=f"addon-{addon}",
            position=1000 + offset,
            can_start=facts.control_plane_initialized,
            pending="Installs once the control plane runs",
            working="Installing it",
        )
        for offset, addon in enumerate(desired.addons)
    ]


# --- Each day-2 action's own steps -------------------------------------------------------------


def _workers_present(facts: Facts) -> int:
    """Workers that still exist, leaving ones included (what a scale-down or stop waits for)."""
    counted = len(facts.machines) + facts.leaving_machines
    return max(counted, facts.workers.replicas if facts.workers else 0)


def _scaling_words(desired: Desired, facts: Facts) -> str:
    wanted = desired.worker_count
    extra = _workers_present(facts) - wanted
    if extra > 0:
        return f"Scaling the workers down to {wanted}: removing {_plural(extra, 'worker')}."
    joined = min(facts.joined_workers, wanted)
    return f"Scaling the workers to {wanted}: {joined} of {wanted} ready."


def _scale_step(desired: Desired, facts: Facts) -> Step:
    wanted = desired.worker_count
    key, label, position = "scale", f"Workers scaled to {wanted}", 900
    if _workers_ok(desired, facts):
        return Step(key, label, position, STEP_DONE, f"{_plural(wanted, 'worker')} running")
    return Step(key, label, position, STEP_ACTIVE, _scaling_words(desired, facts).rstrip("."))


def _upgrade_steps(desired: Desired, facts: Facts) -> list[Step]:
    """The control plane first, then one worker after the other (a rolling update)."""
    target = normalise_version(desired.version)
    control_plane_done = _control_plane_ok(desired, facts)
    running = facts.control_plane_version
    steps = [
        Step(
            "upgrade-control-plane",
            f"Control plane on {target}",
            10,
            STEP_DONE,
            "",
        )
        if control_plane_done
        else Step(
            "upgrade-control-plane",
            f"Control plane on {target}",
            10,
            STEP_ACTIVE,
            f"Upgrading the API server from {running} to {target}"
            if running and running != target
            else f"Starting the API server with {target}",
        )
    ]
    workers_follow = control_plane_done and normalise_version(desired.worker_version) == target
    done = facts.workers_on(target)
    fresh = [m for m in facts.machines if m.version == target and not m.joined]
    for index in range(desired.worker_count):
        key, label, position = (
            f"upgrade-worker-{index}",
            f"Worker {index + 1} on {target}",
            100 + index,
        )
        if index < done:
            steps.append(Step(key, label, position, STEP_DONE))
        elif not workers_follow:
            steps.append(Step(key, label, position, STEP_PENDING, "Follows the control plane"))
        elif index == done:
            if fresh:
                steps.append(_machine_step(key, label, position, fresh[0]))
            else:
                replacing = "Replacing it: a new worker joins before an old one goes"
                steps.append(Step(key, label, position, STEP_ACTIVE, replacing))
        else:
            steps.append(Step(key, label, position, STEP_PENDING, "After the worker before it"))
    old_gone = _old_workers_gone(desired, facts)
    if old_gone:
        cleanup = Step("upgrade-cleanup", "Old workers removed", 900, STEP_DONE)
    elif done >= desired.worker_count:
        cleanup = Step(
            "upgrade-cleanup",
            "Old workers removed",
            900,
            STEP_ACTIVE,
            "Removing the last old worker",
        )
    else:
        cleanup = Step("upgrade-cleanup", "Old workers removed", 900, STEP_PENDING)
    return [*steps, cleanup]


def _old_workers_gone(desired: Desired, facts: Facts) -> bool:
    target = normalise_version(desired.version)
    return (
        facts.leaving_machines == 0
        and all(machine.version == target for machine in facts.machines)
        and _workers_present(facts) <= desired.worker_count
    )


def _upgrade_words(desired: Desired, facts: Facts) -> str:
    target = normalise_version(desired.version)
    running = facts.control_plane_version
    if not _control_plane_ok(desired, facts):
        if running and running != target:
            return f"Upgrading the control plane from {running} to {target}."
        return f"Upgrading the control plane to {target}."
    if normalise_version(desired.worker_version) != target:
        return f"The control plane runs {target}; the workers follow next."
    done = min(facts.workers_on(target), desired.worker_count)
    if done < desired.worker_count:
        return f"Replacing workers with {target}: {done} of {desired.worker_count} done."
    return f"Every worker runs {target}; removing the old ones."


def _workers_stopped(facts: Facts) -> bool:
    return not facts.machines and _workers_present(facts) == 0


def _control_plane_stopped(facts: Facts) -> bool:
    tcp, kcp = facts.tenant_control_plane, facts.control_plane
    return (tcp.state == "Sleeping") if tcp else (kcp is None or kcp.replicas == 0)


def _asleep(facts: Facts) -> bool:
    return _control_plane_stopped(facts) and _workers_stopped(facts)


def _hibernation_steps(facts: Facts) -> list[Step]:
    workers = _workers_present(facts)
    return [
        Step("hibernate-workers", "Workers stopped", 10, STEP_DONE)
        if _workers_stopped(facts)
        else Step(
            "hibernate-workers",
            "Workers stopped",
            10,
            STEP_ACTIVE,
            f"Stopping {_plural(workers, 'worker')}" if workers else "Stopping the workers",
        ),
        Step("hibernate-control-plane", "Control plane stopped", 20, STEP_DONE)
        if _control_plane_stopped(facts)
        else Step(
            "hibernate-control-plane",
            "Control plane stopped",
            20,
            STEP_ACTIVE,
            "Scaling the API server down to zero",
        ),
    ]


ASLEEP = (
    "Hibernated: the control plane and the workers are stopped and its quota stays reserved. "
    "Wake it up to use it again."
)


def _hibernating_words(facts: Facts) -> str:
    remaining = []
    if not _workers_stopped(facts):
        workers = _workers_present(facts)
        remaining.append(_plural(workers, "worker") if workers else "the workers")
    if not _control_plane_stopped(facts):
        remaining.append("the control plane")
    return f"Going to sleep: stopping {' and '.join(remaining)}."


def _wake_steps(desired: Desired, facts: Facts) -> list[Step]:
    """The control plane starts, then the workers boot and rejoin and the add-ons are checked."""
    kcp, tcp = facts.control_plane, facts.tenant_control_plane
    started = bool(kcp and kcp.ready)
    steps = [
        Step("wake-control-plane", "Control plane started", 10, STEP_DONE)
        if started
        else Step(
            "wake-control-plane",
            "Control plane started",
            10,
            STEP_ACTIVE,
            _api_server_progress(tcp if tcp and tcp.state != "Sleeping" else None),
        )
    ]
    joined = facts.joined_workers
    waiting = [machine for machine in facts.machines if not machine.joined]
    for index in range(desired.worker_count):
        key, label, position = f"wake-worker-{index}", f"Worker {index + 1} back", 100 + index
        if index < joined:
            steps.append(Step(key, label, position, STEP_DONE))
        elif not started:
            steps.append(
                Step(key, label, position, STEP_PENDING, "Starts once the control plane runs")
            )
        elif index - joined < len(waiting):
            steps.append(_machine_step(key, label, position, waiting[index - joined]))
        else:
            steps.append(_awaited_machine(key, label, position, facts))
    steps += [
        _addon_step(
            addon,
            facts.releases.get(addon),
            key=f"wake-addon-{addon}",
            position=1000 + offset,
            can_start=started,
            pending="Checked again once the control plane runs",
            working="Flux checks it again",
        )
        for offset, addon in enumerate(desired.addons)
    ]
    return steps


def _waking_words(desired: Desired, facts: Facts) -> str:
    if not (facts.control_plane and facts.control_plane.ready):
        return "Waking up: starting the control plane."
    wanted = desired.worker_count
    joined = min(facts.joined_workers, wanted)
    if joined < wanted or not _workers_ok(desired, facts):
        return f"Waking up: {joined} of {_plural(wanted, 'worker')} back."
    return "Waking up: Flux checks the add-ons again."


def _workers_gone(facts: Facts) -> bool:
    return facts.workers is None and _workers_stopped(facts)


def _control_plane_gone(facts: Facts) -> bool:
    return facts.control_plane is None and facts.tenant_control_plane is None


def _deletion_steps(facts: Facts) -> list[Step]:
    """What Cluster API and Flux remove: the add-ons, the workers, then the control plane."""
    releases = sorted(facts.releases)
    workers = _workers_present(facts)
    workers_gone = _workers_gone(facts)
    return [
        Step("delete-addons", "Add-ons removed", 10, STEP_DONE)
        if not releases
        else Step(
            "delete-addons",
            "Add-ons removed",
            10,
            STEP_ACTIVE,
            f"Uninstalling {', '.join(releases)}",
        ),
        Step("delete-workers", "Workers removed", 20, STEP_DONE)
        if workers_gone
        else Step(
            "delete-workers",
            "Workers removed",
            20,
            STEP_ACTIVE,
            f"Removing {_plural(workers, 'worker')}" if workers else "Removing the worker pool",
        ),
        Step("delete-control-plane", "Control plane removed", 30, STEP_DONE)
        if _control_plane_gone(facts)
        else Step(
            "delete-control-plane",
            "Control plane removed",
            30,
            STEP_ACTIVE if workers_gone else STEP_PENDING,
            "Removing the API server" if workers_gone else "Goes once the workers are gone",
        ),
    ]


def _deleting_words(facts: Facts) -> str:
    remaining = []
    if facts.releases:
        remaining.append("the add-ons")
    if not _workers_gone(facts):
        workers = _workers_present(facts)
        remaining.append(_plural(workers, "worker") if workers else "the worker pool")
    if not _control_plane_gone(facts):
        remaining.append("the control plane")
    if not remaining:
        return "Deleting: Kubernetes lets go of what is left."
    listed = (
        remaining[0] if len(remaining) == 1 else f"{', '.join(remaining[:-1])} and {remaining[-1]}"
    )
    return f"Deleting: removing {listed}."


# --- When an action is done ---------------------------------------------------------------------


def action_finished(desired: Desired, facts: Facts) -> bool:
    """Whether Kubernetes reports the action the person asked for done.

    Scaling, upgrading and waking end once Cluster API, too, calls the cluster available:
    its summary lags the objects it sums up, and ending before it would show "Degraded" for
    a moment at the end of every action.
    """
    action = desired.action
    if action == DELETE:
        return False  # the cluster's row goes once Kubernetes lets go of it
    if action == HIBERNATE:
        return not desired.hibernated or _asleep(facts)
    if desired.hibernated:
        return True  # hibernating took over
    return _action_work_done(desired, facts) and bool(facts.cluster and facts.cluster.available)


def _action_work_done(desired: Desired, facts: Facts) -> bool:
    """Whether the objects an action changes report it done (Cluster API's summary aside)."""
    action = desired.action
    if action == SCALE:
        return _workers_ok(desired, facts)
    if action == UPGRADE:
        return (
            _control_plane_ok(desired, facts)
            and normalise_version(desired.worker_version) == normalise_version(desired.version)
            and _workers_ok(desired, facts)
            and _old_workers_gone(desired, facts)
        )
    if action == WAKE:
        return (
            _control_plane_ok(desired, facts)
            and _workers_ok(desired, facts)
            and _addons_settled(desired, facts)
        )
    return True  # an action this module does not know ends at once


def _addons_settled(desired: Desired, facts: Facts) -> bool:
    """Every add-on installed, or given up on (the cluster then reads Degraded)."""
    return all(
        (release := facts.releases.get(addon)) is not None and (release.ready or release.failed)
        for addon in desired.addons
    )


# --- Phase ----------------------------------------------------------------------------------


def _first(steps: Sequence[Step], state: str) -> Step | None:
    return next((step for step in steps if step.state == state), None)


def _subject(step: Step) -> str:
    return step.label.removesuffix(" ready").removesuffix(" joined")


def _trouble(step: Step) -> Said:
    return Said(f"{_subject(step)}: {step.message}", step.raw)


def phase_of(desired: Desired, facts: Facts, steps: Sequence[Step]) -> tuple[str, Said]:
    """The portal phase and, unless all is well, the first thing wrong or awaited."""
    if desired.action == DELETE:
        deleting = facts.cluster.deleting_message if facts.cluster else ""
        # The portal's own count of what is left; Cluster API's words one click away.
        return DELETING, Said(_deleting_words(facts), explain(deleting, fallback="").raw)
    if desired.apply_error:
        return FAILED, Said(desired.apply_error)
    if not desired.applied:
        return PENDING, Said("Queued for provisioning.")
    if desired.hibernated:
        if _asleep(facts):
            return HIBERNATED, Said(ASLEEP)
        return HIBERNATING, Said(_hibernating_words(facts))

    failed, active = _first(steps, STEP_FAILED), _first(steps, STEP_ACTIVE)
    control_plane_ok = _control_plane_ok(desired, facts)
    workers_ok = _workers_ok(desired, facts)
    addons_ok = all(step.state == STEP_DONE for step in steps if step.key.startswith("addon-"))
    available = bool(facts.cluster and facts.cluster.available)
    unavailable = facts.cluster.available_message if facts.cluster else ""

    if not desired.ever_ready:
        if control_plane_ok and workers_ok and addons_ok and available:
            return READY, Said("")
        if step := failed or active:
            return PROVISIONING, Said(step.message, step.raw)
        return PROVISIONING, explain(
            unavailable, fallback="Waiting for Cluster API to report the cluster available."
        ) or Said("Waiting for Cluster API to report the cluster available.")

    # A day-2 action under way: the badge names it; a failure on its way is the reason.
    action_phases = {UPGRADE: UPGRADING, WAKE: WAKING, SCALE: SCALING}
    if desired.action in action_phases:
        if failed:
            return action_phases[desired.action], _trouble(failed)
        if _action_work_done(desired, facts):
            waiting = "Almost done: waiting for Cluster API to report the cluster available."
            return action_phases[desired.action], Said(
                waiting, explain(unavailable, fallback="").raw
            )
        words = {UPGRADE: _upgrade_words, WAKE: _waking_words, SCALE: _scaling_words}
        return action_phases[desired.action], Said(words[desired.action](desired, facts))

    # No action recorded (a change made before actions were, or outside the portal): what
    # the objects show.
    if not _versions_match(desired, facts):
        return UPGRADING, Said(_upgrade_words(desired, facts))
    if not control_plane_ok:
        state = facts.tenant_control_plane.state if facts.tenant_control_plane else ""
        return (
            DEGRADED,
            Said(f"The control plane is not ready{f' (Kamaji reports {state})' if state else ''}."),
        )
    if not _workers_settled(desired, facts):
        return SCALING, Said(_scaling_words(desired, facts))
    if failed:
        return DEGRADED, _trouble(failed)
    if not available:
        fallback = "Cluster API reports the cluster unavailable."
        return DEGRADED, explain(unavailable, fallback=fallback) or Said(fallback)
    if not addons_ok and active:
        return DEGRADED, _trouble(active)
    return READY, Said("")


def _control_plane_ok(desired: Desired, facts: Facts) -> bool:
    kcp = facts.control_plane
    return bool(kcp and kcp.ready and kcp.version == normalise_version(desired.version))


def _versions_match(desired: Desired, facts: Facts) -> bool:
    """Control plane and workers all run the version asked for."""
    target = normalise_version(desired.version)
    running = facts.control_plane_version
    return (
        (not running or running == target)
        and normalise_version(desired.worker_version) == target
        and all(machine.version in ("", target) for machine in facts.machines)
    )


def _workers_settled(desired: Desired, facts: Facts) -> bool:
    workers = facts.workers
    wanted = desired.worker_count
    return bool(
        workers
        and workers.desired_replicas == wanted
        and workers.replicas == wanted
        and workers.ready_replicas >= wanted
    )


def _workers_ok(desired: Desired, facts: Facts) -> bool:
    workers = facts.workers
    wanted = desired.worker_count
    return bool(
        workers
        and workers.current
        and _workers_settled(desired, facts)
        and workers.up_to_date_replicas >= wanted
        and workers.version == normalise_version(desired.worker_version)
    )
