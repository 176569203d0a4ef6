"""One rule for a suspended tenant, as its members see it on the pages: what stops spending
and what removes things stays allowed (hibernate or delete a cluster, turn its deletion
protection off; stop or delete a VM, withdraw its ports, open its console), everything else
(create, scale, upgrade, wake, start, restart, expose) is offered greyed out with the reason,
and the banner on every tenant page says so.

acme: bob is a member; the tenant is suspended by the platform operator, oscar.
"""

from __future__ import annotations

import pytest
from django.urls import reverse

from clusters.models import Cluster
from tenants.audit import Actor
from tenants.models import Tenant, User
from tenants.services import tenant_set_state
from tests.clusters.conftest import make_ready, request
from tests.conftest import browser_client_for
from tests.ui.conftest import action_row, errors_of, htmx, offered, page_text
from tests.vms.conftest import create, make_running, stopped
from vms.models import VirtualMachine, VMService
from vms.services import vm_expose
from vms.spec import PortSpec

pytestmark = pytest.mark.usefixtures("catalog", "vm_catalog")

SUSPENDED_REFUSAL = (
    "Acme Corp is suspended: resources can only be given back (stopped, hibernated, deleted)."
)
#: The rule in the banner, in the words a member reads on every page of the tenant.
BANNER_RULE = (
    "You can still give back what it holds: stop or delete virtual machines, withdraw their "
    "exposed ports, hibernate or delete clusters. Creating, starting, waking, scaling, "
    "upgrading and exposing wait until a platform operator resumes it."
)


def url(name: str, pk: int) -> str:
    return reverse(name, args=["acme", pk])


def suspend(acme: Tenant, oscar: User) -> None:
    tenant_set_state(actor=Actor(oscar), tenant=acme, state=Tenant.State.SUSPENDED)


def refusal_of(text: str, action: str) -> str:
    """The reason a greyed-out action gives ("" when the action is offered)."""
    row = action_row(text, action)
    if '<a class="action-row' in row:
        return ""
    assert '<div class="action-row is-disabled" aria-disabled="true"' in row, row
    start = row.index('<span class="action-hint action-refusal">') + len(
        '<span class="action-hint action-refusal">'
    )
    return row[start : row.index("</span>", start)].replace("&#x27;", "'")


# --- The banner -------------------------------------------------------------------------------


@pytest.mark.parametrize("page", ["cluster-list", "vm-list", "tenant-dashboard"])
def test_the_banner_says_what_a_suspended_tenant_may_still_do(
    bob: User, oscar: User, acme: Tenant, page: str
) -> None:
    suspend(acme, oscar)
    text = " ".join(page_text(bob, reverse(page, args=["acme"])).split())
    assert "<strong>Acme Corp is suspended.</strong>" in text
    assert BANNER_RULE in text


def test_an_active_tenant_shows_no_banner(bob: User, acme: Tenant) -> None:
    assert BANNER_RULE not in page_text(bob, reverse("cluster-list", args=["acme"]))


# --- Clusters ---------------------------------------------------------------------------------


def test_a_running_cluster_offers_hibernate_unprotect_and_refuses_the_rest(
    bob: User, oscar: User, acme: Tenant
) -> None:
    cluster = make_ready(request(acme, bob, "web", deletion_protection=True))
    suspend(acme, oscar)

    text = page_text(bob, url("cluster-detail", cluster.pk))

    assert {action: refusal_of(text, action) for action in offered(text)} == {
        "kubeconfig": "",
        "scale": SUSPENDED_REFUSAL,
        "upgrade": SUSPENDED_REFUSAL,
        "hibernate": "",
        "unprotect": "",
        "delete": "Deletion protection is on: turn it off first.",
    }


def test_a_protected_cluster_can_be_unprotected_and_deleted(
    bob: User, oscar: User, acme: Tenant
) -> None:
    cluster = make_ready(request(acme, bob, "web", deletion_protection=True))
    suspend(acme, oscar)
    client = browser_client_for(bob)

    unprotected = client.post(url("cluster-unprotect", cluster.pk))
    assert unprotected.status_code == 302
    cluster.refresh_from_db()
    assert not cluster.deletion_protection

    page = client.get(url("cluster-detail", cluster.pk)).content.decode()
    assert refusal_of(page, "delete") == ""
    assert refusal_of(page, "protect") == SUSPENDED_REFUSAL  # taking more care is a change
    done = client.post(
        url("cluster-delete", cluster.pk), {"confirm_name": "web"}, headers=htmx("modal-body")
    )
    assert done["HX-Redirect"] == reverse("cluster-list", args=["acme"])
    assert not Cluster.objects.filter(pk=cluster.pk).exists()


def test_hibernating_is_allowed_and_waking_is_refused_with_the_reason(
    bob: User, oscar: User, acme: Tenant
) -> None:
    cluster = make_ready(request(acme, bob, "web"))
    suspend(acme, oscar)
    client = browser_client_for(bob)

    assert client.post(url("cluster-hibernate", cluster.pk)).status_code == 302
    cluster.refresh_from_db()
    assert cluster.hibernated
    page = client.get(url("cluster-detail", cluster.pk)).content.decode()
    assert refusal_of(page, "wake") == SUSPENDED_REFUSAL

    woken = client.post(url("cluster-wake", cluster.pk), headers=htmx("modal-body"))
    assert errors_of(woken.content.decode()) == {
        "__all__": [
            "Tenant acme is suspended: resources can only be given back (stopped, hibernated, "
            "deleted)."
        ]
    }
    cluster.refresh_from_db()
    assert cluster.hibernated


def test_scaling_is_refused_in_the_dialog(bob: User, oscar: User, acme: Tenant) -> None:
    cluster = make_ready(request(acme, bob, "web", worker_count=2))
    suspend(acme, oscar)

    response = browser_client_for(bob).post(
        url("cluster-scale", cluster.pk), {"worker_count": 3}, headers=htmx("modal-body")
    )

    assert "Tenant acme is suspended" in " ".join(
        message
        for messages in errors_of(response.content.decode()).values()
        for message in messages
    )
    cluster.refresh_from_db()
    assert cluster.worker_count == 2


def test_no_cluster_can_be_created(bob: User, oscar: User, acme: Tenant) -> None:
    suspend(acme, oscar)
    text = page_text(bob, reverse("cluster-list", args=["acme"]))
    assert "Acme Corp is suspended: nothing new can be created." in text
    assert f'href="{reverse("cluster-create", args=["acme"])}"' not in text


# --- Virtual machines -------------------------------------------------------------------------


def exposed_vm(acme: Tenant, bob: User) -> VirtualMachine:
    vm = make_running(create(acme, bob, "web"))
    vm_expose(actor=Actor(bob), vm=vm, ports=[PortSpec("TCP", 22, 22)])
    return vm


def test_a_running_vm_offers_stop_console_unexpose_delete_and_refuses_the_rest(
    bob: User, oscar: User, acme: Tenant
) -> None:
    vm = exposed_vm(acme, bob)
    suspend(acme, oscar)

    text = page_text(bob, url("vm-detail", vm.pk))

    assert {action: refusal_of(text, action) for action in offered(text)} == {
        "stop": "",
        "restart": SUSPENDED_REFUSAL,
        "console": "",
        "expose": SUSPENDED_REFUSAL,
        "unexpose": "",
        "delete": "",
    }


def test_a_stopped_vm_cannot_start(bob: User, oscar: User, acme: Tenant) -> None:
    vm = stopped(create(acme, bob, "web"))
    suspend(acme, oscar)
    client = browser_client_for(bob)

    assert refusal_of(client.get(url("vm-detail", vm.pk)).content.decode(), "start") == (
        SUSPENDED_REFUSAL
    )
    started = client.post(url("vm-start", vm.pk), headers=htmx("modal-body"))
    assert "Tenant acme is suspended" in errors_of(started.content.decode())["__all__"][0]
    vm.refresh_from_db()
    assert vm.run_strategy == "Halted"


def test_stopping_withdrawing_ports_and_deleting_a_vm_go_through(
    bob: User, oscar: User, acme: Tenant
) -> None:
    vm = exposed_vm(acme, bob)
    suspend(acme, oscar)
    client = browser_client_for(bob)

    assert client.post(url("vm-stop", vm.pk)).status_code == 302
    assert client.post(url("vm-unexpose", vm.pk), {"ports": ["TCP/22"]}).status_code == 302
    vm.refresh_from_db()
    assert vm.run_strategy == "Halted"
    assert not VMService.objects.filter(vm=vm).exists()

    done = client.post(url("vm-delete", vm.pk), {"confirm_name": "web"}, headers=htmx("modal-body"))
    assert done["HX-Redirect"] == reverse("vm-list", args=["acme"])
    assert not VirtualMachine.objects.filter(pk=vm.pk).exists()


def test_no_vm_can_be_created(bob: User, oscar: User, acme: Tenant) -> None:
    suspend(acme, oscar)
    text = page_text(bob, reverse("vm-list", args=["acme"]))
    assert "Acme Corp is suspended: nothing new can be created." in text
    assert f'href="{reverse("vm-create", args=["acme"])}"' not in text


def test_the_vm_lists_bulk_power_offers_only_stop(bob: User, oscar: User, acme: Tenant) -> None:
    create(acme, bob, "web")
    suspend(acme, oscar)
    text = page_text(bob, reverse("vm-list", args=["acme"]))

    def button(action: str) -> str:
        start = text.index(f'name="action" value="{action}"')
        return text[start : text.index(">", start)]

    assert "disabled" not in button("stop")
    for action, verb in (("start", "started"), ("restart", "restarted")):
        assert "disabled" in button(action)
        assert f"VMs can be stopped or deleted, not {verb}." in button(action)
