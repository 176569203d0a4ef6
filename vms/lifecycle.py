"""From what KubeVirt, CDI and MetalLB report to what a tenant sees: state, reason, timeline.

Pure functions, no database: ``read_*`` turn one object (shaped as
``../shared/crds/STATUS.md`` §3, §4, §6 and §8 describe) into the facts the portal keeps
about a VM; ``derive_state`` combines the stored facts with what the tenant asked for into
the portal state and, unless all is well, the reason in plain words; ``timeline`` draws the
steps from request to running; ``allowed_actions`` says which actions (power, retry,
ports, console) the state allows (the API, the UI and the services all ask it).

The facts keep what the controllers said in their own words; the reason and the steps say it
in the portal's (``butler_portal.explain``), with those words beside them as ``raw``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from butler_portal.explain import Said, explain
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

ASK_OPERATORS = "Ask the platform operators if it stays so."
# printableStatus values (STATUS.md §3) and how each reads when it is an error (unless the
# controller's explanation says more): what is wrong, and what to do.
ERROR_WORDS: dict[str, str] = {
    "ErrorUnschedulable": (
        "No node can run it right now. Choose a smaller size, or ask the platform operators "
        "for room."
    ),
    "ErrorPvcNotFound": (
        "Its disk's volume is missing. Delete the virtual machine and create it again."
    ),
    "DataVolumeError": (
        "Importing its disk image failed. Delete the virtual machine and create it again; ask "
        "the platform operators if it keeps failing."
    ),
    "ErrImagePull": "Its image could not be downloaded. " + ASK_OPERATORS,
    "ImagePullBackOff": "Its image could not be downloaded. " + ASK_OPERATORS,
    "CrashLoopBackOff": (
        "It keeps failing to start; KubeVirt tries again after a pause. Check its cloud-init "
        "user data, or stop it."
    ),
}
OTHER_ERROR = "KubeVirt reports a problem with it. " + ASK_OPERATORS
#: Kubernetes did not take the VM's objects, for a reason ``explain`` does not know.
REFUSED = (
    "Kubernetes did not accept the virtual machine as asked. Retry it, or delete it and "
    "create it with other settings; ask the platform operators if it keeps failing."
)
RESTART_PENDING = "A change takes effect at the next restart."
STARTING_WORDS: dict[str, str] = {
    "Starting": "Starting the instance.",
    "WaitingForVolumeBinding": "Waiting for its disk's volume to be bound.",
    "WaitingForReceiver": "Waiting to receive a migration.",
}
DISK_WORDS: dict[str, str] = {
    "": "Waiting for its disk to be created.",
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
        message = RESTART_PENDING
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


def disk_words(observed: Observed) -> Said:
    """Where the root disk's import stands, in words (with its progress)."""
    phase = observed.disk_phase
    if phase in DISK_IN_PROGRESS:
        verb = "Cloning" if phase == "CloneInProgress" else "Importing"
        progress = f": {observed.disk_progress}" if observed.disk_progress else ""
        return Said(f"{verb} the disk image{progress}.")
    if phase == DISK_FAILED:
        said = explain(observed.disk_message, fallback=ERROR_WORDS["DataVolumeError"])
        return said or Said(ERROR_WORDS["DataVolumeError"], phase)
    if phase == DISK_DONE:
        return Said("Disk ready.")
    if phase in DISK_WORDS:
        return Said(DISK_WORDS[phase])
    return Said("Preparing its disk.", phase)


def _error_reason(observed: Observed) -> Said:
    """What is wrong, in the controller's explanation if it is known, else in the words of
    its status; the raw text names the status and says what the controller said."""
    status = observed.printable_status
    detail = observed.status_message
    if status == "DataVolumeError":
        detail = observed.disk_message or detail
    words = ERROR_WORDS.get(status, OTHER_ERROR)
    said = explain(detail, fallback=words)
    return Said(said.text or words, f"{status}: {said.raw}" if said.raw else status)


def is_error_status(printable_status: str) -> bool:
    return printable_status in ERROR_WORDS or printable_status.startswith("Error")


def _running_reason(observed: Observed) -> Said:
    """Nothing to say of a running VM, unless a change waits for a restart or KubeVirt
    reports a problem."""
    if observed.status_message in {"", RESTART_PENDING}:
        return Said(observed.status_message)
    return explain(observed.status_message, fallback=OTHER_ERROR)


def derive_state(desired: Desired, observed: Observed) -> tuple[str, Said]:
    """The portal state and, unless all is well, what it waits for or what is wrong."""
    if desired.deleting:
        return DELETING, Said("Deleting the virtual machine and its disk.")
    refusal = explain(desired.apply_error, fallback=REFUSED)
    if refusal and not desired.applied:
        return FAILED, refusal
    if not desired.applied:
        return PENDING, Said("Queued for provisioning.")
    if refusal:
        # The VM exists; a later change of it was refused (and may be tried again).
        return ERROR, Said(f"The last change was refused. {refusal.text}", refusal.raw)
    status = observed.printable_status
    stopping_asked = desired.run_strategy == HALTED
    if status == "Terminating":
        return DELETING, Said("KubeVirt is deleting the virtual machine.")
    if status == "Stopping" or (
        stopping_asked and status in {"Running", "Migrating", "Starting", "Paused"}
    ):
        return STOPPING, Said("Shutting the guest down.")
    if status in {"Running", "Migrating"}:
        if not observed.ready:
            return STARTING, Said("Booting: waiting for the guest to become ready.")
        if status == "Migrating":
            return RUNNING, Said("Live-migrating to another node.")
        return RUNNING, _running_reason(observed)
    if status == "Paused":
        return PAUSED, Said("Paused.")
    if is_error_status(status):
        return ERROR, _error_reason(observed)
    if status == "Provisioning":
        return PROVISIONING, disk_words(observed)
    if status in STARTING_WORDS:
        return STARTING, Said(STARTING_WORDS[status])
    if status == "Stopped":
        if stopping_asked:
            return STOPPED, Said("")
        return STARTING, Said("Starting the instance.")
    if status == "Unknown":
        return UNKNOWN, Said("KubeVirt cannot tell the state of the virtual machine.")
    if not status:
        return PROVISIONING, Said("Waiting for KubeVirt to pick up the virtual machine.")
    return UNKNOWN, Said(
        "KubeVirt reports a state the portal does not know. " + ASK_OPERATORS, status
    )


# --- Timeline -------------------------------------------------------------------------------


NOTHING_SAID = Said("")


def _step(
    key: str, label: str, position: int, state: str = STEP_PENDING, said: Said = NOTHING_SAID
) -> Step:
    return Step(key, label, position, state, said.text, said.raw)


def timeline(desired: Desired, observed: Observed, state: str) -> list[Step]:
    """The steps from request to a reachable guest, as the stored facts tell them."""
    applied = desired.applied
    disk = observed.disk_phase
    disk_done = disk == DISK_DONE or bool(observed.node_name and not disk)
    if disk == DISK_FAILED:
        disk_step = _step("disk", "Disk imported", 10, STEP_FAILED, disk_words(observed))
    elif disk_done:
        disk_step = _step("disk", "Disk imported", 10, STEP_DONE)
    elif applied:
        disk_step = _step("disk", "Disk imported", 10, STEP_ACTIVE, disk_words(observed))
    else:
        disk_step = _step("disk", "Disk imported", 10, said=Said("Queued for provisioning."))

    if observed.node_name:
        scheduled = _step("scheduled", "Scheduled", 20, STEP_DONE, Said(f"On {observed.node_name}"))
    elif observed.printable_status == "ErrorUnschedulable":
        scheduled = _step("scheduled", "Scheduled", 20, STEP_FAILED, _error_reason(observed))
    elif disk_done and desired.run_strategy == ALWAYS:
        scheduled = _step(
            "scheduled", "Scheduled", 20, STEP_ACTIVE, Said("Finding a node to run it.")
        )
    else:
        scheduled = _step("scheduled", "Scheduled", 20)

    if state == RUNNING:
        booted = _step("running", "Guest running", 30, STEP_DONE)
    elif state == ERROR and observed.node_name:
        booted = _step("running", "Guest running", 30, STEP_FAILED, _error_reason(observed))
    elif observed.node_name and desired.run_strategy == ALWAYS:
        booted = _step("running", "Guest running", 30, STEP_ACTIVE, Said("Booting."))
    else:
        booted = _step("running", "Guest running", 30)

    if observed.ip_addresses:
        address = _step(
            "address", "Address assigned", 40, STEP_DONE, Said(observed.ip_addresses[0])
        )
    elif observed.node_name and desired.run_strategy == ALWAYS:
        address = _step(
            "address",
            "Address assigned",
            40,
            STEP_ACTIVE,
            Said("Waiting for its address on the tenant network."),
        )
    else:
        address = _step("address", "Address assigned", 40)
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
