"""The watcher's VM handlers: STATUS.md-shaped objects in, VM rows and tenant events out."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from django.utils import timezone

from butler_portal.kube.informer import WatchedKind
from tenants.audit import Actor
from tenants.models import Tenant, User
from tests.vms.conftest import (
    applied,
    condition,
    data_volume_obj,
    instance_obj,
    make_vm_row,
    observe,
    service_obj,
    virtual_machine_obj,
)
from vms.models import VMService, VMStep
from vms.selectors import vm_timeline
from vms.services import vm_expose
from vms.spec import PortSpec
from vms.status import status_handlers, vm_observe

pytestmark = pytest.mark.usefixtures("vm_catalog")


def test_the_watcher_follows_the_vms_own_objects_only() -> None:
    kinds = {(w.api_version, w.kind, w.label_selector) for w in status_handlers()}
    selector = "app.kubernetes.io/managed-by=butler-portal,butler.io/vm"

    assert kinds == {
        ("kubevirt.io/v1", "VirtualMachine", selector),
        ("kubevirt.io/v1", "VirtualMachineInstance", selector),
        ("cdi.kubevirt.io/v1beta1", "DataVolume", selector),
        ("v1", "Service", selector),
    }
    assert all(isinstance(w, WatchedKind) for w in status_handlers())


def test_a_vm_comes_up_as_kubernetes_reports_it(acme: Tenant) -> None:
    vm = applied(make_vm_row(acme, name="web"))

    importing = observe(
        vm,
        virtual_machine_obj(printable="Provisioning", ready=False),
        data_volume_obj(progress="42.50%"),
    )
    assert (importing.state, importing.reason) == (
        "provisioning",
        "Importing the disk image: 42.50%.",
    )
    assert (importing.disk_progress, importing.disk_progress_percent) == ("42.50%", 42.5)

    booting = observe(
        vm,
        data_volume_obj(phase="Succeeded", progress="100.0%"),
        virtual_machine_obj(printable="Running", ready=False),
        instance_obj(addresses=()),
    )
    assert (booting.state, booting.node_name, booting.ip_addresses) == ("starting", "node-1", [])

    running = observe(vm, instance_obj(), virtual_machine_obj())
    assert (running.state, running.reason, running.ip_address) == ("running", "", "10.200.1.14")
    assert running.running_since is not None
    assert running.printable_status == "Running"


def test_an_error_shows_kubevirts_explanation(acme: Tenant) -> None:
    vm = applied(make_vm_row(acme, name="web"))

    stuck = observe(
        vm,
        virtual_machine_obj(
            printable="ErrorUnschedulable",
            ready=False,
            conditions=[
                condition(
                    "PodScheduled",
                    "False",
                    "Unschedulable",
                    "0/3 nodes are available: 3 Insufficient memory.",
                )
            ],
        ),
    )

    assert (stuck.state, stuck.reason, stuck.reason_raw) == (
        "error",
        "No node has enough free memory for it. Choose a smaller size, or ask the platform "
        "operators for room.",
        "ErrorUnschedulable: 0/3 nodes are available: 3 Insufficient memory.",
    )
    failed_step = next(step for step in vm_timeline(stuck) if step.key == "scheduled")
    assert (failed_step.state, failed_step.message, failed_step.raw) == (
        "failed",
        stuck.reason,
        stuck.reason_raw,
    )


class Clock:
    """``timezone.now`` as the test sets it."""

    def __init__(self) -> None:
        self.now = timezone.now().replace(microsecond=0)

    def __call__(self) -> datetime.datetime:
        return self.now

    def advance(self, seconds: int) -> None:
        self.now += datetime.timedelta(seconds=seconds)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    ticking = Clock()
    monkeypatch.setattr("vms.status.timezone.now", ticking)
    return ticking


def test_the_timeline_records_when_each_step_started_and_finished(
    acme: Tenant, clock: Clock
) -> None:
    vm = applied(make_vm_row(acme, name="web"))
    start = clock.now
    observe(
        vm,
        virtual_machine_obj(printable="Provisioning", ready=False),
        data_volume_obj(progress="42.50%"),
    )
    clock.advance(75)
    observe(
        vm,
        data_volume_obj(phase="Succeeded", progress="100.0%"),
        virtual_machine_obj(printable="Running", ready=False),
        instance_obj(addresses=()),
    )
    clock.advance(20)
    running = observe(vm, instance_obj(), virtual_machine_obj())

    times = {
        step.key: (step.state, step.started_at, step.finished_at) for step in vm_timeline(running)
    }
    assert times == {
        "disk": ("done", start, start + datetime.timedelta(seconds=75)),
        # The node was there when the disk was: it was scheduled at once.
        "scheduled": (
            "done",
            start + datetime.timedelta(seconds=75),
            start + datetime.timedelta(seconds=75),
        ),
        "running": (
            "done",
            start + datetime.timedelta(seconds=75),
            start + datetime.timedelta(seconds=95),
        ),
        "address": (
            "done",
            start + datetime.timedelta(seconds=75),
            start + datetime.timedelta(seconds=95),
        ),
    }
    assert VMStep.objects.filter(vm=running).count() == 4


def test_a_step_that_goes_back_to_pending_forgets_its_times(acme: Tenant, clock: Clock) -> None:
    vm = applied(make_vm_row(acme, name="web"))
    observe(
        vm,
        data_volume_obj(phase="Succeeded", progress="100.0%"),
        instance_obj(),
        virtual_machine_obj(),
    )
    clock.advance(30)

    # The instance went away; KubeVirt starts another one.
    restarting = observe(
        vm, virtual_machine_obj(printable="Stopped", ready=False), instance_obj(), event="DELETED"
    )

    steps = {
        step.key: (step.state, step.started_at, step.finished_at)
        for step in vm_timeline(restarting)
    }
    assert steps["scheduled"] == ("active", clock.now, None)
    assert steps["running"] == ("pending", None, None)


def test_a_stopped_instance_loses_its_addresses(acme: Tenant) -> None:
    vm = observe(applied(make_vm_row(acme, name="web")), instance_obj(), virtual_machine_obj())

    stopped = observe(vm, instance_obj(), event="DELETED")

    assert (stopped.node_name, stopped.ip_addresses) == ("", [])


def test_objects_map_to_their_tenants_vm_by_namespace_and_label(
    acme: Tenant, globex: Tenant
) -> None:
    ours = applied(make_vm_row(acme, name="web"))
    theirs = applied(make_vm_row(globex, name="web"))
    stray = virtual_machine_obj("web", namespace="elsewhere")
    unlabelled = virtual_machine_obj("web")
    unlabelled["metadata"]["labels"] = {}

    found = vm_observe(kind="VirtualMachine", event_type="MODIFIED", obj=virtual_machine_obj())

    assert found == ours.pk
    assert vm_observe(kind="VirtualMachine", event_type="MODIFIED", obj=stray) is None
    assert vm_observe(kind="VirtualMachine", event_type="MODIFIED", obj=unlabelled) is None
    theirs.refresh_from_db()
    assert theirs.printable_status == ""


def test_the_service_address_lands_on_the_exposure(acme: Tenant, bob: User) -> None:
    vm = applied(make_vm_row(acme, name="web"))
    vm_expose(actor=Actor(bob), vm=vm, ports=[PortSpec("TCP", 22, 22)])
    VMService.objects.filter(vm=vm).update(applied_at=vm.applied_at)

    waiting = observe(vm, service_obj(ip=None))
    assert (waiting.service.state, waiting.service.message) == (
        "waiting",
        "Waiting for a public address from the tenant's share.",
    )
    assigned = observe(vm, service_obj(ip="192.0.2.20"))
    assert (assigned.service.state, assigned.service.public_ip) == ("ready", "192.0.2.20")


def test_events_go_out_when_the_state_changes_with_a_toast_on_arrival(
    acme: Tenant, published_events: list[Any], django_capture_on_commit_callbacks: Any
) -> None:
    vm = applied(make_vm_row(acme, name="web"))
    with django_capture_on_commit_callbacks(execute=True):
        observe(vm, virtual_machine_obj(printable="Starting", ready=False))
        observe(vm, virtual_machine_obj(printable="Starting", ready=False))  # no change
        observe(vm, virtual_machine_obj())

    assert published_events == [
        (acme.pk, "vm.changed", vm.pk, {"state": "starting"}),
        (
            acme.pk,
            "vm.changed",
            vm.pk,
            {"state": "running", "toast": "acme/web is running.", "level": "success"},
        ),
    ]
