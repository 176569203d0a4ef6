"""/api/v1/vms/, /ssh-keys/, /vm-images/ and /storage-classes/."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from django.urls import reverse

from tenants.models import ApiToken, Quota, Tenant, User
from tenants.selectors import quota_used
from tests.api_mixin import (
    PERSONAS,
    TENANT_WRITE_OUTCOMES,
    APIEndpointTests,
    CatalogEndpointTests,
    TenantResourceEndpointTests,
    check_deleting_needs_the_typed_name,
    listed_names,
    token_client_for,
    write_outcomes,
)
from tests.conftest import api_client_for
from tests.vms.conftest import add_key, make_running, make_vm_row, public_key_line
from tests.vms.test_sshkeys import ED25519
from vms.models import SSHKey, StorageClass, VirtualMachine, VMImage
from vms.provisioning import vm_fail

pytestmark = pytest.mark.usefixtures("vm_catalog")

numbers = itertools.count(1)


def vm_url(vm: VirtualMachine, action: str | None = None) -> str:
    if action is None:
        return reverse("api:vm-detail", args=[vm.pk])
    return reverse(f"api:vm-{action}", args=[vm.pk])


# --- Virtual machines -------------------------------------------------------------------------


class TestVirtualMachineEndpoint(TenantResourceEndpointTests):
    basename = "vm"

    def make_object(self, tenant: Tenant) -> VirtualMachine:
        return make_vm_row(tenant, name=f"vm{next(numbers)}")

    def create_payload(self) -> dict[str, Any]:
        return {"tenant": "acme", "name": f"new-{next(numbers)}"}


def test_create_fills_in_the_catalogs_defaults_and_hides_the_user_data(bob: User) -> None:
    key = add_key(bob)

    response = api_client_for(bob).post(
        reverse("api:vm-list"),
        {"tenant": "acme", "name": "web", "ssh_keys": [key.pk], "user_data": "packages: [git]\n"},
        format="json",
    )

    assert response.status_code == 201, response.data
    body = response.data
    assert (body["image"], body["instance_type"], body["storage_class"], body["disk_gib"]) == (
        "ubuntu-24.04",
        "m1.small",
        "linstor",
        20,
    )
    assert (body["state"], body["run_strategy"], body["login_user"]) == (
        "pending",
        "Always",
        "ubuntu",
    )
    assert body["authorized_keys"] == [
        {"key_type": "ssh-ed25519", "fingerprint": key.fingerprint, "comment": "laptop@x"}
    ]
    assert body["has_user_data"] is True
    assert "user_data" not in body
    assert "ssh_keys" not in body
    assert [step["key"] for step in body["timeline"]] == ["disk", "scheduled", "running", "address"]
    assert body["allowed_actions"] == ["delete", "expose", "stop"]  # nothing to withdraw
    assert body["service"] is None
    assert body["created_by"] == "bob"


def test_someone_elses_ssh_key_is_not_usable(bob: User, alice: User) -> None:
    theirs = add_key(alice)

    response = api_client_for(bob).post(
        reverse("api:vm-list"),
        {"tenant": "acme", "name": "web", "ssh_keys": [theirs.pk]},
        format="json",
    )

    assert (response.status_code, set(response.data)) == (400, {"ssh_keys"})


def test_bad_fields_are_400_on_their_field(bob: User) -> None:
    response = api_client_for(bob).post(
        reverse("api:vm-list"),
        {
            "tenant": "acme",
            "name": "Bad_Name",
            "image": "windows-xp",
            "instance_type": "huge",
            "user_data": "a: [b\n",
        },
        format="json",
    )

    assert response.status_code == 400
    assert set(response.data) == {"name", "image", "instance_type"}  # the form's own checks
    service_refusal = api_client_for(bob).post(
        reverse("api:vm-list"),
        {"tenant": "acme", "name": "web", "user_data": "a: [b\n", "disk_gib": 5},
        format="json",
    )
    assert (service_refusal.status_code, set(service_refusal.data)) == (
        400,
        {"user_data", "disk_gib"},
    )


def test_a_refused_request_names_the_field_and_the_preview_foresees_it(
    bob: User, acme: Tenant
) -> None:
    client = api_client_for(bob)
    payload = {"tenant": "acme", "name": "big", "disk_gib": 1500}

    preview = client.post(reverse("api:vm-preview"), payload, format="json")
    created = client.post(reverse("api:vm-list"), payload, format="json")

    assert preview.status_code == 200
    assert preview.data["fits"] is False
    resources = {line["resource"]: line for line in preview.data["resources"]}
    assert set(resources) == {"vms", "vcpu", "memory_mib", "storage_gib"}
    assert (resources["storage_gib"]["requested"], resources["storage_gib"]["field"]) == (
        1500,
        "disk_gib",
    )
    assert created.status_code == 400
    assert set(created.data) == {"disk_gib"}
    assert created.data["disk_gib"] == preview.data["field_errors"]["disk_gib"]
    assert quota_used(acme)["storage_gib"] == 0


def test_the_preview_counts_a_public_address_when_asked(bob: User) -> None:
    response = api_client_for(bob).post(
        reverse("api:vm-preview"), {"tenant": "acme", "expose": True}, format="json"
    )

    lines = {line["resource"]: line for line in response.data["resources"]}
    assert (lines["load_balancer_ips"]["requested"], lines["load_balancer_ips"]["field"]) == (
        1,
        "ports",
    )


def test_the_preview_is_404_for_a_tenant_out_of_reach(gina: User, acme: Tenant) -> None:
    response = api_client_for(gina).post(
        reverse("api:vm-preview"), {"tenant": "acme"}, format="json"
    )

    assert response.status_code == 404


def test_the_list_filters_by_tenant_and_state(oscar: User, acme: Tenant, globex: Tenant) -> None:
    make_running(make_vm_row(acme, name="up"))
    make_vm_row(acme, name="queued")
    make_vm_row(globex, name="theirs")
    url = reverse("api:vm-list")

    assert listed_names(oscar, url, tenant="acme") == ["queued", "up"]
    assert listed_names(oscar, url, state="running") == ["up"]
    assert listed_names(oscar, url, tenant="globex", state="pending") == ["theirs"]


def test_deleting_needs_the_name_in_the_body_or_the_query(bob: User, acme: Tenant) -> None:
    vm = make_vm_row(acme, name="web")

    check_deleting_needs_the_typed_name(bob, vm_url(vm), "web")

    assert not VirtualMachine.objects.filter(pk=vm.pk).exists()


ACTIONS: list[tuple[str, dict[str, Any]]] = [
    ("stop", {}),
    ("restart", {}),
    ("expose", {"ports": [{"port": 22}]}),
]


@pytest.mark.parametrize(("action", "payload"), ACTIONS, ids=[a for a, _ in ACTIONS])
def test_actions_are_for_members_admins_and_operators(
    personas: dict[str, User], acme: Tenant, action: str, payload: dict[str, Any]
) -> None:
    vm = make_running(make_vm_row(acme, name="web"))

    outcomes = write_outcomes(personas, vm_url(vm, action), payload)

    assert outcomes == TENANT_WRITE_OUTCOMES


def failed(tenant: Tenant, name: str = "web") -> VirtualMachine:
    """A VM Kubernetes refused before it ever existed: Failed, its quota given back."""
    vm = make_vm_row(tenant, name=name)
    vm_fail(vm_id=vm.pk, reason=f"Kubernetes rejected VirtualMachine {name}: spec: bad")
    vm.refresh_from_db()
    return vm


def test_retrying_a_failed_vm_is_for_members_admins_and_operators(
    personas: dict[str, User], acme: Tenant
) -> None:
    vm = failed(acme)

    assert write_outcomes(personas, vm_url(vm, "retry"), {}) == TENANT_WRITE_OUTCOMES
    read_only, _ = token_client_for(personas["bob"], ApiToken.Scope.READ)
    refused = read_only.post(vm_url(vm, "retry"))
    assert (refused.status_code, str(refused.data["detail"])) == (
        403,
        "This API token is read-only.",
    )
    vm.refresh_from_db()
    assert vm.state == "failed"


def test_a_failed_vm_offers_retry_and_a_retry_applies_it_again(
    bob: User, acme: Tenant, django_capture_on_commit_callbacks: Any
) -> None:
    vm = failed(acme)
    client = api_client_for(bob)

    detail = client.get(vm_url(vm))
    assert (detail.data["state"], detail.data["allowed_actions"]) == ("failed", ["delete", "retry"])
    with django_capture_on_commit_callbacks(execute=True):
        retried = client.post(vm_url(vm, "retry"))

    assert (retried.status_code, retried.data["state"]) == (200, "pending")
    assert "retry" not in retried.data["allowed_actions"]
    assert quota_used(acme)["vms"] == 1
    # The provisioning task ran after the retry committed; without Kubernetes it says so.
    again = client.get(vm_url(vm))
    assert again.data["reason"] == "No Kubernetes cluster is configured: nothing was applied."
    twice = client.post(vm_url(vm, "retry"))
    assert (twice.status_code, twice.data) == (
        400,
        {"non_field_errors": ["Only a virtual machine Kubernetes refused can be retried."]},
    )


def test_a_retry_without_room_in_the_quota_is_a_400_on_the_field(bob: User, acme: Tenant) -> None:
    vm = failed(acme)
    Quota.objects.filter(tenant=acme).update(vcpu=0)

    refused = api_client_for(bob).post(vm_url(vm, "retry"))

    assert (refused.status_code, list(refused.data)) == (400, ["instance_type"])
    assert "vcpu" in str(refused.data["instance_type"][0]).lower()
    vm.refresh_from_db()
    assert vm.state == "failed"
    assert quota_used(acme)["vms"] == 0


def test_actions_answer_with_the_changed_vm_and_refuse_what_the_state_does_not_allow(
    bob: User, acme: Tenant
) -> None:
    vm = make_running(make_vm_row(acme, name="web"))
    client = api_client_for(bob)

    started = client.post(vm_url(vm, "start"))
    stopped = client.post(vm_url(vm, "stop"))
    restarted = client.post(vm_url(vm, "restart"))
    exposed = client.post(
        vm_url(vm, "expose"),
        {"ports": [{"port": 22}, {"port": 443, "target_port": 8443, "protocol": "TCP"}]},
        format="json",
    )
    withdrawn = client.post(vm_url(vm, "unexpose"), {"ports": [{"port": 443}]}, format="json")

    assert (started.status_code, started.data) == (
        400,
        {"non_field_errors": ["The virtual machine is already running or starting."]},
    )
    assert (stopped.status_code, stopped.data["run_strategy"], stopped.data["state"]) == (
        200,
        "Halted",
        "stopping",
    )
    assert stopped.data["allowed_actions"] == ["delete", "expose", "start"]
    assert restarted.status_code == 400
    assert exposed.status_code == 200
    assert "unexpose" in exposed.data["allowed_actions"]
    assert exposed.data["service"]["ports"] == [
        {"port": 22, "target_port": 22, "protocol": "TCP"},
        {"port": 443, "target_port": 8443, "protocol": "TCP"},
    ]
    assert withdrawn.data["service"]["ports"] == [
        {"port": 22, "target_port": 22, "protocol": "TCP"}
    ]


def test_bad_ports_are_400_on_ports(bob: User, acme: Tenant) -> None:
    vm = make_running(make_vm_row(acme, name="web"))

    response = api_client_for(bob).post(
        vm_url(vm, "expose"), {"ports": [{"port": 70000}]}, format="json"
    )
    empty = api_client_for(bob).post(vm_url(vm, "expose"), {"ports": []}, format="json")

    assert (response.status_code, set(response.data)) == (400, {"ports"})
    assert (empty.status_code, set(empty.data)) == (400, {"ports"})


def test_bulk_power_answers_per_vm(bob: User, carol: User, acme: Tenant, globex: Tenant) -> None:
    running = make_running(make_vm_row(acme, name="a"))
    stopped = make_vm_row(acme, name="b", run_strategy="Halted")
    theirs = make_running(make_vm_row(globex, name="c"))
    url = reverse("api:vm-bulk-power")
    ids = [running.pk, stopped.pk, theirs.pk, 999999]

    as_member = api_client_for(bob).post(url, {"ids": ids, "action": "stop"}, format="json")
    as_viewer = api_client_for(carol).post(url, {"ids": ids[:2], "action": "start"}, format="json")

    assert as_member.status_code == 200
    assert [(r["id"], r["ok"], r["status"], r["state"]) for r in as_member.data["results"]] == [
        (running.pk, True, 200, "stopping"),
        (stopped.pk, False, 400, None),
        (theirs.pk, False, 404, None),
        (999999, False, 404, None),
    ]
    assert as_member.data["results"][1]["message"] == (
        "The virtual machine is already stopped or stopping."
    )
    assert [(r["status"], r["message"]) for r in as_viewer.data["results"]] == [
        (403, "Your role in this tenant is read-only."),
    ] * 2
    theirs.refresh_from_db()
    assert theirs.run_strategy == "Always"


def test_bulk_power_through_a_read_only_token_is_403(bob: User, acme: Tenant) -> None:
    vm = make_running(make_vm_row(acme, name="a"))
    client, _ = token_client_for(bob, ApiToken.Scope.READ)

    response = client.post(
        reverse("api:vm-bulk-power"), {"ids": [vm.pk], "action": "stop"}, format="json"
    )

    assert response.status_code == 403
    vm.refresh_from_db()
    assert vm.run_strategy == "Always"


# --- SSH keys -------------------------------------------------------------------------------


class TestSSHKeyEndpoint(APIEndpointTests):
    """Keys are their owner's alone: bob's key for acme's side, gina's for globex's."""

    basename = "ssh-key"
    viewers = frozenset({"bob"})
    globex_viewers = frozenset({"gina"})
    creators = frozenset(PERSONAS)
    updaters = deleters = frozenset({"bob"})
    list_as = "bob"

    def make_object(self, tenant: Tenant) -> SSHKey:
        owner = self.personas["bob" if tenant.slug == "acme" else "gina"]
        return add_key(owner, name=f"key-{next(numbers)}")

    def create_payload(self) -> dict[str, Any]:
        return {"name": "laptop", "public_key": public_key_line()}

    def update_payload(self) -> dict[str, Any]:
        return {"name": "renamed"}


def test_a_key_is_renamed_never_replaced(bob: User) -> None:
    key = add_key(bob)

    response = api_client_for(bob).patch(
        reverse("api:ssh-key-detail", args=[key.pk]),
        {"name": "work", "public_key": ED25519},
        format="json",
    )

    assert response.status_code == 200
    key.refresh_from_db()
    assert (key.name, key.public_key) == ("work", response.data["public_key"])
    assert key.public_key != ED25519


def test_a_bad_key_is_400_on_public_key(bob: User) -> None:
    response = api_client_for(bob).post(
        reverse("api:ssh-key-list"), {"name": "x", "public_key": "ssh-rsa nope"}, format="json"
    )

    assert (response.status_code, set(response.data)) == (400, {"public_key"})


# --- Catalog --------------------------------------------------------------------------------


class TestVMImageEndpoint(CatalogEndpointTests):
    basename = "vm-image"
    lookup_field = "name"

    def make_object(self, tenant: Tenant) -> VMImage:
        return VMImage.objects.create(
            name=f"img-{next(numbers)}",
            display_name="Test image",
            source_kind="http",
            source="https://images.example.test/x.qcow2",
        )

    def create_payload(self) -> dict[str, Any]:
        return {
            "name": f"alma-{next(numbers)}",
            "display_name": "AlmaLinux 9",
            "os": "alma",
            "source_kind": "container-disk",
            "source": "quay.io/containerdisks/almalinux:9",
            "default_login_user": "almalinux",
        }

    def update_payload(self) -> dict[str, Any]:
        return {"description": "Retired soon", "active": False}


class TestStorageClassEndpoint(CatalogEndpointTests):
    basename = "storage-class"
    lookup_field = "name"

    def make_object(self, tenant: Tenant) -> StorageClass:
        return StorageClass.objects.create(name=f"sc-{next(numbers)}", kubernetes_name="fast")

    def create_payload(self) -> dict[str, Any]:
        return {"name": f"nvme-{next(numbers)}", "kubernetes_name": "linstor-nvme"}

    def update_payload(self) -> dict[str, Any]:
        return {"description": "NVMe, not replicated"}


def test_an_image_source_must_suit_its_kind(oscar: User) -> None:
    response = api_client_for(oscar).post(
        reverse("api:vm-image-list"),
        {"name": "odd", "display_name": "Odd", "source_kind": "http", "source": "quay.io/x/y:1"},
        format="json",
    )

    assert (response.status_code, set(response.data)) == (400, {"source"})


def test_there_is_one_default_storage_class_and_it_moves(oscar: User) -> None:
    client = api_client_for(oscar)

    created = client.post(
        reverse("api:storage-class-list"),
        {"name": "nvme", "kubernetes_name": "linstor-nvme", "is_default": True},
        format="json",
    )
    demoted = client.patch(
        reverse("api:storage-class-detail", args=["nvme"]), {"is_default": False}, format="json"
    )

    assert created.status_code == 201, created.data
    assert list(StorageClass.objects.filter(is_default=True).values_list("name", flat=True)) == [
        "nvme"
    ]
    assert (demoted.status_code, demoted.data) == (
        400,
        {"is_default": ["Make another storage class the default first."]},
    )


def test_a_storage_class_in_use_keeps_its_kubernetes_name(oscar: User, acme: Tenant) -> None:
    make_vm_row(acme, name="web")

    response = api_client_for(oscar).patch(
        reverse("api:storage-class-detail", args=["linstor"]),
        {"kubernetes_name": "other"},
        format="json",
    )

    assert (response.status_code, set(response.data)) == (400, {"kubernetes_name"})
