"""Cluster API core (v1beta2): Cluster, MachineDeployment, MachineSet, Machine (STATUS.md §10).

- ``Cluster``: adopts its control plane and infrastructure (owner reference, cluster-name
  label), copies the endpoint, walks ``Pending → Provisioning → Provisioned`` and keeps the
  v1beta2 conditions and counters; deleting it removes workers, then the control plane, then
  the infrastructure (§10.10).
- ``MachineDeployment`` → ``MachineSet`` (named ``<md>-<5 random>``) → ``Machine``
  (``<ms>-<5 random>``): scaling, and a rolling update (surge 1, unavailable 0 by default)
  when ``spec.template`` changes. Preflight checks hold new Machines back while the control
  plane is provisioning or upgrading (§10.7).
- ``Machine``: ``Pending → Provisioning → Provisioned → Running`` with ``nodeRef``.

The KamajiControlPlane and KubevirtCluster are played in ``kamaji.py`` (CACPPK).
Workers here are bookkeeping only: no KubeadmConfig, KubevirtMachine or worker VM is made;
but each worker takes its VM's address in the tenant's subnet (``kubeovn.worker_address``),
so the subnet counts it as Kube-OVN would.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable
from typing import Any, NamedTuple

from butler_portal.simulator import kubeovn
from butler_portal.simulator.base import Controller
from butler_portal.simulator.objects import (
    Manifest,
    Ref,
    annotations_of,
    condition,
    condition_of,
    dig,
    fingerprint,
    generation_of,
    is_deleting,
    is_owned_by,
    is_true,
    labels_of,
    merge_conditions,
    name_of,
    namespace_of,
    now,
    owner_reference,
    selector_string,
    uid_of,
)

CLUSTER_API_VERSION = "cluster.x-k8s.io/v1beta2"
CONTROL_PLANE_API_VERSION = "controlplane.cluster.x-k8s.io/v1alpha2"
INFRASTRUCTURE_API_VERSION = "infrastructure.cluster.x-k8s.io/v1alpha1"
# §10.0: references name a group; these are the versions the fixtures store.
STORAGE_VERSIONS = {
    "cluster.x-k8s.io": "v1beta2",
    "bootstrap.cluster.x-k8s.io": "v1beta2",
    "controlplane.cluster.x-k8s.io": "v1alpha2",
    "infrastructure.cluster.x-k8s.io": "v1alpha1",
}
CLUSTER_NAME_LABEL = "cluster.x-k8s.io/cluster-name"
DEPLOYMENT_NAME_LABEL = "cluster.x-k8s.io/deployment-name"
SET_NAME_LABEL = "cluster.x-k8s.io/set-name"
TEMPLATE_HASH_LABEL = "machine-template-hash"
PAUSED_ANNOTATION = "cluster.x-k8s.io/paused"
DELETE_MACHINE_ANNOTATION = "cluster.x-k8s.io/delete-machine"
SKIP_PREFLIGHT_ANNOTATION = "machineset.cluster.x-k8s.io/skip-preflight-checks"
CLUSTER_FINALIZER = "cluster.cluster.x-k8s.io"
MACHINE_DEPLOYMENT_FINALIZER = "cluster.x-k8s.io/machinedeployment"
MACHINE_SET_FINALIZER = "cluster.x-k8s.io/machineset"
MACHINE_FINALIZER = "machine.cluster.x-k8s.io"
# Kubernetes' random name suffix alphabet (no vowels, no look-alikes).
NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
PHASES = ("", "Pending", "Provisioning", "Provisioned", "Running")


def resolve(obj: Manifest, reference: dict[str, Any] | None) -> Ref | None:
    """A v1beta2 reference (``apiGroup``, ``kind``, ``name``) in ``obj``'s namespace."""
    if not reference or reference.get("apiGroup") not in STORAGE_VERSIONS:
        return None
    group = reference["apiGroup"]
    api_version = f"{group}/{STORAGE_VERSIONS[group]}"
    return Ref(api_version, reference["kind"], reference["name"], namespace_of(obj))


def is_paused(cluster: Manifest, *objects: Manifest) -> bool:
    """``spec.paused`` on the Cluster, or the paused annotation on it or on the object."""
    return bool(dig(cluster, "spec", "paused")) or any(
        PAUSED_ANNOTATION in annotations_of(obj) for obj in (cluster, *objects)
    )


def paused_conditions(obj: Manifest) -> list[Manifest]:
    """§10.11: a paused object says so and changes nothing else."""
    kept = [
        entry for entry in dig(obj, "status", "conditions", default=[]) if entry["type"] != "Paused"
    ]
    return [*kept, condition("Paused", True, "Paused")]


def version_tuple(version: str | None) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", version or "")[:3])


def random_suffix() -> str:
    return "".join(random.choices(NAME_ALPHABET, k=5))  # noqa: S311 - names, not secrets


def summary(problems: dict[str, str]) -> str:
    """CAPI's aggregated messages: one ``* <what>: <why>`` line per problem."""
    return "\n".join(f"* {what}: {why}" for what, why in problems.items())


def not_(reason: str) -> str:
    return f"Not{reason}"


class CapiController(Controller):
    """Shared by the core kinds: v1beta2 conditions stamped with the generation."""

    def write(self, obj: Manifest, status: Manifest, desired: list[Manifest]) -> None:
        generation = generation_of(obj)
        stamped = [{**entry, "observedGeneration": generation} for entry in desired]
        status["conditions"] = merge_conditions(dig(obj, "status", "conditions"), stamped)
        status["observedGeneration"] = generation
        self.api.write_status(obj, status)

    def adopt(self, cluster: Manifest, obj: Manifest | None) -> Manifest | None:
        """Give ``obj`` the Cluster as owner and the cluster-name label, as CAPI does (§10.1)."""
        if obj is None or is_deleting(obj):
            return obj
        if is_owned_by(obj, cluster) and labels_of(obj).get(CLUSTER_NAME_LABEL) == name_of(cluster):
            return obj
        return self.api.patch(
            obj,
            "cluster-owner",
            {
                "metadata": {
                    "labels": {CLUSTER_NAME_LABEL: name_of(cluster)},
                    "ownerReferences": [owner_reference(cluster, controller=False)],
                }
            },
        )

    def cluster_of(self, obj: Manifest) -> Manifest | None:
        name = dig(obj, "spec", "clusterName") or labels_of(obj).get(CLUSTER_NAME_LABEL)
        return (
            self.cache.find(CLUSTER_API_VERSION, "Cluster", name, namespace_of(obj))
            if name
            else None
        )

    def of_cluster(self, kind: str, cluster_name: str, namespace: str) -> list[Manifest]:
        return self.cache.list(
            CLUSTER_API_VERSION, kind, namespace, {CLUSTER_NAME_LABEL: cluster_name}
        )

    def referenced(self, obj: Manifest, *path: str) -> Manifest | None:
        """The object a v1beta2 reference at ``path`` in ``obj`` names, if it exists."""
        reference = resolve(obj, dig(obj, *path))
        return self.cache.get(reference) if reference else None


# --- Cluster (§10.2, §10.10) -------------------------------------------------------------------


class ClusterParts(NamedTuple):
    """What a Cluster's status is made of, as seen on one pass."""

    control_plane: Manifest | None
    infrastructure: Manifest | None
    deployments: list[Manifest]
    machines: list[Manifest]
    infrastructure_provisioned: bool
    control_plane_initialized: bool


class ClusterController(CapiController):
    api_version = CLUSTER_API_VERSION
    kind = "Cluster"
    finalizer = CLUSTER_FINALIZER
    # It adopts these (owner reference): their changes wake it.
    owns = ((INFRASTRUCTURE_API_VERSION, "KubevirtCluster"),)
    wakes_on = ((CLUSTER_API_VERSION, "Machine"),)

    def reconcile(self, cluster: Manifest) -> float | None:
        status = self.status_of(cluster)
        if is_paused(cluster):
            self.write(cluster, status, paused_conditions(cluster))
            return None
        parts = self.parts(cluster)
        endpoint = self.copy_endpoint(cluster, parts)
        initialization = {
            key: True
            for key, value in (
                ("infrastructureProvisioned", parts.infrastructure_provisioned),
                ("controlPlaneInitialized", parts.control_plane_initialized),
            )
            if value
        }
        status |= {
            "phase": phase_of(cluster, parts, endpoint),
            "controlPlane": control_plane_counters(parts.control_plane),
            "workers": worker_counters(parts.deployments, parts.machines),
        }
        if initialization:
            status["initialization"] = initialization
        if failure := self.failure(cluster):
            status["deprecated"] = {
                "v1beta1": {"failureReason": "CreateError", "failureMessage": failure.text}
            }
        else:
            status.pop("deprecated", None)
        self.write(cluster, status, self.conditions(cluster, parts))
        return None

    def parts(self, cluster: Manifest) -> ClusterParts:
        """Adopt the control plane and infrastructure (§10.1), and gather what they say."""
        namespace, name = namespace_of(cluster), name_of(cluster)
        control_plane = self.adopt(cluster, self.referenced(cluster, "spec", "controlPlaneRef"))
        infrastructure = self.adopt(cluster, self.referenced(cluster, "spec", "infrastructureRef"))
        # Both facts are set once and never reset (§10.2).
        return ClusterParts(
            control_plane=control_plane,
            infrastructure=infrastructure,
            deployments=self.of_cluster("MachineDeployment", name, namespace),
            machines=self.of_cluster("Machine", name, namespace),
            infrastructure_provisioned=bool(
                dig(cluster, "status", "initialization", "infrastructureProvisioned")
                or dig(infrastructure, "status", "ready")
            ),
            control_plane_initialized=bool(
                dig(cluster, "status", "initialization", "controlPlaneInitialized")
                or dig(control_plane, "status", "initialization", "controlPlaneInitialized")
            ),
        )

    def copy_endpoint(self, cluster: Manifest, parts: ClusterParts) -> Manifest | None:
        """§10.5: fill ``spec.controlPlaneEndpoint`` once, from the infra object, else the KCP."""
        endpoint = dig(cluster, "spec", "controlPlaneEndpoint")
        if endpoint and endpoint.get("host"):
            return dict(endpoint)
        for source in (parts.infrastructure, parts.control_plane):
            candidate = dig(source, "spec", "controlPlaneEndpoint")
            if candidate and candidate.get("host") and candidate.get("port"):
                endpoint = {"host": candidate["host"], "port": candidate["port"]}
                self.api.patch(cluster, "endpoint", {"spec": {"controlPlaneEndpoint": endpoint}})
                return endpoint
        return None

    def conditions(self, cluster: Manifest, parts: ClusterParts) -> list[Manifest]:
        """§10.2 v1beta2 conditions; ``Available`` sums up the four that gate it."""
        initialized = parts.control_plane_initialized
        infra_kind = dig(cluster, "spec", "infrastructureRef", "kind", default="Infrastructure")
        cp_kind = dig(cluster, "spec", "controlPlaneRef", "kind", default="ControlPlane")
        if failure := self.failure(cluster):
            infra = condition("InfrastructureReady", False, "NotReady", failure.text)
        elif parts.infrastructure is None:
            message = f"{infra_kind} does not exist"
            infra = condition("InfrastructureReady", False, "DoesNotExist", message)
        elif parts.infrastructure_provisioned:
            infra = condition("InfrastructureReady", True, "Ready")
        else:
            message = f"{infra_kind} status.ready is false"
            infra = condition("InfrastructureReady", False, "NotReady", message)
        kubeconfig = self.cache.find(
            "v1", "Secret", f"{name_of(cluster)}-kubeconfig", namespace_of(cluster)
        )
        probe = (
            condition("RemoteConnectionProbe", True, "ProbeSucceeded")
            if initialized and kubeconfig
            else condition(
                "RemoteConnectionProbe",
                False,
                "ProbeFailed",
                "Remote connection not established yet",
            )
        )
        gates = [
            probe,
            infra,
            mirrored_available(parts.control_plane, cp_kind, initialized),
            aggregate(
                parts.deployments, "Available", "WorkersAvailable", "MachineDeployment", "NoWorkers"
            ),
        ]
        unavailable = {
            entry["type"]: entry["message"] or entry["reason"]
            for entry in gates
            if entry["status"] != "True"
        }
        available = (
            condition("Available", False, "NotAvailable", summary(unavailable))
            if unavailable
            else condition("Available", True, "Available")
        )
        return [
            available,
            *gates,
            condition(
                "ControlPlaneInitialized",
                initialized,
                "Initialized" if initialized else "NotInitialized",
                "" if initialized else "Control plane not yet initialized",
            ),
            # Kamaji runs no control-plane Machines (§10.2).
            condition("ControlPlaneMachinesReady", True, "NoReplicas"),
            condition("ControlPlaneMachinesUpToDate", True, "NoReplicas"),
            aggregate(parts.machines, "Ready", "WorkerMachinesReady", "Machine", "NoReplicas"),
            aggregate(
                parts.machines, "UpToDate", "WorkerMachinesUpToDate", "Machine", "NoReplicas"
            ),
            *(
                rolled_up(parts.deployments, kind)
                for kind in ("RollingOut", "ScalingUp", "ScalingDown")
            ),
            condition("Remediating", False, "NotRemediating"),
            condition("Deleting", False, "NotDeleting"),
            condition("Paused", False, "NotPaused"),
        ]

    def finalize(self, cluster: Manifest) -> float | None:
        """§10.10: workers first, then the control plane, then the infrastructure."""
        namespace, name = namespace_of(cluster), name_of(cluster)
        workers = [
            obj
            for kind in ("MachineDeployment", "MachineSet", "Machine")
            for obj in self.of_cluster(kind, name, namespace)
        ]
        steps: list[tuple[str, list[Manifest | None]]] = [
            ("WaitingForWorkersDeletion", [*workers]),
            (
                "WaitingForControlPlaneDeletion",
                [self.referenced(cluster, "spec", "controlPlaneRef")],
            ),
            (
                "WaitingForInfrastructureDeletion",
                [self.referenced(cluster, "spec", "infrastructureRef")],
            ),
        ]
        for reason, found in steps:
            remaining = [obj for obj in found if obj]
            if remaining:
                for obj in remaining:
                    if not is_deleting(obj):
                        self.api.delete(Ref.of(obj))
                message = summary({obj["kind"]: name_of(obj) for obj in remaining})
                self.write_deleting(cluster, reason, message)
                return self.step(cluster, "cluster")
        if wait := self.wait(cluster, "finalizing", "cluster"):
            self.write_deleting(cluster, "DeletionCompleted", "")
            return wait
        self.release(cluster)
        return None

    def write_deleting(self, cluster: Manifest, reason: str, message: str) -> None:
        status = {**self.status_of(cluster), "phase": "Deleting"}
        kept = [
            entry
            for entry in status.get("conditions", [])
            if entry["type"] not in ("Deleting", "Available")
        ]
        self.write(
            cluster,
            status,
            [
                condition(
                    "Available", False, "NotAvailable", summary({"Deleting": "Cluster is deleting"})
                ),
                *kept,
                condition("Deleting", True, reason, message),
            ],
        )

    def wake(self, machine: Manifest) -> Iterable[Ref]:
        if cluster := labels_of(machine).get(CLUSTER_NAME_LABEL):
            yield self.ref(cluster, namespace_of(machine))


def phase_of(cluster: Manifest, parts: ClusterParts, endpoint: Manifest | None) -> str:
    """§10.2: the last matching rule wins."""
    phase = "Pending"
    if dig(cluster, "spec", "controlPlaneRef") or dig(cluster, "spec", "infrastructureRef"):
        phase = "Provisioning"
    if (
        parts.infrastructure_provisioned
        and endpoint
        and endpoint.get("host")
        and endpoint.get("port")
    ):
        phase = "Provisioned"
    if is_deleting(cluster):
        phase = "Deleting"
    return phase


def control_plane_counters(control_plane: Manifest | None) -> Manifest:
    """§10.2: ``status.controlPlane`` copied from the KCP (with Kamaji: pods, not Machines)."""
    status = dig(control_plane, "status", default={})
    counters = {
        "desiredReplicas": dig(control_plane, "spec", "replicas"),
        **{
            key: status.get(key)
            for key in ("replicas", "readyReplicas", "availableReplicas", "upToDateReplicas")
        },
    }
    return {key: value for key, value in counters.items() if value is not None}


def worker_counters(deployments: list[Manifest], machines: list[Manifest]) -> Manifest:
    return {
        "desiredReplicas": sum(int(dig(md, "spec", "replicas", default=0)) for md in deployments),
        "replicas": len(machines),
        "readyReplicas": sum(is_true(m, "Ready") for m in machines),
        "availableReplicas": sum(is_true(m, "Available") for m in machines),
        "upToDateReplicas": sum(is_true(m, "UpToDate") for m in machines),
    }


def mirrored_available(control_plane: Manifest | None, kind: str, initialized: bool) -> Manifest:
    """§10.2 ``ControlPlaneAvailable``: the KCP's ``Available``, or "initialized" without one."""
    if control_plane is None:
        return condition("ControlPlaneAvailable", False, "DoesNotExist", f"{kind} does not exist")
    for entry in dig(control_plane, "status", "conditions", default=[]):
        if entry.get("type") == "Available":
            return condition(
                "ControlPlaneAvailable",
                entry["status"] == "True",
                entry["reason"],
                entry.get("message", ""),
            )
    if initialized:
        return condition("ControlPlaneAvailable", True, "Available")
    return condition("ControlPlaneAvailable", False, "NotAvailable", f"{kind} is not initialized")


def aggregate(
    objects: list[Manifest], source: str, target: str, kind: str, no_objects: str
) -> Manifest:
    """A condition summarising ``source`` over ``objects`` (CAPI's aggregation, simplified)."""
    if not objects:
        return condition(target, True, no_objects)
    positive = {"Available": "Available", "Ready": "Ready", "UpToDate": "UpToDate"}[source]
    failing = {
        f"{kind} {name_of(obj)}": f"{source} is not True"
        for obj in objects
        if not is_true(obj, source)
    }
    if failing:
        return condition(target, False, not_(positive), summary(failing))
    return condition(target, True, positive)


def rolled_up(deployments: list[Manifest], kind: str) -> Manifest:
    """``RollingOut``/``ScalingUp``/``ScalingDown``: True when any MachineDeployment's is."""
    active = {
        f"MachineDeployment {name_of(md)}": condition_of(md, kind).get("message", "")
        for md in deployments
        if is_true(md, kind)
    }
    if active:
        return condition(kind, True, kind, summary(active))
    return condition(kind, False, not_(kind))


# --- MachineDeployment and MachineSet (§10.6, §10.9) -------------------------------------------


def template_hash(md: Manifest) -> str:
    return str(int(fingerprint(dig(md, "spec", "template", default={}), 8), 16))


def replicas_of(obj: Manifest) -> int:
    return int(dig(obj, "spec", "replicas", default=0))


def counter(obj: Manifest, field: str) -> int:
    return int(dig(obj, "status", field, default=0))


def rollout_limits(md: Manifest, desired: int) -> tuple[int, int]:
    """(maxSurge, maxUnavailable), numbers or percentages of ``desired``; defaults 1 and 0."""
    rolling = dig(md, "spec", "rollout", "strategy", "rollingUpdate", default={})

    def resolve_value(value: Any, default: int, *, round_up: bool) -> int:
        if value is None:
            return default
        if isinstance(value, str) and value.endswith("%"):
            share = desired * int(value[:-1]) / 100
            return int(-(-share // 1)) if round_up else int(share)
        return int(value)

    surge = resolve_value(rolling.get("maxSurge"), 1, round_up=True)
    unavailable = resolve_value(rolling.get("maxUnavailable"), 0, round_up=False)
    return (surge or (0 if unavailable else 1)), unavailable


class MachineDeploymentController(CapiController):
    api_version = CLUSTER_API_VERSION
    kind = "MachineDeployment"
    finalizer = MACHINE_DEPLOYMENT_FINALIZER
    owns = ((CLUSTER_API_VERSION, "MachineSet"),)
    wakes_on = ((CLUSTER_API_VERSION, "Machine"),)

    def reconcile(self, md: Manifest) -> float | None:
        cluster = self.cluster_of(md)
        if cluster is not None:
            md = self.adopt(cluster, md) or md
            for field in (("bootstrap", "configRef"), ("infrastructureRef",)):
                self.adopt(cluster, self.referenced(md, "spec", "template", "spec", *field))
            if is_paused(cluster, md):
                self.write(md, self.status_of(md), paused_conditions(md))
                return None
        desired = dig(md, "spec", "replicas")
        sets = [
            ms
            for ms in self.api.list(
                CLUSTER_API_VERSION,
                "MachineSet",
                namespace_of(md),
                {DEPLOYMENT_NAME_LABEL: name_of(md)},
            )
            if is_owned_by(ms, md)
        ]
        current = next(
            (
                ms
                for ms in sets
                if labels_of(ms).get(TEMPLATE_HASH_LABEL) == template_hash(md)
                and not is_deleting(ms)
            ),
            None,
        )
        old = [ms for ms in sets if ms is not current]
        if current is None and desired is not None:
            self.api.own(machine_set_for(md, 0 if old else int(desired)))
            return None  # the new MachineSet wakes it
        if current is not None and desired is not None:
            self.roll_out(md, current, old, int(desired))
        self.write_status(md, current, sets)
        return None

    def roll_out(self, md: Manifest, current: Manifest, old: list[Manifest], desired: int) -> None:
        """Scale the current MachineSet to ``desired``; during a rolling update, trade old
        Machines for new ones within maxSurge/maxUnavailable (§10.9)."""
        if not old:
            self.scale(current, desired)
            return
        surge, unavailable = rollout_limits(md, desired)
        total = replicas_of(current) + sum(replicas_of(ms) for ms in old)
        if replicas_of(current) < desired and (room := desired + surge - total) > 0:
            self.scale(current, min(desired, replicas_of(current) + room))
        available = counter(current, "availableReplicas") + sum(
            counter(ms, "availableReplicas") for ms in old
        )
        budget = max(0, available - (desired - unavailable))
        for ms in sorted(old, key=lambda each: each["metadata"]["creationTimestamp"]):
            unhealthy = max(0, replicas_of(ms) - counter(ms, "availableReplicas"))
            remove = min(replicas_of(ms), unhealthy + budget)
            budget -= max(0, remove - unhealthy)
            if remove:
                self.scale(ms, replicas_of(ms) - remove)
            if (
                replicas_of(ms) - remove == 0
                and counter(ms, "replicas") == 0
                and not is_deleting(ms)
            ):
                self.api.delete(Ref.of(ms))

    def scale(self, ms: Manifest, replicas: int) -> None:
        if replicas_of(ms) != replicas:
            self.api.patch(ms, "scale", {"spec": {"replicas": replicas}})

    def write_status(self, md: Manifest, current: Manifest | None, sets: list[Manifest]) -> None:
        desired = dig(md, "spec", "replicas")
        replicas = sum(counter(ms, "replicas") for ms in sets)
        ready = sum(counter(ms, "readyReplicas") for ms in sets)
        available = sum(counter(ms, "availableReplicas") for ms in sets)
        up_to_date = counter(current, "upToDateReplicas") if current else 0
        if desired is None:
            phase = "Unknown"
        elif is_deleting(md) or replicas > desired:
            phase = "ScalingDown"
        else:
            phase = "ScalingUp" if replicas < desired else "Running"
        wanted = int(desired or 0)
        _, max_unavailable = rollout_limits(md, wanted)
        needed = max(0, wanted - max_unavailable)
        outdated = [ms for ms in sets if ms is not current and counter(ms, "replicas")]
        blockers = condition_of(current, "ScalingUp").get("message", "") if current else ""
        status = {
            **self.status_of(md),
            "phase": phase,
            "replicas": replicas,
            "readyReplicas": ready,
            "availableReplicas": available,
            "upToDateReplicas": up_to_date,
            "selector": selector_string(dig(md, "spec", "selector", "matchLabels", default={})),
            "deprecated": {
                "v1beta1": {
                    "readyReplicas": ready,
                    "availableReplicas": available,
                    "updatedReplicas": up_to_date,
                    "unavailableReplicas": max(0, wanted - available),
                }
            },
        }
        version = dig(md, "spec", "template", "spec", "version", default="")
        old_versions = sorted(
            {dig(ms, "spec", "template", "spec", "version", default="") for ms in outdated} - {""}
        )
        rolling_message = (
            f"Rolling out {sum(counter(ms, 'replicas') for ms in outdated)} not up-to-date replicas"
        )
        if old_versions and version and old_versions != [version]:
            rolling_message += "\n" + summary(
                {"Version": f"{', '.join(old_versions)}, {version} required"}
            )
        self.write(
            md,
            status,
            [
                condition(
                    "Available",
                    available >= needed,
                    "Available" if available >= needed else "NotAvailable",
                    ""
                    if available >= needed
                    else f"{available} available replicas, at least {needed} required (spec.strategy.rollout.maxUnavailable is {max_unavailable}, spec.replicas is {wanted})",
                ),
                aggregate_counts("MachinesReady", "Ready", replicas, ready),
                aggregate_counts("MachinesUpToDate", "UpToDate", replicas, up_to_date),
                condition(
                    "RollingOut",
                    bool(outdated),
                    "RollingOut" if outdated else "NotRollingOut",
                    rolling_message if outdated else "",
                ),
                condition(
                    "ScalingUp",
                    replicas < wanted,
                    "ScalingUp" if replicas < wanted else "NotScalingUp",
                    "\n".join(
                        filter(None, [f"Scaling up from {replicas} to {wanted} replicas", blockers])
                    )
                    if replicas < wanted
                    else "",
                ),
                condition(
                    "ScalingDown",
                    replicas > wanted,
                    "ScalingDown" if replicas > wanted else "NotScalingDown",
                    f"Scaling down from {replicas} to {wanted} replicas"
                    if replicas > wanted
                    else "",
                ),
                condition("Remediating", False, "NotRemediating"),
                condition(
                    "Deleting", is_deleting(md), "Deleting" if is_deleting(md) else "NotDeleting"
                ),
                condition("Paused", False, "NotPaused"),
            ],
        )

    def finalize(self, md: Manifest) -> float | None:
        self.write_status(
            md,
            None,
            [
                ms
                for ms in self.cache.list(CLUSTER_API_VERSION, "MachineSet", namespace_of(md))
                if is_owned_by(ms, md)
            ],
        )
        return super().finalize(md)

    def wake(self, machine: Manifest) -> Iterable[Ref]:
        if deployment := labels_of(machine).get(DEPLOYMENT_NAME_LABEL):
            yield self.ref(deployment, namespace_of(machine))


def aggregate_counts(type_: str, positive: str, total: int, good: int) -> Manifest:
    if not total:
        return condition(type_, True, "NoReplicas")
    if good < total:
        return condition(
            type_, False, not_(positive), f"{total - good} of {total} Machines are not {positive}"
        )
    return condition(type_, True, positive)


def machine_set_for(md: Manifest, replicas: int) -> Manifest:
    """§10.1: ``<md>-<5 random>``, labelled with the template hash, controlled by the MD."""
    template = dig(md, "spec", "template", default={})
    hash_ = template_hash(md)
    identity = {
        CLUSTER_NAME_LABEL: dig(md, "spec", "clusterName"),
        DEPLOYMENT_NAME_LABEL: name_of(md),
        TEMPLATE_HASH_LABEL: hash_,
    }
    template_metadata = template.get("metadata") or {}
    spec: Manifest = {
        "clusterName": dig(md, "spec", "clusterName"),
        "replicas": replicas,
        "selector": {
            "matchLabels": {
                **dig(md, "spec", "selector", "matchLabels", default={}),
                TEMPLATE_HASH_LABEL: hash_,
            }
        },
        "template": {
            "metadata": {
                **template_metadata,
                "labels": {**(template_metadata.get("labels") or {}), **identity},
            },
            "spec": template.get("spec") or {},
        },
    }
    if deletion := dig(md, "spec", "deletion", "order"):
        spec["deletion"] = {"order": deletion}
    return {
        "apiVersion": CLUSTER_API_VERSION,
        "kind": "MachineSet",
        "metadata": {
            "name": f"{name_of(md)}-{random_suffix()}",
            "namespace": namespace_of(md),
            "labels": {**(template_metadata.get("labels") or {}), **identity},
            "ownerReferences": [owner_reference(md)],
        },
        "spec": spec,
    }


class MachineSetController(CapiController):
    api_version = CLUSTER_API_VERSION
    kind = "MachineSet"
    finalizer = MACHINE_SET_FINALIZER
    owns = ((CLUSTER_API_VERSION, "Machine"),)
    # The control plane's version decides the preflight checks.
    wakes_on = ((CONTROL_PLANE_API_VERSION, "KamajiControlPlane"),)

    def reconcile(self, ms: Manifest) -> float | None:
        desired = replicas_of(ms)
        machines = [
            m
            for m in self.api.list(
                CLUSTER_API_VERSION, "Machine", namespace_of(ms), {SET_NAME_LABEL: name_of(ms)}
            )
            if is_owned_by(m, ms)
        ]
        active = [m for m in machines if not is_deleting(m)]
        blockers = ""
        if len(active) < desired:
            blockers = self.preflight(ms)
            if not blockers:
                for _ in range(desired - len(active)):
                    machines.append(self.api.own(machine_for(ms)))
        elif len(active) > desired:
            for machine in victims(ms, active, len(active) - desired):
                self.api.delete(Ref.of(machine))
        self.write_status(ms, machines, blockers)
        return None

    def preflight(self, ms: Manifest) -> str:
        """§10.7: why new Machines must wait for the control plane, or "" to go ahead."""
        cluster = self.cluster_of(ms)
        reference = cluster and resolve(cluster, dig(cluster, "spec", "controlPlaneRef"))
        control_plane = reference and self.cache.get(reference)
        if SKIP_PREFLIGHT_ANNOTATION in annotations_of(ms) or not control_plane:
            return ""
        what = f"{control_plane['kind']} {namespace_of(control_plane)}/{name_of(control_plane)}"
        wanted = version_tuple(dig(control_plane, "spec", "version"))
        running = version_tuple(dig(control_plane, "status", "version"))
        machine_version = version_tuple(dig(ms, "spec", "template", "spec", "version"))
        problems = []
        if not running:
            problems.append(
                f'{what} is provisioning ("ControlPlaneIsStable" preflight check failed)'
            )
        elif running != wanted:
            problems.append(f'{what} is upgrading ("ControlPlaneIsStable" preflight check failed)')
        if machine_version and wanted and machine_version > wanted:
            problems.append(
                'MachineSet version is higher than the control plane version ("ControlPlaneVersionSkew" preflight check failed)'
            )
        if machine_version and wanted and machine_version[:2] != wanted[:2]:
            problems.append(
                'MachineSet minor version differs from the control plane minor version ("KubeadmVersionSkew" preflight check failed)'
            )
        if not problems:
            return ""
        return "Scaling up would be blocked because:\n" + "\n".join(
            f"* {problem}" for problem in problems
        )

    def write_status(self, ms: Manifest, machines: list[Manifest], blockers: str) -> None:
        desired = replicas_of(ms)
        replicas = len(machines)
        ready = sum(is_true(m, "Ready") for m in machines)
        available = sum(is_true(m, "Available") for m in machines)
        up_to_date = sum(is_true(m, "UpToDate") for m in machines)
        scaling_up = replicas < desired or bool(blockers)
        self.write(
            ms,
            {
                **self.status_of(ms),
                "replicas": replicas,
                "readyReplicas": ready,
                "availableReplicas": available,
                "upToDateReplicas": up_to_date,
                "selector": selector_string(dig(ms, "spec", "selector", "matchLabels", default={})),
            },
            [
                aggregate_counts("MachinesReady", "Ready", replicas, ready),
                aggregate_counts("MachinesUpToDate", "UpToDate", replicas, up_to_date),
                condition(
                    "ScalingUp",
                    scaling_up,
                    "ScalingUp" if scaling_up else "NotScalingUp",
                    "\n".join(
                        filter(
                            None,
                            [
                                f"Scaling up from {replicas} to {desired} replicas"
                                if scaling_up
                                else "",
                                blockers,
                            ],
                        )
                    ),
                ),
                condition(
                    "ScalingDown",
                    replicas > desired,
                    "ScalingDown" if replicas > desired else "NotScalingDown",
                    f"Scaling down from {replicas} to {desired} replicas"
                    if replicas > desired
                    else "",
                ),
                condition("Remediating", False, "NotRemediating"),
                condition(
                    "Deleting", is_deleting(ms), "Deleting" if is_deleting(ms) else "NotDeleting"
                ),
                condition("Paused", False, "NotPaused"),
            ],
        )

    def wake(self, control_plane: Manifest) -> Iterable[Ref]:
        if cluster := labels_of(control_plane).get(CLUSTER_NAME_LABEL):
            for ms in self.runtime.store.list(
                CLUSTER_API_VERSION,
                "MachineSet",
                namespace_of(control_plane),
                {CLUSTER_NAME_LABEL: cluster},
            ):
                yield Ref.of(ms)


def victims(ms: Manifest, machines: list[Manifest], count: int) -> list[Manifest]:
    """Which Machines a scale-down removes (§10.9): those annotated ``delete-machine`` first,
    then by ``spec.deletion.order`` (Random by default, not-ready ones first)."""
    order = dig(ms, "spec", "deletion", "order", default="Random")
    shuffled = random.sample(machines, len(machines))

    def priority(machine: Manifest) -> tuple[bool, ...]:
        marked = DELETE_MACHINE_ANNOTATION in annotations_of(machine)
        return (not marked, is_true(machine, "Ready"))

    if order == "Oldest":
        shuffled.sort(key=lambda m: m["metadata"]["creationTimestamp"])
    elif order == "Newest":
        shuffled.sort(key=lambda m: m["metadata"]["creationTimestamp"], reverse=True)
    return sorted(shuffled, key=priority)[:count]


def machine_for(ms: Manifest) -> Manifest:
    """§10.1: ``<ms>-<5 random>``; the bootstrap config and infra machine it refers to are
    named like it (clones of the templates)."""
    name = f"{name_of(ms)}-{random_suffix()}"
    template = dig(ms, "spec", "template", default={})
    spec = dict(template.get("spec") or {})

    def cloned(reference: Manifest) -> Manifest:
        return {**reference, "kind": reference["kind"].removesuffix("Template"), "name": name}

    if reference := dig(spec, "bootstrap", "configRef"):
        spec["bootstrap"] = {**spec["bootstrap"], "configRef": cloned(reference)}
    spec["infrastructureRef"] = cloned(spec["infrastructureRef"])
    metadata = template.get("metadata") or {}
    return {
        "apiVersion": CLUSTER_API_VERSION,
        "kind": "Machine",
        "metadata": {
            "name": name,
            "namespace": namespace_of(ms),
            "labels": {**(metadata.get("labels") or {}), SET_NAME_LABEL: name_of(ms)},
            "annotations": dict(metadata.get("annotations") or {}),
            "ownerReferences": [owner_reference(ms)],
        },
        "spec": spec,
    }


# --- Machine (§10.7) ----------------------------------------------------------------------------


class MachineController(CapiController):
    api_version = CLUSTER_API_VERSION
    kind = "Machine"
    finalizer = MACHINE_FINALIZER
    finalize_step = "machine"
    wakes_on = ((CLUSTER_API_VERSION, "Cluster"), (CLUSTER_API_VERSION, "MachineDeployment"))

    def reconcile(self, machine: Manifest) -> float | None:
        cluster = self.cluster_of(machine)
        if cluster is not None and is_paused(cluster, machine):
            self.write(machine, self.status_of(machine), paused_conditions(machine))
            return None
        phase = dig(machine, "status", "phase", default="")
        failure = self.failure(machine)
        # The bootstrap data waits for the control plane (KubeadmConfig, §10.7); an injected
        # failure stops the infrastructure from ever being provisioned.
        blocked = (phase == "Pending" and not is_true(cluster, "ControlPlaneInitialized")) or (
            phase == "Provisioning" and failure
        )
        wait = 0.0
        if phase != "Running" and not blocked:
            wait = self.wait(machine, phase or "new", "machine", fraction=1.0 if phase else 0.0)
            if not wait:
                phase = self.advance(machine, PHASES[PHASES.index(phase) + 1])
        self.write_status(machine, phase, cluster)
        return wait or None

    def advance(self, machine: Manifest, phase: str) -> str:
        """The side effects of entering ``phase`` (what the providers write on the Machine)."""
        if phase == "Provisioning":
            self.api.patch(
                machine, "bootstrap", {"spec": {"bootstrap": {"dataSecretName": name_of(machine)}}}
            )
        elif phase == "Provisioned":
            self.api.patch(
                machine, "provider-id", {"spec": {"providerID": f"kubevirt://{name_of(machine)}"}}
            )
        return phase

    def write_status(self, machine: Manifest, phase: str, cluster: Manifest | None) -> None:
        reached = PHASES.index(phase)
        running = phase == "Running"
        failure = self.failure(machine)
        provider_id = f"kubevirt://{name_of(machine)}"
        status = {**self.status_of(machine), "phase": phase or "Pending"}
        if status.get("phase") != dig(machine, "status", "phase") or "lastUpdated" not in status:
            status["lastUpdated"] = now()
        initialization = {
            key: True
            for key, needed in (
                ("bootstrapDataSecretCreated", "Provisioning"),
                ("infrastructureProvisioned", "Provisioned"),
            )
            if reached >= PHASES.index(needed)
        }
        if initialization:
            status["initialization"] = initialization
        if reached >= PHASES.index("Provisioned"):
            # CAPK copies the VM's name and its VMI's addresses (§10.8).
            address = kubeovn.worker_address(
                self.api, self.cache, name_of(machine), namespace_of(machine)
            )
            status["addresses"] = [
                {"type": "Hostname", "address": name_of(machine)},
                {"type": "InternalDNS", "address": name_of(machine)},
                *([{"type": "InternalIP", "address": address}] if address else []),
            ]
        if running:
            status["nodeRef"] = {"name": name_of(machine)}
            status["nodeInfo"] = node_info(machine)
        if failure:
            status["deprecated"] = {
                "v1beta1": {"failureReason": "CreateError", "failureMessage": failure.text}
            }
        bootstrap_ready = reached >= PHASES.index("Provisioning")
        infra_ready = reached >= PHASES.index("Provisioned")
        if failure and not infra_ready:
            infra = condition("InfrastructureReady", False, "NotReady", failure.text)
        else:
            infra = condition(
                "InfrastructureReady",
                infra_ready,
                "Ready" if infra_ready else "NotReady",
                "" if infra_ready else "KubevirtMachine status.ready is false",
            )
        node_missing = f"Waiting for a Node with spec.providerID {provider_id} to exist"
        bootstrap = (
            condition("BootstrapConfigReady", True, "Ready")
            if bootstrap_ready
            else condition(
                "BootstrapConfigReady",
                False,
                "NotReady",
                "KubeadmConfig status.initialization.dataSecretCreated is false",
            )
        )
        problems = {
            entry["type"]: entry["message"]
            for entry in (bootstrap, infra)
            if entry["status"] != "True"
        }
        if not running:
            problems["NodeHealthy"] = node_missing
        self.write(
            machine,
            status,
            [
                condition(
                    "Available",
                    running,
                    "Available" if running else "NotAvailable",
                    "" if running else summary({"Ready": "Machine is not Ready"}),
                ),
                condition("Ready", running, "Ready" if running else "NotReady", summary(problems)),
                self.up_to_date(machine),
                bootstrap,
                infra,
                condition(
                    "NodeHealthy",
                    running,
                    "NodeHealthy" if running else "NodeDoesNotExist",
                    "" if running else node_missing,
                ),
                condition(
                    "NodeReady",
                    running,
                    "KubeletReady" if running else "NodeDoesNotExist",
                    "kubelet is posting ready status" if running else node_missing,
                ),
                condition("Deleting", False, "NotDeleting"),
                condition("Paused", False, "NotPaused"),
            ],
        )

    def up_to_date(self, machine: Manifest) -> Manifest:
        """Up to date when it belongs to its MachineDeployment's current template."""
        deployment = labels_of(machine).get(DEPLOYMENT_NAME_LABEL)
        md = deployment and self.cache.find(
            CLUSTER_API_VERSION, "MachineDeployment", deployment, namespace_of(machine)
        )
        if not md or labels_of(machine).get(TEMPLATE_HASH_LABEL) == template_hash(md):
            return condition("UpToDate", True, "UpToDate")
        old, new = (
            dig(machine, "spec", "version", default=""),
            dig(md, "spec", "template", "spec", "version", default=""),
        )
        message = (
            summary({"Version": f"{old}, {new} required"})
            if old != new
            else summary({"Template": "spec.template changed"})
        )
        return condition("UpToDate", False, "NotUpToDate", message)

    def finalize(self, machine: Manifest) -> float | None:
        """§10.10: the node is drained and the infrastructure deleted, then it goes."""
        if wait := self.wait(machine, "Deleting", "machine"):
            status = {**self.status_of(machine), "phase": "Deleting"}
            kept = [entry for entry in status.get("conditions", []) if entry["type"] != "Deleting"]
            self.write(
                machine,
                status,
                [
                    *kept,
                    condition(
                        "Deleting",
                        True,
                        "DrainingNode",
                        f"Drain not completed yet (started at {now()})",
                    ),
                ],
            )
            return wait
        # CAPK deleted the worker's VM: its address goes back to the subnet.
        kubeovn.release(self.api, name_of(machine), namespace_of(machine))
        self.release(machine)
        return None

    def wake(self, obj: Manifest) -> Iterable[Ref]:
        label = CLUSTER_NAME_LABEL if obj["kind"] == "Cluster" else DEPLOYMENT_NAME_LABEL
        for machine in self.runtime.store.list(
            CLUSTER_API_VERSION, "Machine", namespace_of(obj), {label: name_of(obj)}
        ):
            yield Ref.of(machine)


def node_info(machine: Manifest) -> Manifest:
    """A full NodeSystemInfo (the schema wants every field when present)."""
    version = dig(machine, "spec", "version", default="v0.0.0")
    identity = uid_of(machine)
    return {
        "architecture": "amd64",
        "bootID": identity,
        "containerRuntimeVersion": "containerd://2.1.4",
        "kernelVersion": "6.8.0-85-generic",
        "kubeProxyVersion": version,
        "kubeletVersion": version,
        "machineID": identity.replace("-", ""),
        "operatingSystem": "linux",
        "osImage": "Ubuntu 24.04.3 LTS",
        "systemUUID": identity,
    }
