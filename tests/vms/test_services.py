"""The VM services: validation, quota, power actions, exposed ports, deletion (no Kubernetes)."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ValidationError

from clusters.models import InstanceType
from tenants.audit import Actor
from tenants.models import AuditEvent, QuotaClaim, Tenant, User
from tenants.selectors import quota_used
from tenants.services import tenant_set_state
from tests.clusters.conftest import make_cluster_row
from tests.concurrency import race
from tests.conftest import make_tenant
from tests.vms.conftest import (
    add_key,
    applied,
    create,
    image,
    instance_type,
    make_running,
    make_vm_row,
    spec,
)
from vms.crypto import decrypt
from vms.models import VirtualMachine, VMService
from vms.provisioning import vm_fail
from vms.selectors import vm_quota_preview
from vms.services import (
    vm_bulk_power,
    vm_delete,
    vm_expose,
    vm_restart,
    vm_retry,
    vm_start,
    vm_stop,
    vm_unexpose,
)
from vms.spec import PortSpec

pytestmark = pytest.mark.usefixtures("vm_catalog")


def errors_of(error: pytest.ExceptionInfo[ValidationError]) -> dict[str, list[str]]:
    return error.value.message_dict


# --- Creating -------------------------------------------------------------------------------


def test_creating_reserves_the_quota_records_and_audits(acme: Tenant, bob: User) -> None:
    key = add_key(bob)

    vm = create(
        acme, bob, "web", ssh_keys=[key], disk_gib=25, instance_type=instance_type("m1.large")
    )

    assert (vm.state, vm.run_strategy, vm.created_by) == ("pending", "Always", bob)
    assert vm.authorized_keys == [key.public_key]
    assert list(vm.ssh_keys.all()) == [key]
    claim = QuotaClaim.objects.get(tenant=acme, subject=f"vm:{vm.pk}")
    assert {r: v for r, v in claim.amounts().items() if v} == {
        "vms": 1,
        "vcpu": 4,
        "memory_mib": 8192,
        "storage_gib": 25,
    }
    event = AuditEvent.objects.get(object_type="virtualmachine", action="create")
    assert (event.actor, event.object_repr) == (bob, "acme/web")
    assert event.changes["ssh_keys"] == [key.fingerprint]


def test_a_vm_created_stopped_only_prepares_its_disk(acme: Tenant, bob: User) -> None:
    vm = create(acme, bob, "later", start=False)

    assert vm.run_strategy == "Halted"


def test_user_data_is_stored_encrypted_and_never_as_plain_text(acme: Tenant, bob: User) -> None:
    secret = "packages: [nginx]\nwrite_files:\n  - path: /etc/token\n    content: s3cr3t-t0ken\n"

    vm = create(acme, bob, "web", user_data=secret)

    stored = VirtualMachine.objects.values_list("user_data_encrypted", flat=True).get(pk=vm.pk)
    assert "s3cr3t-t0ken" not in stored
    assert decrypt(stored) == secret
    assert vm.has_user_data


USER_DATA_ERRORS = {
    "bad yaml": ("packages: [nginx\n", "Not valid YAML (line 2, column 1)"),
    "not a mapping": ("- just\n- a list\n", "must be a #cloud-config mapping"),
    "shell script": ("#!/bin/sh\necho hi\n", "Shell scripts are not accepted"),
    "keys not a list": ("ssh_authorized_keys: ssh-ed25519 AAAA\n", "must be a list of public keys"),
}


@pytest.mark.parametrize(
    ("text", "message"), list(USER_DATA_ERRORS.values()), ids=list(USER_DATA_ERRORS)
)
def test_bad_user_data_is_refused_on_its_field(
    acme: Tenant, bob: User, text: str, message: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        create(acme, bob, "web", user_data=text)

    assert list(errors_of(refused)) == ["user_data"]
    assert message in errors_of(refused)["user_data"][0]
    assert not VirtualMachine.objects.exists()


def test_too_much_user_data_is_refused(acme: Tenant, bob: User, settings: object) -> None:
    settings.VM_USER_DATA_MAX_BYTES = 100  # type: ignore[attr-defined]

    with pytest.raises(ValidationError) as refused:
        create(acme, bob, "web", user_data="runcmd:\n" + "  - echo hello\n" * 10)

    assert errors_of(refused) == {
        "user_data": ["User data is 158 bytes; at most 100 bytes are accepted."]
    }


def test_every_problem_is_reported_on_its_field_at_once(acme: Tenant, bob: User) -> None:
    stranger = User.objects.create(username="stranger")
    theirs = add_key(stranger)
    retired = InstanceType.objects.create(name="z1.old", vcpu=1, memory_mib=1024, active=False)

    with pytest.raises(ValidationError) as refused:
        create(acme, bob, "Bad_Name", ssh_keys=[theirs], disk_gib=5, instance_type=retired)

    assert set(errors_of(refused)) == {"name", "ssh_keys", "disk_gib", "instance_type"}
    assert errors_of(refused)["ssh_keys"] == ["Choose among your own SSH keys."]
    assert errors_of(refused)["disk_gib"] == ["Ubuntu 24.04 LTS needs a disk of at least 10 GiB."]


def test_names_are_unique_per_tenant_and_stay_clear_of_clusters(
    acme: Tenant, globex: Tenant, bob: User, gina: User
) -> None:
    create(acme, bob, "web")
    make_cluster_row(acme, name="k8s")

    with pytest.raises(ValidationError) as twice:
        create(acme, bob, "web")
    with pytest.raises(ValidationError) as cluster_name:
        create(acme, bob, "k8s")
    with pytest.raises(ValidationError) as worker_name:
        create(acme, bob, "k8s-md-0-abcde-fghij")
    create(globex, gina, "web")  # another tenant, another namespace

    assert errors_of(twice) == {"name": ["acme already has a virtual machine named web."]}
    assert errors_of(cluster_name) == {"name": ["The cluster k8s already uses this name in acme."]}
    assert "belong to that cluster's workers" in errors_of(worker_name)["name"][0]


def test_a_suspended_tenant_gets_nothing_new_but_may_give_back(
    acme: Tenant, bob: User, oscar: User
) -> None:
    vm = make_running(make_vm_row(acme, name="web"))
    tenant_set_state(actor=Actor(oscar), tenant=acme, state=Tenant.State.SUSPENDED)

    with pytest.raises(ValidationError) as created:
        create(acme, bob, "new")
    with pytest.raises(ValidationError) as exposed:
        vm_expose(actor=Actor(bob), vm=vm, ports=[PortSpec("TCP", 22, 22)])
    stopped = vm_stop(actor=Actor(bob), vm=vm)
    with pytest.raises(ValidationError) as started:
        vm_start(actor=Actor(bob), vm=stopped)

    given_back = (
        "Tenant acme is suspended: resources can only be given back (stopped, hibernated, deleted)."
    )
    assert errors_of(created) == {
        "__all__": ["Tenant acme is suspended: nothing new can be created."]
    }
    assert errors_of(started) == errors_of(exposed) == {"__all__": [given_back]}
    assert stopped.run_strategy == "Halted"
    assert vm_delete(actor=Actor(bob), vm=stopped, confirm_name="web") is True


# --- Quota ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("limits", "fields", "field"),
    [
        ({"vms": 0}, {}, "__all__"),
        ({"vcpu": 3}, {"instance_type": "m1.large"}, "instance_type"),
        ({"memory_mib": 1024}, {}, "instance_type"),
        ({"storage_gib": 50}, {"disk_gib": 60}, "disk_gib"),
    ],
    ids=["vms", "vcpu", "memory", "storage"],
)
def test_a_refusal_names_the_field_to_change_and_the_preview_foresees_it(
    bob: User, limits: dict[str, int], fields: dict[str, object], field: str
) -> None:
    tenant = make_tenant("tight", "Tight Ltd", **limits)
    if "instance_type" in fields:
        fields["instance_type"] = instance_type(str(fields["instance_type"]))

    preview = vm_quota_preview(tenant, spec("web", **fields))
    with pytest.raises(ValidationError) as refused:
        create(tenant, bob, "web", **fields)

    assert list(errors_of(refused)) == [field]
    assert preview.errors() == errors_of(refused)
    assert not preview.fits
    assert not VirtualMachine.objects.filter(tenant=tenant).exists()
    assert sum(quota_used(tenant).values()) == 0


@pytest.mark.django_db(transaction=True)
def test_concurrent_requests_never_exceed_the_vm_quota() -> None:
    """Ten requests at once race for a quota of three VMs."""
    from tests.vms.conftest import ensure_vm_catalog

    ensure_vm_catalog()
    tenant = make_tenant("race", "Race Ltd", vms=3)
    user = User.objects.create(username="racer")

    outcomes = race(10, lambda number: create(tenant, user, f"race-{number}"))

    assert outcomes == ["__all__"] * 7 + ["created"] * 3
    assert VirtualMachine.objects.filter(tenant=tenant).count() == 3
    assert quota_used(tenant)["vms"] == 3


# --- Power ----------------------------------------------------------------------------------


def test_stop_and_start_change_the_run_strategy_in_turn(acme: Tenant, bob: User) -> None:
    vm = make_running(make_vm_row(acme, name="web"))
    actor = Actor(bob)

    stopping = vm_stop(actor=actor, vm=vm)
    with pytest.raises(ValidationError) as again:
        vm_stop(actor=actor, vm=vm)
    started = vm_start(actor=actor, vm=vm)

    assert (stopping.run_strategy, stopping.state) == ("Halted", "stopping")
    assert errors_of(again) == {"__all__": ["The virtual machine is already stopped or stopping."]}
    assert (started.run_strategy, started.state) == ("Always", "running")
    assert list(
        AuditEvent.objects.filter(object_id=str(vm.pk))
        .order_by("id")
        .values_list("action", "changes")
    ) == [
        ("stop", {"run_strategy": ["Always", "Halted"]}),
        ("start", {"run_strategy": ["Halted", "Always"]}),
    ]


def test_only_a_running_vm_restarts(acme: Tenant, bob: User) -> None:
    booting = applied(make_vm_row(acme, name="booting"))
    running = make_running(make_vm_row(acme, name="web"))

    with pytest.raises(ValidationError) as refused:
        vm_restart(actor=Actor(bob), vm=booting)
    restarted = vm_restart(actor=Actor(bob), vm=running)

    assert errors_of(refused) == {"__all__": ["Only a running virtual machine can be restarted."]}
    assert restarted.restart_requested_at is not None


def test_bulk_power_reports_each_vm_on_its_own(acme: Tenant, bob: User) -> None:
    running = make_running(make_vm_row(acme, name="a"))
    stopped = make_vm_row(acme, name="b", run_strategy="Halted")

    outcomes = vm_bulk_power(actor=Actor(bob), vms=[running, stopped], action="stop")

    assert [(o.vm_id, o.ok, o.status, o.message) for o in outcomes] == [
        (running.pk, True, 200, ""),
        (stopped.pk, False, 400, "The virtual machine is already stopped or stopping."),
    ]
    running.refresh_from_db()
    assert running.run_strategy == "Halted"


# --- Exposed ports --------------------------------------------------------------------------


def test_exposing_takes_one_address_of_the_quota_whatever_the_ports(
    acme: Tenant, bob: User
) -> None:
    vm = make_running(create(acme, bob, "web"))
    actor = Actor(bob)

    service = vm_expose(actor=actor, vm=vm, ports=[PortSpec("TCP", 22, 22)])
    vm_expose(actor=actor, vm=vm, ports=[PortSpec("TCP", 443, 8443), PortSpec("UDP", 53, 53)])
    service.refresh_from_db()

    assert service.ports == [
        {"port": 22, "target_port": 22, "protocol": "TCP"},
        {"port": 443, "target_port": 8443, "protocol": "TCP"},
        {"port": 53, "target_port": 53, "protocol": "UDP"},
    ]
    assert quota_used(acme)["load_balancer_ips"] == 1
    assert service.state == "pending"
    assert AuditEvent.objects.filter(action="expose").latest("id").changes == {
        "ports": [["22/TCP"], ["22/TCP", "443/TCP→8443", "53/UDP"]]
    }


def test_exposing_beyond_the_address_quota_is_refused_on_ports(bob: User) -> None:
    tenant = make_tenant("tight", "Tight Ltd", load_balancer_ips=0)
    vm = make_running(create(tenant, bob, "web"))

    with pytest.raises(ValidationError) as refused:
        vm_expose(actor=Actor(bob), vm=vm, ports=[PortSpec("TCP", 22, 22)])

    assert list(errors_of(refused)) == ["ports"]
    assert "load-balancer ips" in errors_of(refused)["ports"][0]
    assert not VMService.objects.exists()


def test_bad_ports_are_refused(acme: Tenant, bob: User) -> None:
    vm = make_running(make_vm_row(acme, name="web"))

    with pytest.raises(ValidationError) as refused:
        vm_expose(
            actor=Actor(bob),
            vm=vm,
            ports=[PortSpec("TCP", 22, 22), PortSpec("TCP", 22, 2222), PortSpec("SCTP", 0, 1)],
        )

    assert errors_of(refused) == {
        "ports": [
            "SCTP: use TCP or UDP.",
            "0 is not a port number (1–65535).",
            "Each public port (and protocol) can forward to one port only.",
        ]
    }


def test_withdrawing_ports_keeps_the_address_until_the_last_one_goes(
    acme: Tenant, bob: User
) -> None:
    vm = make_running(create(acme, bob, "web"))
    actor = Actor(bob)
    vm_expose(actor=actor, vm=vm, ports=[PortSpec("TCP", 22, 22), PortSpec("TCP", 80, 80)])

    with pytest.raises(ValidationError) as unknown:
        vm_unexpose(actor=actor, vm=vm, ports=[("tcp", 8080)])
    partly = vm_unexpose(actor=actor, vm=vm, ports=[("tcp", 80)])
    assert partly is not None
    assert (partly.ports, quota_used(acme)["load_balancer_ips"]) == (
        [{"port": 22, "target_port": 22, "protocol": "TCP"}],
        1,
    )
    gone = vm_unexpose(actor=actor, vm=vm)

    assert errors_of(unknown) == {"ports": ["Not exposed: 8080/TCP."]}
    # Without Kubernetes there is nothing to wait for: the address is back at once.
    assert gone is None
    assert not VMService.objects.exists()
    assert quota_used(acme)["load_balancer_ips"] == 0
    with pytest.raises(ValidationError) as nothing_left:
        vm_unexpose(actor=actor, vm=vm)
    assert errors_of(nothing_left) == {"ports": ["No port of this virtual machine is exposed."]}


# --- Retrying a VM Kubernetes refused --------------------------------------------------------


def test_a_failed_vm_is_retried_with_its_quota_reserved_again_and_its_ports_left_out(
    bob: User, django_capture_on_commit_callbacks: Any
) -> None:
    tenant = make_tenant("tight", "Tight Ltd", vms=1)
    vm = create(tenant, bob, "web", instance_type=instance_type("m1.large"), disk_gib=25)
    vm_expose(actor=Actor(bob), vm=vm, ports=[PortSpec("TCP", 22, 22)])
    refusal = "Kubernetes rejected VirtualMachine web: spec.template: bad"
    vm_fail(vm_id=vm.pk, reason=refusal)
    vm.refresh_from_db()
    assert (vm.state, sum(quota_used(tenant).values())) == ("failed", 0)
    assert not VMService.objects.exists()  # its Service went with the failure

    # Another VM took the room in between: the retry is refused on the field to change.
    other = create(tenant, bob, "other")
    with pytest.raises(ValidationError) as no_room:
        vm_retry(actor=Actor(bob), vm=vm)
    assert list(errors_of(no_room)) == ["__all__"]
    assert "virtual machines" in errors_of(no_room)["__all__"][0].lower()
    vm.refresh_from_db()
    assert (vm.state, vm.apply_error) == ("failed", refusal)

    vm_delete(actor=Actor(bob), vm=other, confirm_name="other")
    with django_capture_on_commit_callbacks(execute=True):
        retried = vm_retry(actor=Actor(bob), vm=vm)

    assert (retried.state, retried.apply_error, retried.applied_at) == ("pending", "", None)
    claim = QuotaClaim.objects.get(tenant=tenant, subject=f"vm:{vm.pk}")
    assert {r: v for r, v in claim.amounts().items() if v} == {
        "vms": 1,
        "vcpu": 4,
        "memory_mib": 8192,
        "storage_gib": 25,
    }
    # Its exposed ports are not restored: no Service, no address held.
    assert not VMService.objects.exists()
    assert quota_used(tenant)["load_balancer_ips"] == 0
    event = AuditEvent.objects.get(object_type="virtualmachine", action="retry")
    assert (event.actor, event.object_repr, event.changes) == (
        bob,
        "tight/web",
        {"previous_error": refusal},
    )
    # Provisioning ran once the retry committed (here without Kubernetes) and says so.
    vm.refresh_from_db()
    assert vm.reason == "No Kubernetes cluster is configured: nothing was applied."
    with pytest.raises(ValidationError) as again:
        vm_retry(actor=Actor(bob), vm=vm)
    assert errors_of(again) == {
        "__all__": ["Only a virtual machine Kubernetes refused can be retried."]
    }


def test_only_a_failed_vm_is_retried(acme: Tenant, bob: User) -> None:
    for vm in (
        make_running(create(acme, bob, "running")),
        create(acme, bob, "pending"),
    ):
        with pytest.raises(ValidationError) as refused:
            vm_retry(actor=Actor(bob), vm=vm)
        assert errors_of(refused) == {
            "__all__": ["Only a virtual machine Kubernetes refused can be retried."]
        }
    assert not AuditEvent.objects.filter(action="retry").exists()


def test_a_suspended_tenant_cannot_retry_as_it_cannot_create(
    acme: Tenant, bob: User, oscar: User
) -> None:
    vm = create(acme, bob, "web")
    vm_fail(vm_id=vm.pk, reason="Kubernetes refused VirtualMachine web: no")
    tenant_set_state(actor=Actor(oscar), tenant=acme, state=Tenant.State.SUSPENDED)

    with pytest.raises(ValidationError) as refused:
        vm_retry(actor=Actor(bob), vm=vm)

    assert errors_of(refused) == {
        "__all__": [
            "Tenant acme is suspended: resources can only be given back (stopped, "
            "hibernated, deleted)."
        ]
    }
    vm.refresh_from_db()
    assert vm.state == "failed"
    assert quota_used(acme)["vms"] == 0


# --- Deleting -------------------------------------------------------------------------------


def test_deleting_needs_the_name_and_without_kubernetes_frees_everything_at_once(
    acme: Tenant, bob: User
) -> None:
    vm = make_running(create(acme, bob, "web"))
    vm_expose(actor=Actor(bob), vm=vm, ports=[PortSpec("TCP", 22, 22)])

    with pytest.raises(ValidationError) as wrong:
        vm_delete(actor=Actor(bob), vm=vm, confirm_name="nope")
    assert vm_delete(actor=Actor(bob), vm=vm, confirm_name=" web ") is True

    assert errors_of(wrong) == {
        "confirm_name": ["Type the virtual machine's name, web, to confirm."]
    }
    assert not VirtualMachine.objects.filter(pk=vm.pk).exists()
    assert sum(quota_used(acme).values()) == 0
    assert list(
        AuditEvent.objects.filter(object_type="virtualmachine")
        .order_by("id")
        .values_list("action", flat=True)
    ) == ["create", "expose", "delete"]


def test_an_inactive_image_is_no_longer_offered(acme: Tenant, bob: User) -> None:
    retired = image("fedora-41")
    retired.active = False
    retired.save()

    with pytest.raises(ValidationError) as refused:
        create(acme, bob, "web", image=retired)

    assert errors_of(refused) == {"image": ["fedora-41 is no longer offered."]}
