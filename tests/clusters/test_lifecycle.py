"""From STATUS.md-shaped objects to phase, reason and timeline (pure: no database, no API)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from butler_portal.explain import ASK_OPERATORS, explain
from butler_portal.lifecycle import plain
from clusters.lifecycle import (
    DEGRADED,
    FAILED,
    PENDING,
    PROVISIONING,
    READY,
    SCALING,
    UPGRADING,
    Desired,
    Picture,
    derive,
    read_helm_release,
    read_machine,
    read_tenant_control_plane,
)
from tests.clusters.conftest import (
    capi_cluster,
    helm_release,
    kamaji_control_plane,
    machine,
    machine_deployment,
    ready_cluster_objects,
    tenant_control_plane,
)

DESIRED = Desired(
    name="demo",
    version="v1.35.4",
    worker_version="v1.35.4",
    worker_count=2,
    addons=("cilium", "portal-access"),
    applied=True,
    address_pool="tenant-acme",
)
ONCE_READY = replace(DESIRED, ever_ready=True)


def steps_of(picture: Picture) -> dict[str, tuple[str, str]]:
    return {step.key: (step.state, step.message) for step in picture.steps}


def states_of(picture: Picture) -> dict[str, str]:
    return {step.key: step.state for step in picture.steps}


def raw_of(picture: Picture) -> dict[str, str]:
    return {step.key: step.raw for step in picture.steps if step.raw}


def said(raw: str, fallback: str) -> str:
    """What the portal says for a controller's ``raw`` message (the catalogue's sentence,
    else ``fallback``), whatever the catalogue knows by now."""
    return explain(raw, fallback=fallback).text


# --- Provisioning, step by step --------------------------------------------------------------


def test_a_cluster_not_applied_yet_is_pending_with_every_step_ahead() -> None:
    picture = derive(replace(DESIRED, applied=False), [])

    assert (picture.phase, picture.reason) == (PENDING, "Queued for provisioning.")
    assert set(states_of(picture).values()) == {"pending"}
    assert list(states_of(picture)) == [
        "control-plane",
        "endpoint",
        "control-plane-ready",
        "kubeconfig",
        "worker-0",
        "worker-1",
        "addon-cilium",
        "addon-portal-access",
    ]


def test_applied_but_not_picked_up_says_what_it_waits_for() -> None:
    picture = derive(DESIRED, [])

    assert picture.phase == PROVISIONING
    assert picture.reason == "Waiting for Cluster API to pick up the cluster"
    assert steps_of(picture)["control-plane"] == ("active", picture.reason)


def test_waiting_for_a_load_balancer_address_names_the_pool() -> None:
    # The provider's "Failed" reason means "waiting, requeued" (STATUS.md §10.4).
    kcp = kamaji_control_plane(
        waiting=(
            "TenantControlPlaneAddressReady",
            "Failed",
            "the LoadBalancer has no ingress IP yet",
        )
    )

    picture = derive(
        DESIRED, [kcp, tenant_control_plane(state="Provisioning", endpoint="", version="")]
    )

    steps = steps_of(picture)
    assert steps["control-plane"] == ("done", "")
    raw = "the LoadBalancer has no ingress IP yet"
    assert steps["endpoint"] == (
        "active",
        said(raw, "Waiting for a load-balancer address from pool tenant-acme"),
    )
    assert raw_of(picture)["endpoint"] == raw
    assert steps["control-plane-ready"][0] == "pending"
    assert (picture.phase, picture.reason, picture.reason_raw) == (
        PROVISIONING,
        steps["endpoint"][1],
        raw,
    )
    assert picture.endpoint == ""


def test_a_provider_error_fails_its_step_and_becomes_the_reason() -> None:
    # "Pending" is the provider's word for a real error; the message says what.
    kcp = kamaji_control_plane(
        waiting=("TenantControlPlaneCreated", "Pending", 'DataStore "fast" not found')
    )

    picture = derive(DESIRED, [kcp])

    sentence = said(
        'DataStore "fast" not found', f"The control plane could not be created. {ASK_OPERATORS}"
    )
    assert steps_of(picture)["control-plane"] == ("failed", sentence)
    assert raw_of(picture)["control-plane"] == 'DataStore "fast" not found'
    assert (picture.phase, picture.reason, picture.reason_raw) == (
        PROVISIONING,
        sentence,
        'DataStore "fast" not found',
    )


def test_a_starting_api_server_counts_its_ready_replicas() -> None:
    # NotReady with an empty version.version simply means "still coming up" (§1).
    kcp = kamaji_control_plane(done_until="InfrastructureClusterPatched")
    tcp = tenant_control_plane(state="NotReady", version="", ready_replicas=1)

    picture = derive(DESIRED, [kcp, tcp])

    steps = steps_of(picture)
    assert steps["endpoint"] == ("done", "https://192.0.2.10:6443")
    assert steps["control-plane-ready"] == ("active", "Starting the API server (1 of 2 ready)")
    assert steps["kubeconfig"][0] == "pending"
    assert picture.reason == "Starting the API server (1 of 2 ready)"
    assert picture.endpoint == "192.0.2.10:6443"


def test_workers_join_one_step_each_with_what_holds_them_back() -> None:
    kcp = kamaji_control_plane()
    md = machine_deployment(
        replicas=3,
        ready=0,
        existing=2,
        scaling_message="* MachineSet demo-md-0-x7k2p: waiting for the control plane version",
    )
    first = machine(
        "demo-md-0-b",
        phase="Provisioning",
        ready=False,
        created="2026-11-26T10:01:00Z",
        waiting=("InfrastructureReady", "VirtualMachine is Provisioning: importing the root disk"),
    )
    second = machine(
        "demo-md-0-a",
        phase="Running",
        node="demo-md-0-a",
        ready=False,
        created="2026-11-26T10:02:00Z",
    )

    picture = derive(replace(DESIRED, worker_count=3), [kcp, md, first, second])

    steps = steps_of(picture)
    # Ordered by creation, not by name.
    importing = "VirtualMachine is Provisioning: importing the root disk"
    assert steps["worker-0"] == ("active", said(importing, "Creating the virtual machine"))
    assert steps["worker-1"] == (
        "done",
        "Node demo-md-0-a (not Ready yet: waiting for the network add-on)",
    )
    blocked = "* MachineSet demo-md-0-x7k2p: waiting for the control plane version"
    assert steps["worker-2"] == (
        "active",
        said(blocked, "Waiting for Cluster API to create the machine"),
    )
    assert raw_of(picture)["worker-0"] == importing
    assert picture.phase == PROVISIONING
    assert picture.reason == steps["worker-0"][1]


def test_a_failed_worker_machine_fails_its_step() -> None:
    broken = machine(
        "demo-md-0-a",
        phase="Provisioned",
        node=None,
        ready=False,
        failure="VM demo-md-0-a is in a final phase",
    )

    picture = derive(DESIRED, [kamaji_control_plane(), machine_deployment(ready=0), broken])

    sentence = said(
        "VM demo-md-0-a is in a final phase", f"Its virtual machine failed. {ASK_OPERATORS}"
    )
    assert steps_of(picture)["worker-0"] == ("failed", sentence)
    assert (picture.reason, picture.reason_raw) == (sentence, "VM demo-md-0-a is in a final phase")


def test_machines_being_deleted_do_not_count_as_workers() -> None:
    leaving = machine(
        "demo-md-0-old", created="2026-11-26T09:00:00Z", deletionTimestamp="2026-11-26T10:30:00Z"
    )
    staying = machine("demo-md-0-new", created="2026-11-26T10:00:00Z")

    picture = derive(replace(DESIRED, worker_count=1), [kamaji_control_plane(), leaving, staying])

    assert steps_of(picture)["worker-0"] == ("done", "Node demo-md-0-new")


def test_a_failing_add_on_is_the_first_failing_reason() -> None:
    objects = [
        *ready_cluster_objects(addons=("portal-access",)),
        helm_release(
            "cilium",
            ready="False",
            reason="InstallFailed",
            message="Helm install failed: timed out",
        ),
    ]
    objects[0] = capi_cluster(
        available="False", available_message="* WorkersAvailable: 0 of 2 available"
    )

    picture = derive(DESIRED, objects)

    sentence = said("Helm install failed: timed out", f"Installing it failed. {ASK_OPERATORS}")
    assert steps_of(picture)["addon-cilium"] == ("failed", sentence)
    assert (picture.phase, picture.reason) == (PROVISIONING, sentence)
    assert picture.reason_raw == "Helm install failed: timed out"


def test_everything_reported_ready_makes_the_cluster_ready() -> None:
    picture = derive(DESIRED, ready_cluster_objects())

    assert (picture.phase, picture.reason) == (READY, "")
    assert set(states_of(picture).values()) == {"done"}
    assert (picture.endpoint, picture.control_plane_version, picture.ready_workers) == (
        "192.0.2.10:6443",
        "v1.35.4",
        2,
    )
    assert picture.control_plane_ready
    assert picture.control_plane_initialized


def test_ready_waits_for_cluster_api_to_call_it_available() -> None:
    objects = ready_cluster_objects()
    objects[0] = capi_cluster(
        available="False",
        available_message="* RemoteConnectionProbe: Remote connection not established yet",
    )

    picture = derive(DESIRED, objects)

    raw = "RemoteConnectionProbe: Remote connection not established yet"
    assert (picture.phase, picture.reason, picture.reason_raw) == (
        PROVISIONING,
        said(raw, "Waiting for Cluster API to report the cluster available."),
        raw,
    )


def test_a_release_whose_status_lags_its_spec_is_not_ready_yet() -> None:
    # Trust Ready only when observedGeneration == generation (§9).
    stale = helm_release("cilium", generation=2, observed=1)

    assert read_helm_release(stale).ready is False
    picture = derive(DESIRED, [*ready_cluster_objects(addons=("portal-access",)), stale])
    assert steps_of(picture)["addon-cilium"][0] == "active"
    assert picture.phase == PROVISIONING


# --- Once ready, without an action recorded (see test_lifecycle_day2.py for actions) -----------


def test_versions_compare_with_or_without_the_v() -> None:
    objects = ready_cluster_objects()
    objects[1]["status"]["version"] = "1.35.4"  # the provider adds the "v" only on the TCP

    assert derive(ONCE_READY, objects).phase == READY


def test_without_an_action_a_version_mismatch_reads_as_an_upgrade() -> None:
    # A change made before the portal recorded actions (or outside it).
    picture = derive(replace(ONCE_READY, version="v1.36.3"), ready_cluster_objects())

    assert (picture.phase, picture.reason, picture.action) == (
        UPGRADING,
        "Upgrading the control plane from v1.35.4 to v1.36.3.",
        "",
    )


def test_without_an_action_missing_workers_read_as_scaling() -> None:
    picture = derive(replace(ONCE_READY, worker_count=3), ready_cluster_objects())

    assert (picture.phase, picture.reason) == (SCALING, "Scaling the workers to 3: 2 of 3 ready.")


def test_a_control_plane_down_after_being_ready_is_degraded() -> None:
    objects = ready_cluster_objects()
    kcp = kamaji_control_plane()
    kcp["status"]["ready"] = False
    objects[1] = kcp
    objects[2] = tenant_control_plane(state="NotReady", ready_replicas=0)

    picture = derive(ONCE_READY, objects)

    assert (picture.phase, picture.reason) == (
        DEGRADED,
        "The control plane is not ready (Kamaji reports NotReady).",
    )


def test_an_add_on_failing_later_degrades_a_ready_cluster() -> None:
    objects = [
        *ready_cluster_objects(addons=("cilium",)),
        helm_release(
            "portal-access", ready="False", stalled=True, message="upgrade retries exhausted"
        ),
    ]

    picture = derive(ONCE_READY, objects)

    sentence = said("upgrade retries exhausted", f"Installing it failed. {ASK_OPERATORS}")
    assert (picture.phase, picture.reason, picture.reason_raw) == (
        DEGRADED,
        f"Add-on portal-access: {sentence}",
        "upgrade retries exhausted",
    )


def test_a_refused_apply_fails_the_cluster_with_the_api_s_words() -> None:
    failed = derive(
        replace(DESIRED, apply_error="Kubernetes rejected MachineDeployment demo-md-0: too big"), []
    )
    assert (failed.phase, failed.reason) == (
        FAILED,
        "Kubernetes rejected MachineDeployment demo-md-0: too big",
    )


# --- Readers ----------------------------------------------------------------------------------


def test_readers_take_what_status_md_documents() -> None:
    tcp = read_tenant_control_plane(tenant_control_plane(state="Upgrading", version="1.35.4"))
    assert (tcp.state, tcp.version, tcp.endpoint) == ("Upgrading", "v1.35.4", "192.0.2.10:6443")

    empty: dict[str, Any] = {"metadata": {"name": "x"}}
    assert read_tenant_control_plane(empty).state == ""
    assert read_machine(empty).phase == "Pending"
    assert read_helm_release(empty).ready is None


def test_plain_turns_capi_bullet_lists_into_one_line() -> None:
    assert (
        plain("* WorkersAvailable:\n  * MachineDeployment demo-md-0: 0 available")
        == "WorkersAvailable:"
    )
    assert plain("") == ""
    assert len(plain("x" * 1000)) == 300
