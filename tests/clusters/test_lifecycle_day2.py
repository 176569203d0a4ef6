"""Day 2 from what Kubernetes reports: each action's badge, words and timeline (pure).

Each test walks one action through the snapshots Kubernetes reports along the way (shaped as
``../shared/crds/STATUS.md`` describes, in the order the controllers write them) and checks
what a person reads at each: the badge names the action asked for until it is done, the
sentence says what is happening in the portal's words (the controller's one click away), and
the progress bar never goes backwards.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from butler_portal.lifecycle import STEP_ACTIVE, STEP_DONE, STEP_FAILED, STEP_PENDING, Step
from clusters.lifecycle import (
    ASLEEP,
    DELETE,
    DELETING,
    HIBERNATE,
    HIBERNATED,
    HIBERNATING,
    PROVISIONING,
    READY,
    SCALE,
    SCALING,
    UPGRADE,
    UPGRADING,
    WAKE,
    WAKING,
    Desired,
    Picture,
    derive,
    hold_progress,
    progress,
)
from tests.clusters.conftest import (
    asleep_cluster_objects,
    capi_cluster,
    condition,
    helm_release,
    kamaji_control_plane,
    machine,
    machine_deployment,
    ready_cluster_objects,
    tenant_control_plane,
)

Objects = list[dict[str, Any]]

ONCE_READY = Desired(
    name="demo",
    version="v1.35.4",
    worker_version="v1.35.4",
    worker_count=2,
    addons=("cilium", "portal-access"),
    applied=True,
    ever_ready=True,
    address_pool="tenant-acme",
)
#: What a person must never read on the page: controller conditions, field paths, counts of
#: "replicas", Flux's action lines.
RAW = re.compile(
    r"\bstatus\.|\bspec\.|is not True|replicas|MachineDeployment|MachineSet|KubeadmConfig"
    r"|Running '|preflight|TenantControlPlane"
)


def walk(desired: Desired | Sequence[Desired], snapshots: Sequence[Objects]) -> list[Picture]:
    """The picture at each snapshot (``desired`` may change along the way, one per snapshot)."""
    wanted = [desired] * len(snapshots) if isinstance(desired, Desired) else list(desired)
    return [derive(each, objects) for each, objects in zip(wanted, snapshots, strict=True)]


def fractions(pictures: Sequence[Picture]) -> list[float]:
    return [done / total for done, total in (progress(p.steps) for p in pictures)]


def assert_moves_forward(pictures: Sequence[Picture]) -> None:
    shares = fractions(pictures)
    assert shares == sorted(shares), f"progress went backwards: {shares}"


def assert_plain(pictures: Sequence[Picture]) -> None:
    for picture in pictures:
        for text in (picture.reason, *(step.message for step in picture.steps)):
            assert not RAW.search(text), f"raw controller text shown: {text!r}"


def steps_of(picture: Picture) -> dict[str, tuple[str, str]]:
    return {step.key: (step.state, step.message) for step in picture.steps}


def without(objects: Objects, *names: str) -> Objects:
    return [obj for obj in objects if obj["metadata"]["name"] not in names]


def leaving(obj: dict[str, Any]) -> dict[str, Any]:
    """``obj`` as Kubernetes reports it once asked to delete it."""
    return {**obj, "metadata": {**obj["metadata"], "deletionTimestamp": "2026-11-26T11:00:00Z"}}


def worker(name: str, *, version: str = "v1.35.4", minute: int = 0, **fields: Any) -> Any:
    return machine(
        f"demo-md-0-{name}", version=version, created=f"2026-11-26T11:{minute:02}:00Z", **fields
    )


# --- Scale ------------------------------------------------------------------------------------


def test_scaling_up_says_scaling_from_the_click_to_the_last_worker_joining() -> None:
    ready = ready_cluster_objects()
    base = without(ready, "demo-md-0")
    scaling = replace(ONCE_READY, worker_count=3, action=SCALE)
    snapshots = [
        ready,  # asked for, not applied yet
        # Applied: the MachineDeployment wants 3 and has 2 up to date. This moment used to
        # read "Upgrading: replacing workers with v1.35.4: 2 of 3 done".
        [*base, machine_deployment(replicas=3, existing=2, ready=2, up_to_date=2)],
        [
            *base,
            machine_deployment(replicas=3, existing=3, ready=2, up_to_date=3),
            worker("new", phase="Provisioning", ready=False, minute=1),
        ],
        [
            *base,
            machine_deployment(replicas=3, ready=3),
            worker("new", minute=1),
        ],
    ]

    pictures = walk(scaling, snapshots)

    assert [p.phase for p in pictures] == [SCALING, SCALING, SCALING, READY]
    assert [p.reason for p in pictures[:3]] == ["Scaling the workers to 3: 2 of 3 ready."] * 3
    assert [p.action for p in pictures] == [SCALE, SCALE, SCALE, ""]
    assert steps_of(pictures[2])["worker-2"] == ("active", "Creating the virtual machine")
    assert steps_of(pictures[2])["scale"] == ("active", "Scaling the workers to 3: 2 of 3 ready")
    assert_moves_forward(pictures)
    assert_plain(pictures)


def test_scaling_down_says_how_many_workers_go() -> None:
    ready = ready_cluster_objects(workers=3)
    base = without(ready, "demo-md-0", "demo-md-0-x1")
    scaling = replace(ONCE_READY, worker_count=2, action=SCALE)
    snapshots = [
        ready,
        [
            *base,
            machine_deployment(replicas=2, existing=3, ready=2),
            leaving(machine("demo-md-0-x1", created="2026-11-26T10:01:00Z")),
        ],
        [*base, machine_deployment(replicas=2, ready=2)],
    ]

    pictures = walk(scaling, snapshots)

    assert [p.phase for p in pictures] == [SCALING, SCALING, READY]
    assert [p.reason for p in pictures[:2]] == [
        "Scaling the workers down to 2: removing 1 worker."
    ] * 2
    assert_moves_forward(pictures)
    assert_plain(pictures)


# --- Upgrade ----------------------------------------------------------------------------------


def upgrade_snapshots() -> tuple[list[Desired], list[Objects]]:
    """v1.35.4 to v1.36.3 with 2 workers: the control plane, then a rolling update (one new
    worker joins, then an old one goes)."""
    ready = ready_cluster_objects()
    cluster, releases = ready[0], ready[-2:]
    old = [worker("x0", minute=0), worker("x1", minute=1)]
    new = [
        worker("n0", version="v1.36.3", minute=5),
        worker("n1", version="v1.36.3", minute=7),
    ]
    starting = [
        worker(name, version="v1.36.3", phase="Provisioning", ready=False, minute=minute)
        for name, minute in (("n0", 5), ("n1", 7))
    ]
    upgraded = kamaji_control_plane(version="v1.36.3", running="v1.36.3")
    upgraded_tcp = tenant_control_plane(version="v1.36.3")

    def rolling(existing: int, ready: int, up_to_date: int) -> dict[str, Any]:
        return machine_deployment(
            version="v1.36.3",
            existing=existing,
            ready=ready,
            up_to_date=up_to_date,
            rolling_out=True,
        )

    control_plane_target = replace(ONCE_READY, version="v1.36.3", action=UPGRADE)
    workers_follow = replace(control_plane_target, worker_version="v1.36.3")
    steps: list[tuple[Desired, Objects]] = [
        (control_plane_target, ready),
        (
            control_plane_target,
            [
                cluster,
                kamaji_control_plane(version="v1.36.3", running="v1.35.4"),
                tenant_control_plane(state="Upgrading", version="v1.35.4"),
                *ready[3:],
            ],
        ),
        (control_plane_target, [cluster, upgraded, upgraded_tcp, *ready[3:]]),
        # The workers' version follows: a new worker comes up beside the old ones.
        (
            workers_follow,
            [cluster, upgraded, upgraded_tcp, rolling(3, 2, 1), *old, starting[0], *releases],
        ),
        (
            workers_follow,
            [
                cluster,
                upgraded,
                upgraded_tcp,
                rolling(3, 3, 1),
                leaving(old[0]),
                old[1],
                new[0],
                *releases,
            ],
        ),
        (
            workers_follow,
            [
                cluster,
                upgraded,
                upgraded_tcp,
                rolling(3, 2, 2),
                old[1],
                new[0],
                starting[1],
                *releases,
            ],
        ),
        # Every worker runs the new version; the last old one is still going. This moment
        # used to end the upgrade on "Scaling".
        (
            workers_follow,
            [
                cluster,
                upgraded,
                upgraded_tcp,
                rolling(3, 3, 2),
                leaving(old[1]),
                *new,
                *releases,
            ],
        ),
        (
            workers_follow,
            [
                cluster,
                upgraded,
                upgraded_tcp,
                machine_deployment(version="v1.36.3"),
                *new,
                *releases,
            ],
        ),
    ]
    return [desired for desired, _ in steps], [objects for _, objects in steps]


def test_an_upgrade_says_upgrading_until_the_last_old_worker_is_gone() -> None:
    desired, snapshots = upgrade_snapshots()

    pictures = walk(desired, snapshots)

    assert [p.phase for p in pictures] == [UPGRADING] * 7 + [READY]
    assert [p.reason for p in pictures[:7]] == [
        "Upgrading the control plane from v1.35.4 to v1.36.3.",
        "Upgrading the control plane from v1.35.4 to v1.36.3.",
        "The control plane runs v1.36.3; the workers follow next.",
        "Replacing workers with v1.36.3: 0 of 2 done.",
        "Replacing workers with v1.36.3: 1 of 2 done.",
        "Replacing workers with v1.36.3: 1 of 2 done.",
        "Every worker runs v1.36.3; removing the old ones.",
    ]
    assert pictures[-1].action == ""
    assert_moves_forward(pictures[:7])
    assert_plain(pictures)


def test_an_upgrade_has_its_own_timeline() -> None:
    desired, snapshots = upgrade_snapshots()

    rolling = walk(desired[3], [snapshots[3]])[0]

    assert [(step.label, step.state) for step in rolling.steps] == [
        ("Control plane on v1.36.3", STEP_DONE),
        ("Worker 1 on v1.36.3", STEP_ACTIVE),
        ("Worker 2 on v1.36.3", STEP_PENDING),
        ("Old workers removed", STEP_PENDING),
    ]
    assert steps_of(rolling)["upgrade-worker-0"][1] == "Creating the virtual machine"
    assert progress(rolling.steps) == (1, 4)


# --- Hibernate and wake ----------------------------------------------------------------------


def suspended(addon: str) -> dict[str, Any]:
    """An add-on's release while the cluster sleeps: suspended, so its status lags its spec."""
    return helm_release(addon, generation=2, observed=1)


def test_hibernating_until_everything_sleeps_then_hibernated_with_nothing_in_progress() -> None:
    ready = ready_cluster_objects()
    cluster, workers = ready[0], ready[4:6]
    releases = [suspended("cilium"), suspended("portal-access")]
    stopping_kcp = kamaji_control_plane(replicas=0)
    stopping_kcp["status"] |= {"ready": True, "replicas": 2, "readyReplicas": 2}
    snapshots = [
        ready,
        [
            cluster,
            stopping_kcp,
            tenant_control_plane(),
            machine_deployment(replicas=0, existing=2, ready=2),
            *[leaving(each) for each in workers],
            *releases,
        ],
        [
            cluster,
            stopping_kcp,
            tenant_control_plane(),
            machine_deployment(replicas=0, ready=0),
            *releases,
        ],
        [*asleep_cluster_objects(), *releases],
    ]

    pictures = walk(replace(ONCE_READY, hibernated=True, action=HIBERNATE), snapshots)

    assert [p.phase for p in pictures] == [HIBERNATING] * 3 + [HIBERNATED]
    assert [p.reason for p in pictures] == [
        "Going to sleep: stopping 2 workers and the control plane.",
        "Going to sleep: stopping 2 workers and the control plane.",
        "Going to sleep: stopping the control plane.",
        ASLEEP,
    ]
    assert pictures[-1].action == ""
    asleep = pictures[-1]
    assert [(step.label, step.state) for step in asleep.steps] == [
        ("Workers stopped", STEP_DONE),
        ("Control plane stopped", STEP_DONE),
    ]
    assert_moves_forward(pictures)
    assert_plain(pictures)


def test_a_hibernated_cluster_reads_hibernated_without_an_action_too() -> None:
    picture = derive(replace(ONCE_READY, hibernated=True), asleep_cluster_objects())

    assert (picture.phase, picture.reason) == (HIBERNATED, ASLEEP)
    assert not [step for step in picture.steps if step.state != STEP_DONE]


def test_waking_up_says_waking_until_workers_and_add_ons_are_back() -> None:
    releases = [suspended("cilium"), suspended("portal-access")]
    asleep = asleep_cluster_objects()
    cluster = capi_cluster(available="False")
    starting_kcp = kamaji_control_plane()
    starting_kcp["status"] |= {"ready": False, "readyReplicas": 0}
    started = [cluster, kamaji_control_plane(), tenant_control_plane()]
    coming = [
        worker("w0", phase="Provisioning", ready=False, minute=20),
        worker("w1", phase="Provisioned", ready=False, minute=20),
    ]
    back = [worker("w0", minute=20), worker("w1", minute=20)]
    snapshots = [
        [*asleep, *releases],
        [
            cluster,
            starting_kcp,
            tenant_control_plane(state="NotReady", ready_replicas=0),
            machine_deployment(replicas=2, existing=0, ready=0),
            *releases,
        ],
        [*started, machine_deployment(replicas=2, existing=0, ready=0), *releases],
        [*started, machine_deployment(replicas=2, ready=0), *coming, *releases],
        [*started, machine_deployment(), *back, *releases],
        [
            *ready_cluster_objects()[:4],
            *back,
            helm_release("cilium"),
            helm_release("portal-access"),
        ],
    ]

    pictures = walk(replace(ONCE_READY, action=WAKE), snapshots)

    assert [p.phase for p in pictures] == [WAKING] * 5 + [READY]
    assert [p.reason for p in pictures[:5]] == [
        "Waking up: starting the control plane.",
        "Waking up: starting the control plane.",
        "Waking up: 0 of 2 workers back.",
        "Waking up: 0 of 2 workers back.",
        "Waking up: Flux checks the add-ons again.",
    ]
    assert steps_of(pictures[1])["wake-control-plane"] == (
        "active",
        "Starting the API server (0 of 2 ready)",
    )
    assert [step.label for step in pictures[0].steps] == [
        "Control plane started",
        "Worker 1 back",
        "Worker 2 back",
        "Add-on cilium ready",
        "Add-on portal-access ready",
    ]
    assert pictures[-1].action == ""
    assert_moves_forward(pictures[:5])
    assert_plain(pictures)


# --- Delete -----------------------------------------------------------------------------------


def test_deleting_counts_down_what_is_left_in_its_own_words() -> None:
    ready = ready_cluster_objects()
    cluster = capi_cluster(phase="Deleting", deletionTimestamp="2026-11-26T11:00:00Z")
    cluster["status"]["conditions"].append(
        condition("Deleting", "True", "WaitingForWorkersDeletion", "* MachineDeployment: demo-md-0")
    )
    control_plane = [kamaji_control_plane(), tenant_control_plane()]
    # Cluster API scaling the pool to nothing: the words of creation, backwards.
    emptying = machine_deployment(
        replicas=0, existing=2, ready=2, scaling_message="Scaling up from 0 to 3 replicas"
    )
    snapshots = [
        [cluster, *ready[1:]],
        [cluster, *control_plane, leaving(emptying), *[leaving(each) for each in ready[4:6]]],
        [cluster, *control_plane],
        [cluster],
    ]

    pictures = walk(replace(ONCE_READY, deleting=True, action=DELETE), snapshots)

    assert [p.phase for p in pictures] == [DELETING] * 4
    assert [p.reason for p in pictures] == [
        "Deleting: removing the add-ons, 2 workers and the control plane.",
        "Deleting: removing 2 workers and the control plane.",
        "Deleting: removing the control plane.",
        "Deleting: Kubernetes lets go of what is left.",
    ]
    assert pictures[0].reason_raw == "MachineDeployment: demo-md-0"
    assert [(step.label, step.state) for step in pictures[2].steps] == [
        ("Add-ons removed", STEP_DONE),
        ("Workers removed", STEP_DONE),
        ("Control plane removed", STEP_ACTIVE),
    ]
    assert [progress(p.steps) for p in pictures] == [(0, 3), (1, 3), (2, 3), (3, 3)]
    assert_plain(pictures)


# --- Controller messages ------------------------------------------------------------------------


def test_what_controllers_said_is_kept_one_click_away_never_shown_bare() -> None:
    # The three messages tenants were shown as they came.
    not_available = "* WorkersAvailable: * MachineDeployment fleet-demo-md-0: Available is not True"
    objects = [
        capi_cluster(available="False", available_message=not_available),
        *ready_cluster_objects()[1:4],
        machine(
            "demo-md-0-x0",
            phase="Pending",
            ready=False,
            node="",
            waiting=(
                "BootstrapConfigReady",
                "KubeadmConfig status.initialization.dataSecretCreated is false",
            ),
        ),
        machine("demo-md-0-x1", created="2026-11-26T10:01:00Z"),
        helm_release(
            "cilium", ready="Unknown", message="Running 'install' action with timeout of 5m0s"
        ),
        helm_release("portal-access"),
    ]
    first_time = replace(ONCE_READY, ever_ready=False)

    picture = derive(first_time, objects)

    raw = {step.key: step.raw for step in picture.steps}
    assert raw["worker-0"] == "KubeadmConfig status.initialization.dataSecretCreated is false"
    assert raw["addon-cilium"] == "Running 'install' action with timeout of 5m0s"
    assert picture.phase == PROVISIONING
    assert_plain([picture])

    everything_else_ready = derive(
        first_time, [objects[0], *ready_cluster_objects()[1:]]
    )  # only Cluster API's summary is left
    assert everything_else_ready.reason_raw.startswith("WorkersAvailable:")
    assert_plain([everything_else_ready])


def test_within_one_action_a_done_step_stays_done_unless_it_fails() -> None:
    before = {"upgrade-worker-0": Step("upgrade-worker-0", "Worker 1", 100, STEP_DONE)}
    now = [
        Step("upgrade-worker-0", "Worker 1", 100, STEP_ACTIVE, "Joining the cluster"),
        Step("upgrade-worker-1", "Worker 2", 101, STEP_ACTIVE),
    ]

    assert [step.state for step in hold_progress(now, before)] == [STEP_DONE, STEP_ACTIVE]

    failing = [Step("upgrade-worker-0", "Worker 1", 100, STEP_FAILED, "It broke")]
    assert [step.state for step in hold_progress(failing, before)] == [STEP_FAILED]


def test_an_action_ends_once_cluster_api_too_calls_the_cluster_available() -> None:
    # Cluster API's summary lags the workers it sums up: still scaling, not "Degraded".
    lagging = "* WorkersAvailable: * MachineDeployment demo-md-0: Available is not True"
    objects = [
        capi_cluster(available="False", available_message=lagging),
        *ready_cluster_objects(workers=3)[1:],
    ]

    picture = derive(replace(ONCE_READY, worker_count=3, action=SCALE), objects)

    assert (picture.phase, picture.action) == (SCALING, SCALE)
    assert picture.reason == "Almost done: waiting for Cluster API to report the cluster available."
    assert picture.reason_raw.startswith("WorkersAvailable:")
