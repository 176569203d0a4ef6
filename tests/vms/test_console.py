"""A VM's serial console in the browser: the websocket consumer, proxying to KubeVirt's
console through the real local API server (the simulator serving ``subresources.kubevirt.io``
as an aggregated API, a getty behind it). Who may open it, what flows, what is audited."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.sessions.models import Session

from butler_portal.asgi import application
from butler_portal.kube.adapter import KubeClient
from butler_portal.simulator import Simulator
from butler_portal.simulator.subresources import SubresourceServer
from tenants.audit import Actor
from tenants.models import AuditEvent, Membership, Tenant, User
from tenants.owned import namespace_of
from tenants.services import membership_change_role, membership_remove
from tests.realtime.test_event_sockets import ORIGIN, session_cookie_for
from tests.simulator_fixtures import wait_for
from tests.vms.conftest import make_running, make_vm_row
from vms.consumers import (
    CLOSE_ENDED,
    CLOSE_FORBIDDEN,
    CLOSE_NOT_FOUND,
    CLOSE_NOT_RUNNING,
    CLOSE_UNAUTHENTICATED,
    CLOSE_UPSTREAM,
    MAX_CLOSE_REASON_BYTES,
    close_reason,
)
from vms.models import VirtualMachine

pytestmark = pytest.mark.django_db(transaction=True)

TIMEOUT = 10.0
KUBEVIRT = "kubevirt.io/v1"


@dataclass(frozen=True)
class Guest:
    """A VM row the portal sees running, and its running instance in Kubernetes."""

    vm: VirtualMachine
    slug: str
    namespace: str

    @property
    def path(self) -> str:
        return f"/ws/tenants/{self.slug}/vms/{self.vm.pk}/console/"


def instance(name: str, namespace: str) -> dict[str, Any]:
    """The VMI as virt-handler reports a running one (its CRD has no status subresource)."""
    return {
        "apiVersion": KUBEVIRT,
        "kind": "VirtualMachineInstance",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"domain": {"devices": {}}},
        "status": {"phase": "Running"},
    }


def running_vm_row(tenant: Tenant) -> VirtualMachine:
    return make_running(make_vm_row(tenant))


@pytest.fixture
def guest(acme: Tenant, portal_k8s: KubeClient, simulator: Simulator) -> Guest:
    vm = running_vm_row(acme)
    namespace = namespace_of(vm)
    portal_k8s.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    portal_k8s.apply(instance(vm.name, namespace))
    return Guest(vm, acme.slug, namespace)


@pytest.fixture
def upstream(simulator: Simulator) -> SubresourceServer:
    """The simulator's console server: what reached it, and the consoles open there."""
    assert simulator.subresources is not None
    return simulator.subresources


async def communicator_for(path: str, user: User | None) -> WebsocketCommunicator:
    headers = [ORIGIN]
    if user is not None:
        headers.append((b"cookie", await sync_to_async(session_cookie_for)(user)))
    return WebsocketCommunicator(application, path, headers=headers)


@asynccontextmanager
async def console(path: str, user: User | None) -> AsyncIterator[WebsocketCommunicator]:
    """A socket the portal accepted (a session, a signed-out caller told 4401, or a refusal
    about the moment, 4409/4502: all come after accept so that the browser sees the code)."""
    async with console_of(await communicator_for(path, user)) as communicator:
        yield communicator


@asynccontextmanager
async def console_of(communicator: WebsocketCommunicator) -> AsyncIterator[WebsocketCommunicator]:
    """``console`` for a socket whose cookie was taken earlier."""
    connected, _ = await communicator.connect(timeout=TIMEOUT)
    assert connected
    try:
        yield communicator
    finally:
        await communicator.disconnect()


async def refused_handshake(path: str, user: User | None) -> int:
    """The close code of a handshake the portal refused without ever accepting it."""
    communicator = await communicator_for(path, user)
    connected, code = await communicator.connect(timeout=TIMEOUT)
    assert not connected, "the socket was accepted"
    assert isinstance(code, int)
    return code


async def read_until(communicator: WebsocketCommunicator, wanted: bytes) -> bytes:
    """The bytes the console sends (binary frames only) until ``wanted`` has appeared."""
    seen = b""
    while wanted not in seen:
        message = await communicator.receive_output(timeout=TIMEOUT)
        assert message["type"] == "websocket.send", f"{message} after {seen!r}"
        assert "bytes" in message, "the console speaks binary frames"
        seen += message["bytes"]
    return seen


async def close_frame(communicator: WebsocketCommunicator) -> dict[str, Any]:
    """The close the server sends (skipping output still on its way)."""
    while True:
        message: dict[str, Any] = await communicator.receive_output(timeout=TIMEOUT)
        if message["type"] == "websocket.close":
            return message


def console_events(vm: VirtualMachine) -> list[AuditEvent]:
    return list(
        AuditEvent.objects.filter(object_type="virtualmachine", object_id=str(vm.pk)).order_by("id")
    )


# --- Who may -------------------------------------------------------------------------------


@pytest.mark.k8s
@pytest.mark.parametrize("persona", ["bob", "alice", "oscar"])  # member, admin, operator
async def test_whoever_may_operate_gets_the_login_prompt_and_can_type(
    guest: Guest, personas: dict[str, User], persona: str
) -> None:
    async with console(guest.path, personas[persona]) as browser:
        greeting = await read_until(browser, b"login: ")
        assert greeting.endswith(f"\r\n\r\n{guest.vm.name} login: ".encode())

        await browser.send_to(bytes_data=b"ubuntu\r")  # keystrokes as binary frames
        assert await read_until(browser, b"Password: ") == b"ubuntu\r\nPassword: "
        await browser.send_to(text_data="secret\r")  # or as text
        answer = await read_until(browser, b"login: ")
        assert b"secret" not in answer
        assert b"Login incorrect" in answer


@pytest.mark.k8s
@pytest.mark.parametrize(
    ("persona", "tenant", "code"),
    [
        ("carol", "acme", CLOSE_FORBIDDEN),  # viewer
        ("audrey", "acme", CLOSE_FORBIDDEN),  # auditor
        ("gina", "acme", CLOSE_NOT_FOUND),  # another tenant's
        ("nobody", "acme", CLOSE_NOT_FOUND),
        ("bob", "globex", CLOSE_NOT_FOUND),  # the VM is acme's
    ],
)
async def test_anyone_else_is_refused_before_anything_connects_upstream(
    guest: Guest,
    upstream: SubresourceServer,
    personas: dict[str, User],
    persona: str,
    tenant: str,
    code: int,
) -> None:
    path = guest.path.replace("/acme/", f"/{tenant}/")
    assert await refused_handshake(path, personas[persona]) == code

    assert upstream.console_requests == 0
    assert await sync_to_async(console_events)(guest.vm) == []


@pytest.mark.k8s
async def test_a_page_whose_session_ended_is_told_to_sign_in_again(
    guest: Guest, upstream: SubresourceServer, bob: User
) -> None:
    # Accepted only to close with 4401 (a refused handshake looks like a server that is
    # down): the page asks to sign in instead of offering Reconnect for ever.
    communicator = await communicator_for(guest.path, bob)
    await Session.objects.all().adelete()

    async with console(guest.path, None) as signed_out, console_of(communicator) as ended:
        for browser in (signed_out, ended):
            assert await browser.receive_output(timeout=TIMEOUT) == {
                "type": "websocket.close",
                "code": CLOSE_UNAUTHENTICATED,
                "reason": "Sign in to use the console.",
            }

    assert upstream.console_requests == 0
    assert await sync_to_async(console_events)(guest.vm) == []


@pytest.mark.k8s
async def test_a_vm_that_does_not_run_has_no_console(
    guest: Guest, upstream: SubresourceServer, bob: User
) -> None:
    await VirtualMachine.objects.filter(pk=guest.vm.pk).aupdate(state="stopped")

    async with console(guest.path, bob) as browser:
        closed = await close_frame(browser)

    assert closed["code"] == CLOSE_NOT_RUNNING
    assert closed["reason"] == "The console is available while the virtual machine runs."
    assert upstream.console_requests == 0


@pytest.mark.k8s
async def test_kubevirts_refusal_closes_with_its_words(
    acme: Tenant, portal_k8s: KubeClient, upstream: SubresourceServer, bob: User
) -> None:
    # The portal believes it runs; Kubernetes has no instance (it just stopped, say).
    vm = await sync_to_async(running_vm_row)(acme)

    async with console(f"/ws/tenants/acme/vms/{vm.pk}/console/", bob) as browser:
        closed = await close_frame(browser)

    assert closed["code"] == CLOSE_UPSTREAM
    assert closed["reason"] == (
        f'KubeVirt refused the console: virtualmachineinstance.kubevirt.io "{vm.name}" not found'
    )
    assert upstream.console_requests == 1
    assert await sync_to_async(console_events)(vm) == []  # no session, nothing to audit


async def test_without_kubernetes_there_is_no_console(acme: Tenant, bob: User) -> None:
    vm = await sync_to_async(running_vm_row)(acme)  # KUBE_MODE is off for VM tests

    async with console(f"/ws/tenants/acme/vms/{vm.pk}/console/", bob) as browser:
        closed = await close_frame(browser)

    assert (closed["code"], closed["reason"]) == (
        CLOSE_UPSTREAM,
        "No Kubernetes cluster is configured.",
    )


# --- A session, from start to end ----------------------------------------------------------


@pytest.mark.k8s
async def test_a_session_is_audited_with_its_duration_and_nothing_typed(
    guest: Guest, upstream: SubresourceServer, bob: User
) -> None:
    started = time.monotonic()
    async with console(guest.path, bob) as browser:
        await read_until(browser, b"login: ")
        await browser.send_to(bytes_data=b"bob\rhunter2\r")
        await read_until(browser, b"Login incorrect")
        await asyncio.sleep(0.3)
    lasted = time.monotonic() - started
    # Leaving the page closes the upstream side too.
    await sync_to_async(wait_for)(lambda: upstream.open_consoles == 0, TIMEOUT)

    opened, closed = await sync_to_async(console_events)(guest.vm)
    assert (opened.action, closed.action) == ("open_console", "close_console")
    for event in (opened, closed):
        assert (event.actor_id, event.tenant_slug, event.object_repr) == (
            bob.pk,
            "acme",
            f"acme/{guest.vm.name}",
        )
        assert "hunter2" not in str(event.changes)
    assert closed.changes["session"] == opened.changes["session"]
    assert 0.3 <= closed.changes["duration_seconds"] <= lasted + 0.1


@pytest.mark.k8s
async def test_the_guest_going_away_closes_the_browser_side(
    guest: Guest, portal_k8s: KubeClient, upstream: SubresourceServer, bob: User
) -> None:
    async with console(guest.path, bob) as browser:
        await read_until(browser, b"login: ")

        # The VM stops: KubeVirt deletes its instance, and its console ends.
        await sync_to_async(portal_k8s.delete)(
            KUBEVIRT, "VirtualMachineInstance", guest.vm.name, guest.namespace
        )

        closed = await close_frame(browser)
        assert closed == {
            "type": "websocket.close",
            "code": CLOSE_ENDED,
            "reason": "The console session ended.",
        }
        actions = [e.action for e in await sync_to_async(console_events)(guest.vm)]
        assert actions == ["open_console", "close_console"]
    assert upstream.open_consoles == 0


@pytest.mark.k8s
@pytest.mark.parametrize(
    ("change", "code"),
    [("viewer", CLOSE_FORBIDDEN), ("removed", CLOSE_NOT_FOUND)],
)
async def test_losing_the_right_closes_an_open_console(
    guest: Guest,
    upstream: SubresourceServer,
    acme: Tenant,
    bob: User,
    oscar: User,
    change: str,
    code: int,
) -> None:
    async with console(guest.path, bob) as browser:
        await read_until(browser, b"login: ")
        membership = await Membership.objects.aget(tenant=acme, user=bob)
        operator = Actor(oscar)
        # The services announce the change (access.changed) once it is committed.
        if change == "removed":
            await sync_to_async(membership_remove)(actor=operator, membership=membership)
        else:
            await sync_to_async(membership_change_role)(
                actor=operator, membership=membership, role=change
            )

        closed = await close_frame(browser)
        assert closed["code"] == code
    await sync_to_async(wait_for)(lambda: upstream.open_consoles == 0, TIMEOUT)


def test_a_long_reason_is_cut_to_fit_a_close_frame() -> None:
    reason = close_reason("KubeVirt refused the console: " + "é" * 100)

    assert len(reason.encode()) <= MAX_CLOSE_REASON_BYTES
    assert reason.startswith("KubeVirt refused the console: éé")
    assert reason.endswith("…")
