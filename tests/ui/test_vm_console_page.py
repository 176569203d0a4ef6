"""The VM console page: who may open it, and what it says when the VM is not running.

The bytes themselves flow over the console websocket (tests/vms/test_console.py checks its
own authorisation); this page must not even offer the terminal to people who may not use it.
acme: alice admin, bob member, carol viewer; globex: gina admin; oscar operator, audrey auditor.
"""

from __future__ import annotations

import pytest
from django.urls import reverse

from tenants.models import Tenant, User
from tests.conftest import browser_client_for
from tests.vms.conftest import make_running, make_vm_row, stopped
from vms.models import VirtualMachine


def console_url(vm: VirtualMachine) -> str:
    return reverse("vm-console", args=[vm.tenant.slug, vm.pk])


@pytest.mark.parametrize("who", ["alice", "bob"])
def test_members_and_admins_get_a_terminal_wired_to_the_console_socket(
    acme: Tenant, who: str, request: pytest.FixtureRequest
) -> None:
    vm = make_running(make_vm_row(acme, name="web"))
    user: User = request.getfixturevalue(who)

    response = browser_client_for(user).get(console_url(vm))

    assert response.status_code == 200
    page = response.content.decode()
    assert f'data-socket-path="/ws/tenants/acme/vms/{vm.pk}/console/"' in page
    assert "vendor/xterm/xterm.js" in page  # served from static/, not a CDN
    assert "data-closed-reason" not in page
    assert 'data-vm-state="running"' in page


def test_a_stopped_vm_says_why_the_console_is_closed(acme: Tenant, bob: User) -> None:
    vm = stopped(make_vm_row(acme, name="web"))
    assert vm.state == VirtualMachine.State.STOPPED

    page = browser_client_for(bob).get(console_url(vm)).content.decode()

    assert "The console opens while the VM is running; web is stopped." in page


@pytest.mark.parametrize("who", ["carol", "audrey"])
def test_viewers_and_auditors_are_refused(
    acme: Tenant, who: str, request: pytest.FixtureRequest
) -> None:
    vm = make_running(make_vm_row(acme, name="web"))

    response = browser_client_for(request.getfixturevalue(who)).get(console_url(vm))

    assert response.status_code == 403
    assert b"data-socket-path" not in response.content


@pytest.mark.parametrize("who", ["gina", "nobody"])
def test_other_tenants_see_nothing(acme: Tenant, who: str, request: pytest.FixtureRequest) -> None:
    vm = make_running(make_vm_row(acme, name="web"))

    response = browser_client_for(request.getfixturevalue(who)).get(console_url(vm))

    assert response.status_code == 404


def test_a_vm_of_another_tenant_is_not_found_under_this_one(
    acme: Tenant, globex: Tenant, gina: User
) -> None:
    theirs = make_running(make_vm_row(acme, name="web"))

    response = browser_client_for(gina).get(reverse("vm-console", args=["globex", theirs.pk]))

    assert response.status_code == 404


def test_signed_out_visitors_go_to_the_login_page(acme: Tenant) -> None:
    vm = make_running(make_vm_row(acme, name="web"))

    response = browser_client_for(None).get(console_url(vm))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))
