"""From what KubeVirt, CDI and MetalLB report to what a tenant sees: state, reason, timeline.

Pure functions, no database: ``read_*`` turn one object (shaped as
``../shared/crds/STATUS.md`` §3, §4, §6 and §8 describe) into the facts the portal keeps
about a VM; ``derive_state`` combines the stored facts with what the tenant asked for into
the portal state and, unless all is well, the reason in plain words; ``timeline`` draws the
steps from request to running; ``allowed_actions`` says which actions (power, retry,
ports, console) the state allows (the API, the UI and the services all ask it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

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

# Portal states (the same strings as VirtualMachine.State; this module stays model-free).
PENDING, PROVISIONING, STARTING, RUNNING = "pending", "provisioning", "starting", "running"
STOPPING, STOPPED, PAUSED, ERROR = "stopping", "stopped", "paused", "error"
FAILED, DELETING, UNKNOWN = "failed", "deleting", "unknown"
ALWAYS, HALTED = "Always", "Halted"

# printableStatus values (STATUS.md §3) and how each reads when it is an error.
ERROR_WORDS: dict[str, str] = {
    "ErrorUnschedulable": "No node can run it",
    "ErrorPvcNotFound": "Its disk's volume claim is missing",
    "DataVolumeError": "Importing its disk image failed",
    "ErrImagePull": "Its image could not be pulled",
    "ImagePullBackOff": "Its image could not be pulled",
    "CrashLoopBackOff": "It keeps failing to start",
}
STARTING_WORDS: dict[str, str] = {
    "Starting": "Starting the instance.",
    "WaitingForVolumeBinding": "Waiting for its disk's volume to be bound.",
    "WaitingForReceiver": "Waiting to receive a migration.",
}
DISK_WORDS: dict[str, str] = {
    "": "Waiting for CDI to create its disk.",
    "Pending": "Waiting for its disk's volume.",
    "PVCBound": "Its disk's volume is bound; the import starts next.",
    "WaitForFirstConsumer": "Its disk is provisioned once the VM is scheduled.",
    "PendingPopulation": "Waiting for its disk's volume to be populated.",
    "ImportScheduled": "Image import scheduled.",
    "CloneScheduled": "Disk clone scheduled.",
    "Paused": "The disk import is paused.",
}
DISK_IN_PROGRESS = frozenset({"ImportInProgress", "CloneInProgress", "UploadReady"})
DISK_DONE, DISK_FAILED = "Succeeded", "Failed"


# --- Reading one object ---------------------------------------------------------------------


def _explanation(conditions: Mapping[str, Condition]) -> str:
    """The controller's own words for what is wrong: a Failure, or a blocking condition."""
    failure = conditions.get("Failure")
    if failure and failure.is_true and failure.message:
        return plain(failure.message)
    for kind in ("PodScheduled", "Synchronized", "DataVolumesReady"):
        blocking = conditions.get(kind)
        if blocking and blocking.is_false and blocking.message:
            return plain(blocking.message)
    return ""


@dataclass(frozen=True)
class VMFacts:
    """The ``VirtualMachine`` (STATUS.md §3)."""

    printable_status: str
    ready: bool
    message: str  # the controller's explanation, or a pending restart; "" when none
    deleting: bool


def read_virtual_machine(obj: Manifest) -> VMFacts:
    status, conditions = status_of(obj), conditions_of(obj)
    message = _explanation(conditions)
    failures = int((status.get("startFailure") or {}).get("consecutiveFailCount") or 0)
    if message and failures:
        message = f"{message} ({failures} failed starts so far)"
    restart = conditions.get("RestartRequired")
    if not message and restart and restart.is_true:
        message = "A change takes effect at the next restart."
    return VMFacts(
        printable_status=str(status.get("printableStatus") or ""),
        ready=bool(status.get("ready")),
        message=message,
        deleting=is_deleting(obj),
    )


@dataclass(frozen=True)
class InstanceFacts:
    """The ``VirtualMachineInstance`` (STATUS.md §4): where it runs and its addresses."""

    phase: str
    node_name: str
    ip_addresses: tuple[str, ...]
    created: str
    deleting: bool


def read_instance(obj: Manifest) -> InstanceFacts:
    status = status_of(obj)
    addresses: list[str] = []
    for interface in status.get("interfaces") or ():
        # ipAddresses lists IPv4 and IPv6; older reports only have the primary ipAddress.
        found = interface.get("ipAddresses") or [interface.get("ipAddress")]
        addresses += [str(address) for address in found if address]
    return InstanceFacts(
        phase=str(status.get("phase") or ""),
        node_name=str(status.get("nodeName") or ""),
        ip_addresses=tuple(dict.fromkeys(addresses)),
        created=str(metadata_of(obj).get("creationTimestamp") or ""),
        deleting=is_deleting(obj),
    )


@dataclass(frozen=True)
class DiskFacts:
    """The root disk's ``DataVolume`` (STATUS.md §6)."""

    phase: str
    progress: str  # "45.20%", or "" when CDI reports none ("N/A")
    message: str


def read_data_volume(obj: Manifest) -> DiskFacts:
    status, conditions = status_of(obj), conditions_of(obj)
    progress = str(status.get("progress") or "")
    phase = str(status.get("phase") or "")
    message = ""
    if phase == DISK_FAILED or status.get("restartCount"):
        # CDI puts the importer's error on the Running (or Ready) condition.
        for kind in ("Running", "Ready", "Bound"):
            reported = conditions.get(kind)
            if reported and not reported.is_true and reported.message:
                message = plain(reported.message)
                break
    return DiskFacts(phase=phase, progress="" if progress == "N/A" else progress, message=message)


@dataclass(frozen=True)
class ServiceFacts:
    """The VM's LoadBalancer ``Service`` (STATUS.md §8)."""

    public_ip: str
    pool: str


def read_service(obj: Manifest) -> ServiceFacts:
    ingress = (status_of(obj).get("loadBalancer") or {}).get("ingress") or ()
    addresses = [str(entry["ip"]) for entry in ingress if entry.get("ip")]
    annotations = metadata_of(obj).get("annotations") or {}
    return ServiceFacts(
        public_ip=addresses[0] if addresses else "",
        pool=str(annotations.get("metallb.io/ip-allocated-from-pool") or ""),
    )


# --- The whole VM ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Desired:
    """What the tenant asked for, and where the portal itself stands with it."""

    run_strategy: str = ALWAYS
    applied: bool = False
    deleting: bool = False
    apply_error: str = ""


@dataclass(frozen=True)
class Observed:
    """The facts stored on the VM row (what the watcher last read)."""

    printable_status: str = ""
    ready: bool = False
    status_message: str = ""
    node_name: str = ""
    ip_addresses: Sequence[str] = ()
    disk_phase: str = ""
    disk_progress: str = ""
    disk_message: str = ""


def disk_words(observed: Observed) -> str:
    """Where the root disk's import stands, in words (with its progress)."""
    phase = observed.disk_phase
    if phase in DISK_IN_PROGRESS:
        verb = "Cloning" if phase == "CloneInProgress" else "Importing"
        progress = f": {observed.disk_progress}" if observed.disk_progress else ""
        return f"{verb} the disk image{progress}."
    if phase == DISK_FAILED:
        detail = f": {observed.disk_message}" if observed.disk_message else "."
        return f"Importing the disk image failed{detail}"
    if phase == DISK_DONE:
        return "Disk ready."
    return DISK_WORDS.get(phase, f"Preparing its disk ({phase}).")


def _error_reason(observed: Observed) -> str:
    status = observed.printable_status
    words = ERROR_WORDS.get(status, f"KubeVirt reports {status}")
    detail = observed.status_message
    if status == "DataVolumeError":
        detail = observed.disk_message or detail
    return f"{words}: {detail}" if detail else f"{words}."


def is_error_status(printable_status: str) -> bool:
    return printable_status in ERROR_WORDS or printable_status.startswith("Error")


def derive_state(desired: Desired, observed: Observed) -> tuple[str, str]:
    """The portal state and, unless all is well, what it waits for or what is wrong."""
    if desired.deleting:
        return DELETING, "Deleting the virtual machine and its disk."
    if desired.apply_error and not desired.applied:
        return FAILED, desired.apply_error
    if not desired.applied:
        return PENDING, "Queued for provisioning."
    if desired.apply_error:
        # The VM exists; a later change of it was refused (and may be tried again).
        return ERROR, f"The last change was refused. {desired.apply_error}"
    status = observed.printable_status
    stopping_asked = desired.run_strategy == HALTED
    if status == "Terminating":
        return DELETING, "KubeVirt is deleting the virtual machine."
    if status == "Stopping" or (
        stopping_asked and status in {"Running", "Migrating", "Starting", "Paused"}
    ):
        return STOPPING, "Shutting the guest down."
    if status in {"Running", "Migrating"}:
        if not observed.ready:
            return STARTING, "Booting: waiting for the guest to become ready."
        if status == "Migrating":
            return RUNNING, "Live-migrating to another node."
        return RUNNING, observed.status_message
    if status == "Paused":
        return PAUSED, "Paused."
    if is_error_status(status):
        return ERROR, _error_reason(observed)
    if status == "Provisioning":
        return PROVISIONING, disk_words(observed)
    if status in STARTING_WORDS:
        return STARTING, STARTING_WORDS[status]
    if status == "Stopped":
        if stopping_asked:
            return STOPPED, ""
        return STARTING, "Starting the instance."
    if status == "Unknown":
        return UNKNOWN, "KubeVirt cannot tell the state of the virtual machine."
    if not status:
        return PROVISIONING, "Waiting for KubeVirt to pick up the virtual machine."
    return UNKNOWN, f"KubeVirt reports {status}."


# --- Timeline -------------------------------------------------------------------------------


def timeline(desired: Desired, observed: Observed, state: str) -> list[Step]:
    """The steps from request to a reachable guest, as the stored facts tell them."""
    applied = desired.applied
    disk = observed.disk_phase
    disk_done = disk == DISK_DONE or bool(observed.node_name and not disk)
    if disk == DISK_FAILED:
        disk_step = Step("disk", "Disk imported", 10, STEP_FAILED, disk_words(observed))
    elif disk_done:
        disk_step = Step("disk", "Disk imported", 10, STEP_DONE)
    elif applied:
        disk_step = Step("disk", "Disk imported", 10, STEP_ACTIVE, disk_words(observed))
    else:
        disk_step = Step("disk", "Disk imported", 10, STEP_PENDING, "Queued for provisioning.")

    if observed.node_name:
        scheduled = Step("scheduled", "Scheduled", 20, STEP_DONE, f"On {observed.node_name}")
    elif observed.printable_status == "ErrorUnschedulable":
        scheduled = Step("scheduled", "Scheduled", 20, STEP_FAILED, _error_reason(observed))
    elif disk_done and desired.run_strategy == ALWAYS:
        scheduled = Step("scheduled", "Scheduled", 20, STEP_ACTIVE, "Finding a node to run it.")
    else:
        scheduled = Step("scheduled", "Scheduled", 20)

    if state == RUNNING:
        booted = Step("running", "Guest running", 30, STEP_DONE)
    elif state == ERROR and observed.node_name:
        booted = Step("running", "Guest running", 30, STEP_FAILED, _error_reason(observed))
    elif observed.node_name and desired.run_strategy == ALWAYS:
        booted = Step("running", "Guest running", 30, STEP_ACTIVE, "Booting.")
    else:
        booted = Step("running", "Guest running", 30)

    if observed.ip_addresses:
        address = Step("address", "Address assigned", 40, STEP_DONE, observed.ip_addresses[0])
    elif observed.node_name and desired.run_strategy == ALWAYS:
        address = Step("address", "Address assigned", 40, STEP_ACTIVE, "Waiting for Kube-OVN.")
    else:
        address = Step("address", "Address assigned", 40)
    return [disk_step, scheduled, booted, address]


# --- Actions --------------------------------------------------------------------------------

#: Every action a VM offers; the caller's role is checked apart (viewers act on nothing).
ACTIONS = ("start", "stop", "restart", "retry", "delete", "expose", "unexpose", "console")
GONE_OR_GOING = frozenset({DELETING, FAILED})


def action_refusal(state: str, run_strategy: str, action: str) -> str:
    """Why ``action`` is not possible in this state ("" if it is)."""
    if state == DELETING:
        return "The virtual machine is being deleted."
    if action == "delete":
        return ""
    if action == "retry":
        # Only a VM Kubernetes refused before it ever existed: anything else is still there
        # and converges with the next change.
        return (
            "" if state == FAILED else "Only a virtual machine Kubernetes refused can be retried."
        )
    if state == FAILED:
        return "Kubernetes refused this virtual machine: retry it, or delete it."
    if action == "start" and run_strategy != HALTED:
        return "The virtual machine is already running or starting."
    if action == "stop" and run_strategy != ALWAYS:
        return "The virtual machine is already stopped or stopping."
    if action == "restart" and not (run_strategy == ALWAYS and state == RUNNING):
        return "Only a running virtual machine can be restarted."
    if action == "console" and state != RUNNING:
        return "The console is available while the virtual machine runs."
    return ""


def allowed_actions(state: str, run_strategy: str) -> frozenset[str]:
    """The actions the VM's state allows now (the same answer for UI, API and services)."""
    return frozenset(
        action for action in ACTIONS if not action_refusal(state, run_strategy, action)
    )
