"""One rule for a suspended tenant through the REST API: what stops spending and what removes
things stays allowed (hibernate or delete a cluster, turn its deletion protection off; stop
or delete a VM, withdraw its ports), everything else (create, scale, upgrade, wake, start,
restart, expose) is a 400 that says why, and ``allowed_actions`` tells the same truth.

acme: bob is a member; the tenant is suspended by the platform operator, oscar.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse

from clusters.models import Cluster
from tenants.audit import Actor
from tenants.models import Tenant, User
from tenants.services import tenant_set_state
from tests.clusters.conftest import catalog, make_ready, request
from tests.conftest import api_client_for
from tests.vms.conftest import _kubernetes_off_unless_asked, create, make_running, vm_catalog
from vms.models import VirtualMachine, VMService
from vms.services import vm_expose, vm_stop
from vms.spec import PortSpec

# Fixtures of tests/clusters and tests/vms: their catalogs, and no API server.
__all__ = ["_kubernetes_off_unless_asked", "catalog", "vm_catalog"]

pytestmark = pytest.mark.usefixtures("catalog", "vm_catalog")

REFUSED = {
    "non_field_errors": [
        "Tenant acme is suspended: resources can only be given back (stopped, hibernated, deleted)."
    ]
}
NOTHING_NEW = {"non_field_errors": ["Tenant acme is suspended: nothing new can be created."]}


def suspend(acme: Tenant, oscar: User) -> None:
    tenant_set_state(actor=Actor(oscar), tenant=acme, state=Tenant.State.SUSPENDED)


def cluster_url(cluster: Cluster, action: str | None = None) -> str:
    if action is None:
        return reverse("api:cluster-detail", args=[cluster.pk])
    return reverse(f"api:cluster-{action}", args=[cluster.pk])


def vm_url(vm: VirtualMachine, action: str | None = None) -> str:
    if action is None:
        return reverse("api:vm-detail", args=[vm.pk])
    return reverse(f"api:vm-{action}", args=[vm.pk])


def answer(response: Any) -> tuple[int, Any]:
    return response.status_code, response.json()


# --- Clusters ---------------------------------------------------------------------------------


def test_a_running_cluster_lists_only_what_gives_back(bob: User, oscar: User, acme: Tenant) -> None:
    protected = make_ready(request(acme, bob, "web", deletion_protection=True))
    unprotected = make_ready(request(acme, bob, "api"))
    suspend(acme, oscar)
    client = api_client_for(bob)

    # Turning protection off is the way to deleting; turning it on is a change.
    assert client.get(cluster_url(protected)).json()["allowed_actions"] == [
        "delete",
        "hibernate",
        "kubeconfig",
        "protection",
    ]
    assert client.get(cluster_url(unprotected)).json()["allowed_actions"] == [
        "delete",
        "hibernate",
        "kubeconfig",
    ]


def test_scaling_upgrading_waking_and_creating_are_refused_with_the_reason(
    bob: User, oscar: User, acme: Tenant
) -> None:
    cluster = make_ready(request(acme, bob, "web", worker_count=2))
    suspend(acme, oscar)
    client = api_client_for(bob)

    scaled = client.post(cluster_url(cluster, "scale"), {"worker_count": 3}, format="json")
    upgraded = client.post(cluster_url(cluster, "upgrade"), {"version": "v1.36.3"}, format="json")
    protected = client.post(
        cluster_url(cluster, "protection"), {"deletion_protection": True}, format="json"
    )
    created = client.post(
        reverse("api:cluster-list"), {"tenant": "acme", "name": "more"}, format="json"
    )
    assert answer(scaled) == (400, REFUSED)
    assert answer(upgraded) == (400, REFUSED)
    assert answer(protected) == (400, REFUSED)
    assert answer(created) == (400, NOTHING_NEW)

    assert client.post(cluster_url(cluster, "hibernate")).status_code == 200
    woken = client.post(cluster_url(cluster, "wake"))
    assert answer(woken) == (400, REFUSED)
    cluster.refresh_from_db()
    assert (cluster.worker_count, cluster.hibernated, cluster.deletion_protection) == (
        2,
        True,
        False,
    )
    assert client.get(cluster_url(cluster)).json()["allowed_actions"] == ["delete"]


def test_a_protected_cluster_can_be_unprotected_and_deleted(
    bob: User, oscar: User, acme: Tenant
) -> None:
    cluster = make_ready(request(acme, bob, "web", deletion_protection=True))
    suspend(acme, oscar)
    client = api_client_for(bob)

    unprotected = client.post(
        cluster_url(cluster, "protection"), {"deletion_protection": False}, format="json"
    )
    assert (unprotected.status_code, unprotected.json()["deletion_protection"]) == (200, False)
    deleted = client.delete(cluster_url(cluster), {"confirm_name": "web"}, format="json")
    assert deleted.status_code == 204
    assert not Cluster.objects.filter(pk=cluster.pk).exists()


# --- Virtual machines -------------------------------------------------------------------------


def exposed_vm(acme: Tenant, bob: User) -> VirtualMachine:
    vm = make_running(create(acme, bob, "web"))
    vm_expose(actor=Actor(bob), vm=vm, ports=[PortSpec("TCP", 22, 22)])
    return vm


def test_a_running_vm_lists_only_what_gives_back_or_looks(
    bob: User, oscar: User, acme: Tenant
) -> None:
    vm = exposed_vm(acme, bob)
    suspend(acme, oscar)

    body = api_client_for(bob).get(vm_url(vm)).json()

    assert body["allowed_actions"] == ["console", "delete", "stop", "unexpose"]


def test_starting_restarting_exposing_and_creating_are_refused_with_the_reason(
    bob: User, oscar: User, acme: Tenant
) -> None:
    running = exposed_vm(acme, bob)
    halted = vm_stop(actor=Actor(bob), vm=make_running(create(acme, bob, "db")))
    suspend(acme, oscar)
    client = api_client_for(bob)

    restarted = client.post(vm_url(running, "restart"))
    exposed = client.post(vm_url(running, "expose"), {"ports": [{"port": 80}]}, format="json")
    started = client.post(vm_url(halted, "start"))
    created = client.post(reverse("api:vm-list"), {"tenant": "acme", "name": "more"}, format="json")

    assert answer(restarted) == (400, REFUSED)
    assert answer(exposed) == (400, REFUSED)
    assert answer(started) == (400, REFUSED)
    assert answer(created) == (400, NOTHING_NEW)
    assert client.get(vm_url(halted)).json()["allowed_actions"] == ["delete"]
    halted.refresh_from_db()
    assert halted.run_strategy == "Halted"
    assert [port["port"] for port in VMService.objects.get(vm=running).ports] == [22]


def test_stopping_withdrawing_ports_and_deleting_a_vm_go_through(
    bob: User, oscar: User, acme: Tenant
) -> None:
    vm = exposed_vm(acme, bob)
    suspend(acme, oscar)
    client = api_client_for(bob)

    stopped = client.post(vm_url(vm, "stop"))
    withdrawn = client.post(vm_url(vm, "unexpose"), {"ports": [{"port": 22}]}, format="json")
    assert (stopped.status_code, stopped.json()["run_strategy"]) == (200, "Halted")
    assert withdrawn.status_code == 200
    assert not VMService.objects.filter(vm=vm).exists()

    deleted = client.delete(vm_url(vm), {"confirm_name": "web"}, format="json")
    assert deleted.status_code == 204
    assert not VirtualMachine.objects.filter(pk=vm.pk).exists()
