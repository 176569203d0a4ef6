"""Actions on virtual machines from the browser portal: power, exposed ports, deletion and
bulk power from the list.

acme: alice admin, bob member, carol viewer; globex: gina admin; oscar operator, audrey
auditor. Every action on one VM is a dialog (GET asks) and a POST (the service does it, or
says why not on the field to change); bulk actions answer with the list's table, untick.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.urls import reverse

from tenants.audit import Actor
from tenants.models import AuditEvent, Quota, QuotaClaim, Tenant, User
from tests.conftest import browser_client_for
from tests.ui.conftest import (
    action_row,
    activity_of,
    check_dialog_and_page,
    csrf_checking_client,
    errors_of,
    htmx,
    listed_names,
    offered,
    page_text,
    toasts,
)
from tests.vms.conftest import create, make_running, make_vm_row, stopped
from vms.models import VirtualMachine, VMService
from vms.provisioning import vm_fail
from vms.services import vm_expose
from vms.spec import PortSpec

pytestmark = pytest.mark.usefixtures("vm_catalog")


def acme_url(name: str, vm: VirtualMachine) -> str:
    return reverse(name, args=["acme", vm.pk])


def running(tenant: Tenant, user: User, name: str = "web") -> VirtualMachine:
    """A VM requested through the service (its quota reserved) and reported Running."""
    return make_running(create(tenant, user, name))


# --- Who may act ------------------------------------------------------------------------------


def test_only_members_admins_and_operators_may_post_an_action(
    personas: dict[str, User], acme: Tenant, globex: Tenant, bob: User
) -> None:
    outcomes = {}
    for name in ("carol", "audrey", "gina", "nobody", "bob", "alice", "oscar"):
        vm = running(acme, bob, f"for-{name}")
        response = browser_client_for(personas[name]).post(acme_url("vm-stop", vm))
        vm.refresh_from_db()
        outcomes[name] = (response.status_code, vm.run_strategy)
    assert outcomes == {
        "carol": (403, "Always"),
        "audrey": (403, "Always"),
        "gina": (404, "Always"),
        "nobody": (404, "Always"),
        "bob": (302, "Halted"),
        "alice": (302, "Halted"),
        "oscar": (302, "Halted"),
    }


def test_viewers_are_refused_every_post_and_nothing_changes(
    bob: User, carol: User, acme: Tenant
) -> None:
    vm = running(acme, bob)
    client = browser_client_for(carol)
    posts = {
        "vm-start": {},
        "vm-stop": {},
        "vm-restart": {},
        "vm-expose": {"ports": "22"},
        "vm-unexpose": {"ports": ["TCP/22"]},
        "vm-delete": {"confirm_name": "web"},
    }
    for name, data in posts.items():
        response = client.post(acme_url(name, vm), data)
        assert response.status_code == 403, name
        assert "Your role in this tenant is read-only." in response.content.decode()
    bulk = client.post(reverse("vm-bulk-power", args=["acme"]), {"ids": [vm.pk], "action": "stop"})
    assert bulk.status_code == 403
    vm.refresh_from_db()
    assert (vm.run_strategy, vm.restart_requested_at) == ("Always", None)
    assert not VMService.objects.exists()
    assert list(
        AuditEvent.objects.filter(object_type="virtualmachine").values_list("action", flat=True)
    ) == ["create"]


def test_csrf_is_enforced_on_actions_and_on_creating(bob: User, acme: Tenant) -> None:
    vm = running(acme, bob)
    client, token = csrf_checking_client(bob, acme_url("vm-detail", vm))

    assert client.post(acme_url("vm-stop", vm)).status_code == 403
    assert client.post(reverse("vm-create", args=["acme"]), {"name": "x"}).status_code == 403
    assert (
        client.post(reverse("vm-bulk-power", args=["acme"]), {"ids": [vm.pk], "action": "stop"})
    ).status_code == 403
    vm.refresh_from_db()
    assert vm.run_strategy == "Always"

    accepted = client.post(
        acme_url("vm-stop", vm), headers={**htmx("modal-body"), "X-CSRFToken": token}
    )
    assert accepted["HX-Redirect"] == acme_url("vm-detail", vm)
    vm.refresh_from_db()
    assert vm.run_strategy == "Halted"


# --- Power ------------------------------------------------------------------------------------


def test_actions_open_as_dialogs_for_htmx_and_as_pages_without_it(bob: User, acme: Tenant) -> None:
    vm = running(acme, bob)
    check_dialog_and_page(browser_client_for(bob), acme_url("vm-restart", vm), "Restart web?")


def test_stop_start_and_restart_change_the_vm_and_its_log(bob: User, acme: Tenant) -> None:
    vm = running(acme, bob)
    client = browser_client_for(bob)

    restarted = client.post(acme_url("vm-restart", vm))
    assert restarted["Location"] == acme_url("vm-detail", vm)
    vm.refresh_from_db()
    assert vm.restart_requested_at is not None

    client.post(acme_url("vm-stop", vm))
    vm.refresh_from_db()
    assert (vm.run_strategy, vm.state) == ("Halted", VirtualMachine.State.STOPPING)
    detail = client.get(acme_url("vm-detail", vm)).content.decode()
    assert "web is stopping." in detail  # the toast of the last action

    stopped(vm)
    client.post(acme_url("vm-start", vm))
    vm.refresh_from_db()
    assert vm.run_strategy == "Always"
    assert list(
        AuditEvent.objects.filter(object_type="virtualmachine", object_id=str(vm.pk))
        .order_by("occurred_at", "id")
        .values_list("action", flat=True)
    ) == ["create", "restart", "stop", "start"]


def test_a_refusal_of_the_service_shows_in_the_dialog(bob: User, acme: Tenant) -> None:
    vm = stopped(create(acme, bob, "web"))
    client = browser_client_for(bob)
    for action, refusal in (
        ("vm-stop", "The virtual machine is already stopped or stopping."),
        ("vm-restart", "Only a running virtual machine can be restarted."),
    ):
        response = client.post(acme_url(action, vm), headers=htmx("modal-body"))
        assert errors_of(response.content.decode()) == {"__all__": [refusal]}, action
    vm.refresh_from_db()
    assert (vm.run_strategy, vm.restart_requested_at) == ("Halted", None)


# --- Retrying a VM Kubernetes refused -----------------------------------------------------------


def refused(tenant: Tenant, user: User, name: str = "web") -> VirtualMachine:
    """A VM requested through the service, then refused by Kubernetes before it existed."""
    vm = create(tenant, user, name)
    vm_fail(vm_id=vm.pk, reason=f"Kubernetes rejected VirtualMachine {name}: spec: bad")
    vm.refresh_from_db()
    return vm


def test_only_members_admins_and_operators_may_retry_a_failed_vm(
    personas: dict[str, User], acme: Tenant, bob: User
) -> None:
    outcomes = {}
    for name in ("carol", "audrey", "gina", "nobody", "bob", "alice", "oscar"):
        vm = refused(acme, bob, f"for-{name}")
        response = browser_client_for(personas[name]).post(acme_url("vm-retry", vm))
        vm.refresh_from_db()
        outcomes[name] = (response.status_code, vm.state)
    assert outcomes == {
        "carol": (403, "failed"),
        "audrey": (403, "failed"),
        "gina": (404, "failed"),
        "nobody": (404, "failed"),
        "bob": (302, "pending"),
        "alice": (302, "pending"),
        "oscar": (302, "pending"),
    }
    assert sorted(
        AuditEvent.objects.filter(action="retry").values_list("actor__username", flat=True)
    ) == ["alice", "bob", "oscar"]


def test_viewers_and_auditors_see_no_retry_on_a_failed_vm(
    bob: User, carol: User, audrey: User, acme: Tenant
) -> None:
    vm = refused(acme, bob)
    for reader in (carol, audrey):
        text = page_text(reader, acme_url("vm-detail", vm))
        assert offered(text) == [], reader
        assert acme_url("vm-retry", vm) not in text
        assert "Kubernetes rejected VirtualMachine web: spec: bad" in text


def test_retry_asks_first_then_applies_the_vm_again(
    bob: User, acme: Tenant, django_capture_on_commit_callbacks: Any
) -> None:
    vm = refused(acme, bob)
    client = browser_client_for(bob)
    check_dialog_and_page(client, acme_url("vm-retry", vm), "Retry web?")
    dialog = client.get(acme_url("vm-retry", vm), headers=htmx("modal-body")).content.decode()
    assert "Its quota is reserved again, so it has to fit." in dialog
    assert "Exposed ports, if it had any, are not restored" in dialog

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(acme_url("vm-retry", vm), headers=htmx("modal-body"))

    assert response["HX-Redirect"] == acme_url("vm-detail", vm)
    vm.refresh_from_db()
    assert (vm.state, vm.apply_error) == (VirtualMachine.State.PENDING, "")
    # The provisioning task ran after the retry committed; without Kubernetes it says so.
    assert vm.reason == "No Kubernetes cluster is configured: nothing was applied."
    assert QuotaClaim.objects.get(tenant=acme, subject=f"vm:{vm.pk}").vms == 1
    text = client.get(acme_url("vm-detail", vm)).content.decode()
    assert "web is being provisioned again." in text  # the toast of the retry
    assert "retry" not in offered(text)
    assert activity_of(text)[0] == ("retry", "bob", "retried provisioning")


def test_a_retry_the_quota_no_longer_fits_is_refused_in_the_dialog(bob: User, acme: Tenant) -> None:
    vm = refused(acme, bob)
    Quota.objects.filter(tenant=acme).update(vms=0)

    response = browser_client_for(bob).post(acme_url("vm-retry", vm), headers=htmx("modal-body"))

    errors = errors_of(response.content.decode())
    assert list(errors) == ["__all__"]
    assert "virtual machines" in errors["__all__"][0].lower()
    vm.refresh_from_db()
    assert vm.state == VirtualMachine.State.FAILED
    assert not AuditEvent.objects.filter(action="retry").exists()


def test_a_suspended_tenant_shows_retry_refused_as_creating_is(bob: User, acme: Tenant) -> None:
    vm = refused(acme, bob)
    Tenant.objects.filter(pk=acme.pk).update(state=Tenant.State.SUSPENDED)

    text = page_text(bob, acme_url("vm-detail", vm))
    retry = action_row(text, "retry")
    assert '<div class="action-row is-disabled" aria-disabled="true"' in retry
    assert "Acme Corp is suspended: resources can only be given back" in retry
    assert acme_url("vm-retry", vm) not in retry
    response = browser_client_for(bob).post(acme_url("vm-retry", vm), headers=htmx("modal-body"))
    assert "Tenant acme is suspended" in errors_of(response.content.decode())["__all__"][0]
    vm.refresh_from_db()
    assert vm.state == VirtualMachine.State.FAILED


# --- Exposed ports ----------------------------------------------------------------------------


def test_the_expose_dialog_shows_the_load_balancer_ip_it_takes(bob: User, acme: Tenant) -> None:
    vm = running(acme, bob)
    client = browser_client_for(bob)
    dialog = client.get(acme_url("vm-expose", vm), headers=htmx("modal-body")).content.decode()
    assert '<label class="field-label" for="id_ports">Ports</label>' in dialog
    assert re.findall(r'data-resource="(\w+)"', dialog) == ["load_balancer_ips"]
    assert '<span class="quota-row-amount">+1</span>' in dialog
    assert "One public address for all its ports" in dialog

    response = client.post(acme_url("vm-expose", vm), {"ports": "22, 8080:80, 53/udp"})
    assert response["Location"] == acme_url("vm-detail", vm)
    service = VMService.objects.get(vm=vm)
    assert service.ports == [
        {"port": 22, "target_port": 22, "protocol": "TCP"},
        {"port": 8080, "target_port": 80, "protocol": "TCP"},
        {"port": 53, "target_port": 53, "protocol": "UDP"},
    ]
    claim = QuotaClaim.objects.get(tenant=acme, subject=service.quota_subject)
    assert claim.load_balancer_ips == 1

    # More ports share the address: the dialog says so, and nothing more is reserved.
    again = client.get(acme_url("vm-expose", vm), headers=htmx("modal-body")).content.decode()
    assert "Its public address is held already: more ports take nothing more." in again
    client.post(acme_url("vm-expose", vm), {"ports": "443"})
    service.refresh_from_db()
    assert [port["port"] for port in service.ports] == [22, 443, 8080, 53]
    assert QuotaClaim.objects.filter(tenant=acme, load_balancer_ips__gt=0).count() == 1


def test_unreadable_ports_and_a_full_quota_are_refused_on_the_ports(
    bob: User, acme: Tenant
) -> None:
    vm = running(acme, bob)
    client = browser_client_for(bob)
    unreadable = client.post(
        acme_url("vm-expose", vm), {"ports": "22, ssh, 80:"}, headers=htmx("modal-body")
    ).content.decode()
    assert errors_of(unreadable) == {
        "ports": ["Not a port: ssh, 80:. Write 22, 8080:80 or 53/udp."]
    }
    assert 'name="ports" value="22, ssh, 80:"' in unreadable

    out_of_range = client.post(
        acme_url("vm-expose", vm), {"ports": "70000, 2222:0"}, headers=htmx("modal-body")
    ).content.decode()
    assert errors_of(out_of_range) == {"ports": ["Not a port number (1–65535): 0, 70000."]}

    Quota.objects.filter(tenant=acme).update(load_balancer_ips=0)
    full = client.post(
        acme_url("vm-expose", vm), {"ports": "22"}, headers=htmx("modal-body")
    ).content.decode()
    assert errors_of(full) == {
        "ports": ["Needs 1 more load-balancer ips but only 0 of 0 is left in the quota."]
    }
    assert 'data-fits="false"' in full
    assert not VMService.objects.exists()


def test_withdrawing_ports_one_by_one_then_all_gives_the_address_back(
    bob: User, acme: Tenant
) -> None:
    vm = running(acme, bob)
    vm_expose(actor=Actor(bob), vm=vm, ports=[PortSpec("TCP", 22, 22), PortSpec("TCP", 80, 80)])
    client = browser_client_for(bob)
    dialog = client.get(acme_url("vm-unexpose", vm), headers=htmx("modal-body")).content.decode()
    boxes = re.findall(r'<input type="checkbox" name="ports" value="([\w/]+)"([^>]*)>', dialog)
    assert [(value, "checked" in rest) for value, rest in boxes] == [
        ("TCP/22", True),
        ("TCP/80", True),
    ]

    client.post(acme_url("vm-unexpose", vm), {"ports": ["TCP/80"]})
    service = VMService.objects.get(vm=vm)
    assert [port["port"] for port in service.ports] == [22]

    nothing = client.post(acme_url("vm-unexpose", vm), {}, headers=htmx("modal-body"))
    assert errors_of(nothing.content.decode()) == {"ports": ["Tick the ports to withdraw."]}

    client.post(acme_url("vm-unexpose", vm), {"ports": ["TCP/22"]})
    assert not VMService.objects.filter(vm=vm).exists()  # no Kubernetes: gone at once
    assert not QuotaClaim.objects.filter(tenant=acme, load_balancer_ips__gt=0).exists()
    detail = client.get(acme_url("vm-detail", vm)).content.decode()
    assert "web is no longer exposed." in detail
    assert '<li class="action-item" data-action="unexpose">' not in detail
    assert "<div><dt>ports</dt><dd>22/TCP → none</dd></div>" in detail  # the action log


# --- Deleting ---------------------------------------------------------------------------------


def test_deleting_asks_for_the_name_typed_and_refuses_anything_else(
    bob: User, acme: Tenant
) -> None:
    vm = running(acme, bob)
    client = browser_client_for(bob)
    dialog = client.get(acme_url("vm-delete", vm), headers=htmx("modal-body")).content.decode()
    assert (
        '<label class="field-label" for="id_confirm_name">Type “web” to confirm</label>' in dialog
    )

    wrong = client.post(
        acme_url("vm-delete", vm), {"confirm_name": "wbe"}, headers=htmx("modal-body")
    ).content.decode()
    assert errors_of(wrong) == {
        "confirm_name": ["Type the virtual machine's name, web, to confirm."]
    }
    assert 'name="confirm_name" value="wbe"' in wrong
    assert VirtualMachine.objects.filter(pk=vm.pk).exists()

    done = client.post(
        acme_url("vm-delete", vm), {"confirm_name": "web"}, headers=htmx("modal-body")
    )
    assert done["HX-Redirect"] == reverse("vm-list", args=["acme"])
    assert not VirtualMachine.objects.filter(pk=vm.pk).exists()  # no Kubernetes: gone at once
    assert not QuotaClaim.objects.filter(subject=f"vm:{vm.pk}").exists()
    listing = client.get(reverse("vm-list", args=["acme"])).content.decode()
    assert "Virtual machine web was deleted." in listing


# --- Bulk power -------------------------------------------------------------------------------


def bulk_url() -> str:
    return reverse("vm-bulk-power", args=["acme"])


def test_bulk_power_reports_each_vm_and_answers_with_a_table_nothing_ticked(
    bob: User, acme: Tenant
) -> None:
    web, api = running(acme, bob, "web"), running(acme, bob, "api")
    db = stopped(create(acme, bob, "db"))
    response = browser_client_for(bob).post(
        bulk_url(),
        {"ids": [web.pk, api.pk, db.pk], "action": "stop"},
        headers={**htmx("vm-results"), "HX-Current-URL": "http://testserver/t/acme/vms/"},
    )
    text = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in text
    assert toasts(text) == [
        "Stopping web, api.",
        "db: The virtual machine is already stopped or stopping.",
    ]
    assert {vm.name: vm.run_strategy for vm in VirtualMachine.objects.all()} == {
        "web": "Halted",
        "api": "Halted",
        "db": "Halted",
    }
    # The selection is cleared: fresh boxes, none ticked and none kept from the page.
    boxes = re.findall(r'<input type="checkbox" id="vm-select-\d+" name="ids"[^>]*>', text)
    assert len(boxes) == 3
    assert not [box for box in boxes if "checked" in box or "hx-preserve" in box]


def test_bulk_power_keeps_the_lists_search_and_page(bob: User, acme: Tenant) -> None:
    web, db = running(acme, bob, "web"), running(acme, bob, "db")
    response = browser_client_for(bob).post(
        bulk_url(),
        {"ids": [web.pk], "action": "restart"},
        headers={**htmx("vm-results"), "HX-Current-URL": "http://testserver/t/acme/vms/?q=we"},
    )
    assert listed_names(response.content.decode()) == ["web"]
    web.refresh_from_db()
    db.refresh_from_db()
    assert (web.restart_requested_at is not None, db.restart_requested_at) == (True, None)


def test_bulk_power_ignores_vms_outside_the_tenant_and_needs_a_ticked_box(
    bob: User, gina: User, acme: Tenant, globex: Tenant
) -> None:
    theirs = running(globex, gina, "web")
    client = browser_client_for(bob)
    response = client.post(
        bulk_url(), {"ids": [theirs.pk], "action": "stop"}, headers=htmx("vm-results")
    )
    assert toasts(response.content.decode()) == [
        f"Virtual machine #{theirs.pk}: not found in Acme Corp."
    ]
    theirs.refresh_from_db()
    assert theirs.run_strategy == "Always"

    nothing = client.post(bulk_url(), {"action": "stop"}, headers=htmx("vm-results"))
    assert toasts(nothing.content.decode()) == ["Tick at least one virtual machine first."]
    unknown = client.post(bulk_url(), {"ids": ["x"], "action": "stop"}, headers=htmx("vm-results"))
    assert toasts(unknown.content.decode()) == ["Unknown virtual machines were ticked."]


def test_bulk_power_without_javascript_goes_back_to_the_list(bob: User, acme: Tenant) -> None:
    vm = running(acme, bob)
    client = browser_client_for(bob)
    response = client.post(bulk_url(), {"ids": [vm.pk], "action": "stop"})
    assert response["Location"] == reverse("vm-list", args=["acme"])
    listing = client.get(response["Location"]).content.decode()
    assert "Stopping web." in listing
    assert client.get(bulk_url()).status_code == 405


def test_the_list_offers_the_bulk_toolbar_to_members(bob: User, acme: Tenant) -> None:
    make_vm_row(acme, name="web")
    text = browser_client_for(bob).get(reverse("vm-list", args=["acme"])).content.decode()
    assert (
        f'<form id="vm-bulk" method="post" action="{bulk_url()}" class="bulk-actions"\n'
        f'          hx-post="{bulk_url()}" hx-target="#vm-results" hx-swap="innerHTML"'
    ) in text
    assert re.findall(r'<button type="submit" name="action" value="(\w+)"', text) == [
        "start",
        "stop",
        "restart",
    ]
