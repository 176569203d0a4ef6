"""KubeVirt: ``VirtualMachine`` → ``VirtualMachineInstance``, and their status (STATUS.md §3–§5).

One controller plays virt-controller and virt-handler for a VM: it creates the VM's
DataVolumes from ``dataVolumeTemplates`` (owned by the VM), runs the VMI the
``runStrategy`` asks for (``status.stateChangeRequests`` for Manual/RerunOnFailure), walks
the VMI through ``Pending → Scheduling → Scheduled → Running`` with its addresses from
Kube-OVN, and summarises it all in the VM's ``printableStatus``. Stopping deletes the VMI,
whose finalizer holds it in ``Stopping`` for a step; deleting the VMI of a running VM is a
restart (§5 "Fallback without virt-api").

Injected failures (``simulator.butler.io/fail`` on the VM): ``ErrorUnschedulable`` (the
default: the VMI never gets scheduled) or ``CrashLoopBackOff: <message>`` (every VMI fails
and the VM backs off between attempts, counting them in ``status.startFailure``).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from typing import TYPE_CHECKING, NamedTuple

from butler_portal.simulator import kubeovn
from butler_portal.simulator.base import Controller
from butler_portal.simulator.cdi import API_VERSION as CDI_API_VERSION
from butler_portal.simulator.config import Failure
from butler_portal.simulator.objects import (
    Manifest,
    Ref,
    condition,
    condition_status,
    dig,
    generation_of,
    is_deleting,
    is_true,
    later,
    merge_conditions,
    name_of,
    namespace_of,
    now,
    owner_reference,
    uid_of,
)

if TYPE_CHECKING:
    from butler_portal.simulator.runtime import Runtime

API_VERSION = "kubevirt.io/v1"
VM_FINALIZER = "kubevirt.io/virtualMachineControllerFinalize"
VMI_FINALIZER = "foregroundDeleteVirtualMachine"
UNSCHEDULABLE, CRASH_LOOP = "ErrorUnschedulable", "CrashLoopBackOff"
FINAL_PHASES = ("Succeeded", "Failed")
# Longest crash-loop back-off, in VM steps (KubeVirt doubles it from 10 s up to 5 min).
MAX_BACKOFF_STEPS = 8
# The VMI walks Pending → Scheduling → Scheduled → Running, a third of a VM step each.
INSTANCE_STEP = 1 / 3


class Run(NamedTuple):
    """What following the run strategy did."""

    vmi: Manifest | None  # the VMI to report on (a new one is already "Starting")
    wait: float | None = None  # seconds before trying again (crash-loop back-off)
    status: Manifest = {}  # the VM status fields it changed (never mutated)


def run_strategy(vm: Manifest) -> str:
    """§3: ``spec.runStrategy``, or the deprecated ``spec.running`` as Always/Halted."""
    spec = vm.get("spec") or {}
    if strategy := spec.get("runStrategy"):
        return str(strategy)
    return "Always" if spec.get("running") else "Halted"


class VirtualMachineController(Controller):
    api_version = API_VERSION
    kind = "VirtualMachine"
    finalizer = VM_FINALIZER
    finalize_step = "vm"
    owns = ((API_VERSION, "VirtualMachineInstance"), (CDI_API_VERSION, "DataVolume"))
    wakes_on = ((kubeovn.API_VERSION, "Subnet"),)

    def __init__(self, runtime: Runtime) -> None:
        super().__init__(runtime)
        self._ran_once: set[str] = set()  # VMs with runStrategy Once that have run

    # --- Reconcile -----------------------------------------------------------------------

    def reconcile(self, vm: Manifest) -> float | None:
        volumes = self.data_volumes(vm)
        vmi = self.instance_of(vm)
        # The instance first: one that just failed is then replaced in this same pass.
        advancing = self.advance_instance(vm, vmi, volumes) if vmi is not None else None
        run = self.run_as_asked(vm, vmi, volumes)
        self.write_status(vm, run.vmi, volumes, run.status)
        waits = [wait for wait in (advancing, run.wait) if wait]
        return min(waits) if waits else None

    def finalize(self, vm: Manifest) -> float | None:
        vmi = self.instance_of(vm)
        self.write_status(vm, vmi, self.data_volumes(vm, create=False), {})
        if vmi is not None:
            if not is_deleting(vmi):
                self.api.delete(Ref.of(vmi))
                return None
            return self.advance_instance(vm, vmi, [])
        # Kube-OVN keeps a VM's address across restarts and frees it with the VM (§7).
        kubeovn.release(self.api, name_of(vm), namespace_of(vm))
        return super().finalize(vm)

    def wake(self, subnet: Manifest) -> Iterable[Ref]:
        """A subnet became ready or changed: VMs on it may get their address now (those in
        the namespaces it serves, or attached to the secondary network it backs)."""
        namespaces = set(dig(subnet, "spec", "namespaces", default=[]))
        provider = dig(subnet, "spec", "provider", default=kubeovn.DEFAULT_PROVIDER)
        for vm in self.runtime.store.list(API_VERSION, "VirtualMachine"):
            networks = dig(vm, "spec", "template", "spec", "networks", default=[])
            if namespace_of(vm) in namespaces or provider in providers_of(
                networks, namespace_of(vm)
            ):
                yield Ref.of(vm)

    # --- The run strategy (§3, §5) --------------------------------------------------------

    def wants_instance(self, vm: Manifest, vmi: Manifest | None) -> bool:
        requests: list[str] = [
            each.get("action") for each in dig(vm, "status", "stateChangeRequests", default=[])
        ]
        if requests:
            return requests[-1] == "Start"
        phase: str | None = dig(vmi, "status", "phase")
        match run_strategy(vm):
            case "Always":
                return True
            case "RerunOnFailure":
                return phase != "Succeeded"  # a guest that shut itself down stays off
            case "Once":
                return uid_of(vm) not in self._ran_once or vmi is not None
            case "Manual":
                return vmi is not None and phase not in FINAL_PHASES
            case _:  # Halted (and WaitingForReceiver, which the simulator does not play)
                return False

    def run_as_asked(self, vm: Manifest, vmi: Manifest | None, volumes: list[Manifest]) -> Run:
        """Create or delete the VMI as the run strategy (and any Start/Stop request) asks."""
        # Start/Stop requests, once acted on, leave the list.
        handled: Manifest = (
            {"stateChangeRequests": []} if dig(vm, "status", "stateChangeRequests") else {}
        )
        if not self.wants_instance(vm, vmi):
            if vmi is not None and not is_deleting(vmi):
                self.api.delete(Ref.of(vmi))  # Stopping: its finalizer holds it a step
            return Run(vmi, status=handled)
        if vmi is None:
            if importing(volumes):
                return Run(None)  # Provisioning: the DataVolumes' progress wakes the VM
            if wait := self.backing_off(vm):
                return Run(None, wait=wait)
            return Run(self.start_instance(vm), status=handled)
        phase = dig(vmi, "status", "phase")
        if phase in FINAL_PHASES and not is_deleting(vmi) and run_strategy(vm) != "Once":
            self.api.delete(Ref.of(vmi))  # Always/RerunOnFailure: replace it
            if phase == "Failed":
                return Run(vmi, status={"startFailure": self.start_failure(vm, vmi)})
        return Run(vmi)

    def start_instance(self, vm: Manifest) -> Manifest:
        template = dig(vm, "spec", "template", default={})
        metadata = template.get("metadata") or {}
        vmi = self.api.own(
            {
                "apiVersion": API_VERSION,
                "kind": "VirtualMachineInstance",
                "metadata": {
                    "name": name_of(vm),
                    "namespace": namespace_of(vm),
                    "labels": dict(metadata.get("labels") or {}),
                    "annotations": {
                        **(metadata.get("annotations") or {}),
                        "kubevirt.io/vm-generation": str(generation_of(vm)),
                    },
                    "ownerReferences": [owner_reference(vm)],
                },
                "spec": template.get("spec") or {},
            }
        )
        vmi = self.api.patch(vmi, "finalizer", {"metadata": {"finalizers": [VMI_FINALIZER]}})
        self._ran_once.add(uid_of(vm))
        return vmi

    def backing_off(self, vm: Manifest) -> float:
        failures = int(dig(vm, "status", "startFailure", "consecutiveFailCount", default=0))
        if not failures:
            return 0.0
        steps = min(2 ** (failures - 1), MAX_BACKOFF_STEPS)
        return self.wait(vm, f"backoff {failures}", "vm", fraction=steps, track="backoff")

    def start_failure(self, vm: Manifest, vmi: Manifest) -> Manifest:
        """§3 ``status.startFailure`` after ``vmi`` failed: one more, and when to retry."""
        failures = int(dig(vm, "status", "startFailure", "consecutiveFailCount", default=0)) + 1
        backoff = self.step(vm, "vm") * min(2 ** (failures - 1), MAX_BACKOFF_STEPS)
        return {
            "consecutiveFailCount": failures,
            "lastFailedVMIUID": uid_of(vmi),
            "retryAfterTimestamp": later(backoff),
        }

    # --- The instance (virt-handler's part, §4) -------------------------------------------

    def instance_of(self, vm: Manifest) -> Manifest | None:
        return self.api.find(API_VERSION, "VirtualMachineInstance", name_of(vm), namespace_of(vm))

    def advance_instance(
        self, vm: Manifest, vmi: Manifest, volumes: list[Manifest]
    ) -> float | None:
        """Walk the VMI one phase further once it has spent its time in the current one."""
        phase = dig(vmi, "status", "phase", default="")
        if is_deleting(vmi):
            if wait := self.wait(vmi, "Stopping", "vm"):
                return wait
            self.release_instance(vmi)
            return None
        if phase in FINAL_PHASES:
            return None
        shape = shape_of(self.failure(vm))
        if phase == "Running":
            interfaces = self.interfaces(vm, vmi) or dig(vmi, "status", "interfaces", default=[])
            self.write_instance(vm, vmi, "Running", volumes, interfaces=interfaces)
            return None
        if phase == "Scheduling" and shape == UNSCHEDULABLE:
            self.write_instance(vm, vmi, "Scheduling", volumes, unschedulable=True)
            return None
        if wait := self.wait(vmi, phase or "new", "vm", fraction=INSTANCE_STEP if phase else 0):
            return wait
        following = {"": "Pending", "Pending": "Scheduling", "Scheduling": "Scheduled"}
        if phase in following:
            self.write_instance(vm, vmi, following[phase], volumes)
        elif shape == CRASH_LOOP:
            self.write_instance(vm, vmi, "Failed", volumes)
        elif (interfaces := self.interfaces(vm, vmi)) is not None:
            self.write_instance(vm, vmi, "Running", volumes, interfaces=interfaces)
        # else the pod's network is not ready: it stays Scheduled until its Subnet wakes it
        return None

    def release_instance(self, vmi: Manifest) -> None:
        self.api.patch(vmi, "finalizer", {"metadata": {"finalizers": []}})

    def write_instance(
        self,
        vm: Manifest,
        vmi: Manifest,
        phase: str,
        volumes: list[Manifest],
        *,
        interfaces: list[Manifest] | None = None,
        unschedulable: bool = False,
    ) -> None:
        failure = self.failure(vm)
        scheduled = phase in ("Scheduled", "Running", "Failed")
        desired = []
        if unschedulable and failure:
            desired.append(
                condition(
                    "PodScheduled",
                    False,
                    "Unschedulable",
                    failure.shape(UNSCHEDULABLE, CRASH_LOOP)[1],
                )
            )
        elif scheduled:
            desired.append(condition("PodScheduled", True, ""))
        if phase == "Running":
            desired.append(condition("Ready", True, ""))
        elif phase == "Failed" and failure:
            desired.append(
                condition("Ready", False, "GuestNotRunning", failure.shape(CRASH_LOOP)[1])
            )
        else:
            desired.append(
                condition("Ready", False, "GuestNotRunning", "Guest VM is not reported as running")
            )
        if volumes:
            ready = all(each == "Succeeded" for each in volume_phases(volumes))
            desired.append(
                condition("DataVolumesReady", ready, "AllDVsReady" if ready else "NotAllDVsReady")
            )
        if phase == "Running":
            desired.append(live_migratable(vmi))
        status: Manifest = {
            "phase": phase,
            "conditions": merge_conditions(dig(vmi, "status", "conditions"), desired),
            "phaseTransitionTimestamps": transitions(vmi, phase),
            "qosClass": "Burstable",
        }
        if scheduled:
            status["nodeName"] = self.node_for(vm)
        if phase == "Running":
            status["interfaces"] = interfaces or []
            status["launcherContainerImageVersion"] = "quay.io/kubevirt/virt-launcher:v1.9.0"
        if phase == "Failed":
            status["reason"] = "PodFailed"
        self.api.write_status(vmi, status)

    def node_for(self, vm: Manifest) -> str:
        nodes = self.config.node_names
        return nodes[zlib.crc32(uid_of(vm).encode()) % len(nodes)]

    def interfaces(self, vm: Manifest, vmi: Manifest) -> list[Manifest] | None:
        """§4 ``status.interfaces``: the pod network's address from the Subnet bound to the
        namespace, a secondary network's from the Subnet of its provider (§7).

        None while such a Subnet exists but hands out no address (not Ready yet, or full):
        Kube-OVN's CNI holds the pod back until then. A network no Subnet serves (the
        cluster's default subnet, which a bare API server lacks) gets no address.
        """
        namespace, node = namespace_of(vm), self.node_for(vm)
        networks = dig(vmi, "spec", "networks", default=None) or [{"name": "default", "pod": {}}]
        entries = []
        for network in networks:
            provider = provider_of(network, namespace)
            entry: Manifest = {
                "name": network["name"],
                "infoSource": "domain, multus-status" if provider else "domain",
                "linkState": "up",
                "queueCount": 1,
            }
            subnet = kubeovn.subnet_for(self.cache, namespace, provider)
            if subnet is not None:
                ip = is_true(subnet, "Ready") and kubeovn.allocate(
                    self.api,
                    subnet,
                    pod=name_of(vm),
                    namespace=namespace,
                    node=node,
                    provider=provider,
                )
                if not ip:
                    return None
                addresses = [each for each in ip["spec"]["ipAddress"].split(",") if each]
                entry |= {
                    "ipAddress": addresses[0],
                    "ipAddresses": addresses,
                    "mac": ip["spec"]["macAddress"],
                }
            entries.append(entry)
        return entries

    # --- The VM's own status (§3) ---------------------------------------------------------

    def data_volumes(self, vm: Manifest, *, create: bool = True) -> list[Manifest]:
        """The VM's DataVolumes: its templates (created here, owned by the VM) and the ones
        its volumes name. A missing one counts as still provisioning."""
        found = []
        templates = {
            dig(template, "metadata", "name"): template
            for template in dig(vm, "spec", "dataVolumeTemplates", default=[])
        }
        named = [
            dig(volume, "dataVolume", "name")
            for volume in dig(vm, "spec", "template", "spec", "volumes", default=[])
            if dig(volume, "dataVolume", "name")
        ]
        for name in dict.fromkeys([*templates, *named]):
            dv = self.api.find(CDI_API_VERSION, "DataVolume", name, namespace_of(vm))
            if dv is None and create and name in templates:
                dv = self.api.own(data_volume_from(vm, templates[name]))
            found.append(dv or {"metadata": {"name": name}, "status": {"phase": "Pending"}})
        return found

    def write_status(
        self, vm: Manifest, vmi: Manifest | None, volumes: list[Manifest], changes: Manifest
    ) -> None:
        """The VM's status from its VMI and volumes, with ``changes`` made on this pass."""
        status = {**(vm.get("status") or {}), **changes}
        if dig(vmi, "status", "phase") == "Running":
            status.pop("startFailure", None)  # it started: the crash loop is over
        printable = self.printable_status({**vm, "status": status}, vmi, volumes)
        desired = [
            ready_condition(vmi),
            *(
                entry
                for entry in dig(vmi, "status", "conditions", default=[])
                if entry.get("type") in ("PodScheduled", "LiveMigratable", "DataVolumesReady")
            ),
        ]
        if printable == CRASH_LOOP and (failure := self.failure(vm)):
            desired.append(condition("Failure", True, CRASH_LOOP, failure.shape(CRASH_LOOP)[1]))
        if (
            vmi is not None
            and not is_deleting(vmi)
            and vmi.get("spec") != dig(vm, "spec", "template", "spec")
        ):
            message = "a non-live-updatable field was changed in the template spec"
            desired.append(condition("RestartRequired", True, "", message))
        status |= {
            "printableStatus": printable,
            "runStrategy": run_strategy(vm),
            "created": vmi is not None,
            "ready": vmi is not None and is_true(vmi, "Ready") and not is_deleting(vmi),
            "conditions": merge_conditions(status.get("conditions"), desired),
            "observedGeneration": generation_of(vm),
            "desiredGeneration": generation_of(vm),
        }
        self.api.write_status(vm, status)

    def printable_status(self, vm: Manifest, vmi: Manifest | None, volumes: list[Manifest]) -> str:
        """§3: the first of these that holds, in KubeVirt's order."""
        phases = volume_phases(volumes)
        vmi_phase = dig(vmi, "status", "phase")
        if is_deleting(vm):
            return "Terminating"
        stopping = vmi is not None and (is_deleting(vmi) or not self.wants_instance(vm, vmi))
        if stopping and vmi_phase not in FINAL_PHASES:
            return "Stopping"
        if vmi_phase == "Running":
            return "Running"
        if condition_status(vmi, "PodScheduled") == "False":
            return UNSCHEDULABLE
        if "Failed" in phases:
            return "DataVolumeError"
        if self.wants_instance(vm, vmi) and importing(volumes):
            return "Provisioning"
        if vmi is not None and vmi_phase not in FINAL_PHASES:
            return "Starting"
        if dig(vm, "status", "startFailure") and self.wants_instance(vm, vmi):
            return CRASH_LOOP
        return "Stopped"


def provider_of(network: Manifest, namespace: str) -> str | None:
    """§7: the Kube-OVN provider of a Multus network (``<nad>.<nad-namespace>.ovn``), or None
    for the pod network."""
    if "multus" not in network:
        return None
    nad_namespace, _, nad = network["multus"].get("networkName", "").rpartition("/")
    return f"{nad}.{nad_namespace or namespace}.ovn"


def providers_of(networks: list[Manifest], namespace: str) -> set[str | None]:
    return {provider_of(network, namespace) for network in networks}


def shape_of(failure: Failure | None) -> str | None:
    return failure.shape(UNSCHEDULABLE, CRASH_LOOP)[0] if failure else None


def ready_condition(vmi: Manifest | None) -> Manifest:
    if vmi is None:
        return condition("Ready", False, "VMINotExists", "VMI does not exist")
    for entry in dig(vmi, "status", "conditions", default=[]):
        if entry.get("type") == "Ready":
            return {
                key: entry[key] for key in ("type", "status", "reason", "message") if key in entry
            }
    return condition("Ready", False, "GuestNotRunning", "Guest VM is not reported as running")


def live_migratable(vmi: Manifest) -> Manifest:
    """Bridged pod networking and ReadWriteOnce disks (DataVolumes here) cannot migrate."""
    interfaces = dig(vmi, "spec", "domain", "devices", "interfaces", default=[])
    if any("bridge" in each for each in interfaces):
        message = "cannot migrate VMI which does not use masquerade, bridge with kubevirt.io/allow-pod-bridge-network-live-migration VM annotation or a migratable plugin to connect to the pod network"
        return condition("LiveMigratable", False, "InterfaceNotLiveMigratable", message)
    if any("dataVolume" in each for each in dig(vmi, "spec", "volumes", default=[])):
        message = "cannot migrate VMI: PVC is not shared, live migration requires that all PVCs must be shared (using ReadWriteMany access mode)"
        return condition("LiveMigratable", False, "DisksNotLiveMigratable", message)
    return condition("LiveMigratable", True, "")


def volume_phases(volumes: list[Manifest]) -> list[str]:
    return [dig(dv, "status", "phase", default="") for dv in volumes]


def importing(volumes: list[Manifest]) -> bool:
    """Some DataVolume is not populated yet: the VM is Provisioning (§3, §6)."""
    return any(phase != "Succeeded" for phase in volume_phases(volumes))


def data_volume_from(vm: Manifest, template: Manifest) -> Manifest:
    """§6: a DataVolume from a ``dataVolumeTemplates`` entry, owned by the VM."""
    metadata = template.get("metadata") or {}
    return {
        "apiVersion": CDI_API_VERSION,
        "kind": "DataVolume",
        "metadata": {
            "name": metadata["name"],
            "namespace": namespace_of(vm),
            "labels": dict(metadata.get("labels") or {}),
            "annotations": dict(metadata.get("annotations") or {}),
            "ownerReferences": [owner_reference(vm)],
        },
        "spec": template.get("spec") or {},
    }


def transitions(vmi: Manifest, phase: str) -> list[Manifest]:
    """``status.phaseTransitionTimestamps``: one entry per phase reached."""
    seen = list(dig(vmi, "status", "phaseTransitionTimestamps", default=[]))
    if not seen or seen[-1].get("phase") != phase:
        seen.append({"phase": phase, "phaseTransitionTimestamp": now()})
    return seen
