"""Status mapping from STATUS.md-shaped objects, state derivation and allowed actions (pure)."""

from __future__ import annotations

import pytest

from tests.vms.conftest import (
    condition,
    data_volume_obj,
    instance_obj,
    service_obj,
    virtual_machine_obj,
)
from vms.lifecycle import (
    Desired,
    Observed,
    action_refusal,
    allowed_actions,
    derive_state,
    read_data_volume,
    read_instance,
    read_service,
    read_virtual_machine,
    timeline,
)

APPLIED = Desired(applied=True)

# --- Reading objects ------------------------------------------------------------------------


def test_a_crash_looping_vm_reads_its_failure_and_the_attempts() -> None:
    vm = virtual_machine_obj(
        printable="CrashLoopBackOff",
        ready=False,
        conditions=[
            condition("Ready", "False", "VMINotExists", "VMI does not exist"),
            condition("Failure", "True", "CrashLoopBackOff", "kernel panic - not syncing"),
        ],
        startFailure={"consecutiveFailCount": 3, "retries": 3},
    )

    facts = read_virtual_machine(vm)

    assert (facts.printable_status, facts.ready) == ("CrashLoopBackOff", False)
    assert facts.message == "kernel panic - not syncing (3 failed starts so far)"


def test_an_unschedulable_vm_reads_the_schedulers_words() -> None:
    vm = virtual_machine_obj(
        printable="ErrorUnschedulable",
        ready=False,
        conditions=[
            condition("Ready", "False"),
            condition(
                "PodScheduled",
                "False",
                "Unschedulable",
                "0/3 nodes are available: Insufficient memory.",
            ),
        ],
    )

    assert read_virtual_machine(vm).message == "0/3 nodes are available: Insufficient memory."


def test_a_running_vm_with_a_pending_change_says_it_needs_a_restart() -> None:
    vm = virtual_machine_obj(
        conditions=[condition("Ready"), condition("RestartRequired", "True", "", "changed")]
    )

    assert read_virtual_machine(vm).message == "A change takes effect at the next restart."


def test_the_instance_gives_its_node_and_every_address_once() -> None:
    vmi = instance_obj(addresses=("10.200.1.14", "fd00::14"))
    vmi["status"]["interfaces"].append(
        {"name": "second", "ipAddress": "10.200.1.14", "ipAddresses": ["10.200.1.14"]}
    )
    vmi["status"]["interfaces"].append({"name": "old-style", "ipAddress": "10.9.9.9"})

    facts = read_instance(vmi)

    assert facts.node_name == "node-1"
    assert facts.ip_addresses == ("10.200.1.14", "fd00::14", "10.9.9.9")


def test_a_scheduling_instance_has_no_address_yet() -> None:
    facts = read_instance(instance_obj(phase="Scheduling", node="", addresses=()))

    assert (facts.phase, facts.node_name, facts.ip_addresses) == ("Scheduling", "", ())


def test_the_data_volume_gives_phase_progress_and_the_importers_error() -> None:
    importing = read_data_volume(data_volume_obj(progress="42.50%"))
    waiting = read_data_volume(data_volume_obj(phase="ImportScheduled", progress="N/A"))
    failed = read_data_volume(
        data_volume_obj(
            phase="Failed", progress="50.00%", failure="Unable to process data: 404 Not Found"
        )
    )

    assert (importing.phase, importing.progress, importing.message) == (
        "ImportInProgress",
        "42.50%",
        "",
    )
    assert waiting.progress == ""
    assert (failed.phase, failed.message) == ("Failed", "Unable to process data: 404 Not Found")


def test_the_service_gives_the_address_metallb_assigned() -> None:
    assert read_service(service_obj(ip="192.0.2.20")).public_ip == "192.0.2.20"
    assert read_service(service_obj(ip=None)).public_ip == ""


# --- State ------------------------------------------------------------------------------------


STATES: list[tuple[str, Desired, Observed, tuple[str, str]]] = [
    ("queued", Desired(), Observed(), ("pending", "Queued for provisioning.")),
    (
        "refused before it existed",
        Desired(apply_error="Kubernetes rejected VirtualMachine web: spec.template: no"),
        Observed(),
        (
            "failed",
            "Kubernetes did not accept the virtual machine as asked. Retry it, or delete it and "
            "create it with other settings; ask the platform operators if it keeps failing.",
        ),
    ),
    (
        "a later change refused",
        Desired(
            applied=True,
            apply_error='Kubernetes refused Service web: services "web" is forbidden: exceeded '
            "quota: tenant, requested: services.loadbalancers=1",
        ),
        Observed(printable_status="Running", ready=True),
        (
            "error",
            "The last change was refused. The tenant's quota on the platform does not allow it. "
            "Ask for a larger quota.",
        ),
    ),
    (
        "deleting wins",
        Desired(applied=True, deleting=True),
        Observed(printable_status="Running", ready=True),
        ("deleting", "Deleting the virtual machine and its disk."),
    ),
    (
        "not picked up yet",
        APPLIED,
        Observed(),
        ("provisioning", "Waiting for KubeVirt to pick up the virtual machine."),
    ),
    (
        "importing",
        APPLIED,
        Observed(
            printable_status="Provisioning", disk_phase="ImportInProgress", disk_progress="42.50%"
        ),
        ("provisioning", "Importing the disk image: 42.50%."),
    ),
    (
        "import scheduled",
        APPLIED,
        Observed(printable_status="Provisioning", disk_phase="ImportScheduled"),
        ("provisioning", "Image import scheduled."),
    ),
    (
        "starting",
        APPLIED,
        Observed(printable_status="Starting"),
        ("starting", "Starting the instance."),
    ),
    (
        "running, guest not ready",
        APPLIED,
        Observed(printable_status="Running", ready=False),
        ("starting", "Booting: waiting for the guest to become ready."),
    ),
    ("running", APPLIED, Observed(printable_status="Running", ready=True), ("running", "")),
    (
        "migrating",
        APPLIED,
        Observed(printable_status="Migrating", ready=True),
        ("running", "Live-migrating to another node."),
    ),
    (
        "stop asked, still running",
        Desired(applied=True, run_strategy="Halted"),
        Observed(printable_status="Running", ready=True),
        ("stopping", "Shutting the guest down."),
    ),
    (
        "stopping",
        APPLIED,
        Observed(printable_status="Stopping"),
        ("stopping", "Shutting the guest down."),
    ),
    (
        "stopped",
        Desired(applied=True, run_strategy="Halted"),
        Observed(printable_status="Stopped"),
        ("stopped", ""),
    ),
    (
        "start asked, still stopped",
        APPLIED,
        Observed(printable_status="Stopped"),
        ("starting", "Starting the instance."),
    ),
    ("paused", APPLIED, Observed(printable_status="Paused", ready=False), ("paused", "Paused.")),
    (
        "unschedulable",
        APPLIED,
        Observed(
            printable_status="ErrorUnschedulable",
            status_message="0/3 nodes are available: 3 Insufficient memory.",
        ),
        (
            "error",
            "No node has enough free memory for it. Choose a smaller size, or ask the platform "
            "operators for room.",
        ),
    ),
    (
        "unschedulable, for reasons unknown",
        APPLIED,
        Observed(printable_status="ErrorUnschedulable", status_message="node(s) had taints"),
        (
            "error",
            "No node can run it right now. Choose a smaller size, or ask the platform operators "
            "for room.",
        ),
    ),
    (
        "disk import failed",
        APPLIED,
        Observed(
            printable_status="DataVolumeError",
            disk_message="Unable to connect to http data source: expected status code 200, got 404",
        ),
        (
            "error",
            "The disk image's download address answered with error 404. The platform operators "
            "need to fix the image in the catalog.",
        ),
    ),
    (
        "crash loop",
        APPLIED,
        Observed(printable_status="CrashLoopBackOff", status_message="kernel panic"),
        (
            "error",
            "It keeps failing to start; KubeVirt tries again after a pause. Check its cloud-init "
            "user data, or stop it.",
        ),
    ),
    (
        "image pull",
        APPLIED,
        Observed(printable_status="ImagePullBackOff"),
        (
            "error",
            "Its image could not be downloaded. Ask the platform operators if it stays so.",
        ),
    ),
    (
        "some other error",
        APPLIED,
        Observed(printable_status="ErrorSomethingNew"),
        (
            "error",
            "KubeVirt reports a problem with it. Ask the platform operators if it stays so.",
        ),
    ),
    (
        "a status the portal does not know",
        APPLIED,
        Observed(printable_status="Hibernating"),
        (
            "unknown",
            "KubeVirt reports a state the portal does not know. Ask the platform operators if it "
            "stays so.",
        ),
    ),
    (
        "running with a change waiting for a restart",
        APPLIED,
        Observed(
            printable_status="Running",
            ready=True,
            status_message="A change takes effect at the next restart.",
        ),
        ("running", "A change takes effect at the next restart."),
    ),
    (
        "unknown",
        APPLIED,
        Observed(printable_status="Unknown"),
        ("unknown", "KubeVirt cannot tell the state of the virtual machine."),
    ),
    (
        "terminating",
        APPLIED,
        Observed(printable_status="Terminating"),
        ("deleting", "KubeVirt is deleting the virtual machine."),
    ),
]


@pytest.mark.parametrize(
    ("desired", "observed", "expected"),
    [case[1:] for case in STATES],
    ids=[case[0] for case in STATES],
)
def test_the_portal_state_follows_status_md(
    desired: Desired, observed: Observed, expected: tuple[str, str]
) -> None:
    state, said = derive_state(desired, observed)
    assert (state, said.text) == expected


@pytest.mark.parametrize(
    ("observed", "raw"),
    [
        (
            Observed(
                printable_status="ErrorUnschedulable", status_message="0/3 nodes are available."
            ),
            "ErrorUnschedulable: 0/3 nodes are available.",
        ),
        (
            Observed(
                printable_status="DataVolumeError", disk_message="Unable to process data: 404"
            ),
            "DataVolumeError: Unable to process data: 404",
        ),
        (Observed(printable_status="ImagePullBackOff"), "ImagePullBackOff"),
        (Observed(printable_status="Hibernating"), "Hibernating"),
        (
            Observed(printable_status="Provisioning", disk_phase="SmartClonePVCInProgress"),
            "SmartClonePVCInProgress",
        ),
    ],
    ids=["scheduler", "importer", "status alone", "unknown status", "unknown disk phase"],
)
def test_what_kubevirt_and_cdi_said_stays_beside_the_reason(observed: Observed, raw: str) -> None:
    """The reason is the portal's sentence; the status and the controller's words are one
    click away, never in the sentence."""
    _, said = derive_state(APPLIED, observed)

    assert said.raw == raw
    assert observed.printable_status not in said.text
    assert "Unable" not in said.text
    assert "nodes are available" not in said.text


# --- Actions ----------------------------------------------------------------------------------


ALLOWED = {
    ("pending", "Always"): {"stop", "delete", "expose", "unexpose"},
    ("provisioning", "Always"): {"stop", "delete", "expose", "unexpose"},
    ("starting", "Always"): {"stop", "delete", "expose", "unexpose"},
    ("running", "Always"): {"stop", "restart", "delete", "expose", "unexpose", "console"},
    ("stopping", "Halted"): {"start", "delete", "expose", "unexpose"},
    ("stopped", "Halted"): {"start", "delete", "expose", "unexpose"},
    ("error", "Always"): {"stop", "delete", "expose", "unexpose"},
    ("error", "Halted"): {"start", "delete", "expose", "unexpose"},
    ("failed", "Always"): {"retry", "delete"},
    ("deleting", "Always"): set(),
}


@pytest.mark.parametrize(("state", "strategy"), list(ALLOWED), ids=lambda value: str(value))
def test_allowed_actions_per_state(state: str, strategy: str) -> None:
    assert allowed_actions(state, strategy) == ALLOWED[(state, strategy)]


def test_refusals_say_why() -> None:
    assert action_refusal("running", "Always", "start") == (
        "The virtual machine is already running or starting."
    )
    assert action_refusal("stopped", "Halted", "stop") == (
        "The virtual machine is already stopped or stopping."
    )
    assert action_refusal("starting", "Always", "restart") == (
        "Only a running virtual machine can be restarted."
    )
    assert action_refusal("deleting", "Always", "delete") == "The virtual machine is being deleted."
    assert action_refusal("running", "Always", "retry") == (
        "Only a virtual machine Kubernetes refused can be retried."
    )
    assert action_refusal("failed", "Always", "start") == (
        "Kubernetes refused this virtual machine: retry it, or delete it."
    )
    assert action_refusal("deleting", "Always", "retry") == "The virtual machine is being deleted."


# --- Timeline ---------------------------------------------------------------------------------


def _steps(desired: Desired, observed: Observed, state: str) -> list[tuple[str, str, str]]:
    return [(step.key, step.state, step.message) for step in timeline(desired, observed, state)]


def test_the_timeline_walks_from_the_disk_to_an_address() -> None:
    queued = _steps(Desired(), Observed(), "pending")
    importing = _steps(
        APPLIED,
        Observed(
            printable_status="Provisioning", disk_phase="ImportInProgress", disk_progress="10.00%"
        ),
        "provisioning",
    )
    booting = _steps(
        APPLIED,
        Observed(printable_status="Running", disk_phase="Succeeded", node_name="node-2"),
        "starting",
    )
    running = _steps(
        APPLIED,
        Observed(
            printable_status="Running",
            ready=True,
            disk_phase="Succeeded",
            node_name="node-2",
            ip_addresses=("10.200.1.14",),
        ),
        "running",
    )

    assert queued == [
        ("disk", "pending", "Queued for provisioning."),
        ("scheduled", "pending", ""),
        ("running", "pending", ""),
        ("address", "pending", ""),
    ]
    assert importing[0] == ("disk", "active", "Importing the disk image: 10.00%.")
    assert booting == [
        ("disk", "done", ""),
        ("scheduled", "done", "On node-2"),
        ("running", "active", "Booting."),
        ("address", "active", "Waiting for its address on the tenant network."),
    ]
    assert [state for _, state, _ in running] == ["done"] * 4
    assert running[3][2] == "10.200.1.14"


def test_the_timeline_marks_the_failing_step() -> None:
    disk_failed = timeline(
        APPLIED,
        Observed(
            printable_status="DataVolumeError",
            disk_phase="Failed",
            disk_message="Unable to process data: qemu-img: Image is corrupt",
        ),
        "error",
    )
    unschedulable = _steps(
        APPLIED,
        Observed(
            printable_status="ErrorUnschedulable",
            disk_phase="Succeeded",
            status_message="Insufficient memory",
        ),
        "error",
    )

    assert (disk_failed[0].key, disk_failed[0].state, disk_failed[0].message) == (
        "disk",
        "failed",
        "The disk image could not be read. Delete the virtual machine and try another image, or "
        "ask the platform operators if it keeps failing.",
    )
    assert disk_failed[0].raw == "Unable to process data: qemu-img: Image is corrupt"
    assert unschedulable[1] == (
        "scheduled",
        "failed",
        "No node can run it right now. Choose a smaller size, or ask the platform operators for "
        "room.",
    )
