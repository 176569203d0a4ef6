"""The live-event websockets (a tenant's, the platform's), from the outside: who may listen,
and what they hear."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.sessions.models import Session
from django.test import Client

from butler_portal.asgi import application
from butler_portal.realtime import (
    ACCESS_CHANGED,
    CLOSE_FORBIDDEN,
    CLOSE_NOT_FOUND,
    CLOSE_UNAUTHENTICATED,
    send_tenant_event,
)
from tenants.audit import Actor
from tenants.models import Membership, Tenant, User
from tenants.services import user_set_active
from tests.conftest import make_tenant, make_user

pytestmark = pytest.mark.django_db(transaction=True)

ORIGIN = (b"origin", b"http://127.0.0.1:8000")


def session_cookie_for(user: User) -> bytes:
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}".encode()


def socket(
    slug: str, user: User | None, origin: tuple[bytes, bytes] = ORIGIN
) -> AbstractAsyncContextManager[tuple[WebsocketCommunicator, bool, int | None]]:
    return socket_at(f"/ws/tenants/{slug}/", user, origin)


@asynccontextmanager
async def socket_at(
    path: str, user: User | None, origin: tuple[bytes, bytes] = ORIGIN
) -> AsyncIterator[tuple[WebsocketCommunicator, bool, int | None]]:
    headers = [origin]
    if user is not None:
        headers.append((b"cookie", await sync_to_async(session_cookie_for)(user)))
    communicator = WebsocketCommunicator(application, path, headers=headers)
    connected, code = await communicator.connect(timeout=5)
    try:
        yield communicator, connected, code
    finally:
        await communicator.disconnect()


@dataclass
class World:
    """The personas, created on committed rows: the consumer reads them from other threads."""

    acme: Tenant
    globex: Tenant
    bob: User
    carol: User
    oscar: User
    audrey: User
    nobody: User

    def user(self, name: str) -> User:
        user = getattr(self, name)
        assert isinstance(user, User)
        return user


@pytest.fixture
def world() -> World:
    acme = make_tenant("acme", "Acme Corp")
    bob = make_user("bob")
    Membership.objects.create(tenant=acme, user=bob, role="member")
    carol = make_user("carol")
    Membership.objects.create(tenant=acme, user=carol, role="viewer")
    return World(
        acme=acme,
        globex=make_tenant("globex", "Globex Inc"),
        bob=bob,
        carol=carol,
        oscar=make_user("oscar", "operator"),
        audrey=make_user("audrey", "auditor"),
        nobody=make_user("nobody"),
    )


async def first_message_is_the_close(communicator: WebsocketCommunicator) -> int:
    """The code of a socket accepted only to be closed: nothing else was ever sent."""
    message = await communicator.receive_output(timeout=5)
    assert message["type"] == "websocket.close", f"{message} came before the close"
    code: int = message["code"]
    return code


async def test_anonymous_is_told_to_sign_in_and_hears_nothing(world: World) -> None:
    # Accepted only to close with 4401: a refused handshake reaches a browser as 1006, which
    # it cannot tell from a server that is down (an open page would retry forever).
    async with socket("acme", None) as (communicator, connected, _):
        assert connected
        assert await first_message_is_the_close(communicator) == CLOSE_UNAUTHENTICATED
        await sync_to_async(send_tenant_event)(world.acme.pk, "cluster.changed", 1)
        assert await communicator.receive_nothing(timeout=0.3)


async def test_a_page_whose_session_ended_is_told_to_sign_in_again(world: World) -> None:
    async with socket("acme", world.bob) as (communicator, connected, _):
        assert connected
        await communicator.receive_json_from(timeout=5)  # hello
        await Session.objects.all().adelete()  # signed out elsewhere, expired, cleared

        await communicator.send_json_to({"kind": "ping"})

        assert await communicator.receive_output(timeout=5) == {
            "type": "websocket.close",
            "code": CLOSE_UNAUTHENTICATED,
        }


async def test_reconnecting_after_the_session_ended_is_told_to_sign_in_again(
    world: World,
) -> None:
    cookie = await sync_to_async(session_cookie_for)(world.bob)
    await Session.objects.all().adelete()  # e.g. the server restarted with sessions gone
    communicator = WebsocketCommunicator(
        application, "/ws/tenants/acme/", headers=[ORIGIN, (b"cookie", cookie)]
    )
    connected, _ = await communicator.connect(timeout=5)
    assert connected
    assert await first_message_is_the_close(communicator) == CLOSE_UNAUTHENTICATED
    await communicator.disconnect()


@pytest.mark.parametrize("persona", ["bob", "carol", "oscar", "audrey"])
async def test_anyone_who_may_view_the_tenant_hears_its_events(world: World, persona: str) -> None:
    acme = world.acme
    async with socket("acme", world.user(persona)) as (communicator, connected, _):
        assert connected
        assert await communicator.receive_json_from(timeout=5) == {
            "kind": "hello",
            "tenant": "acme",
        }
        await sync_to_async(send_tenant_event)(acme.pk, "cluster.changed", 42, phase="Ready")
        assert await communicator.receive_json_from(timeout=5) == {
            "kind": "cluster.changed",
            "id": 42,
            "phase": "Ready",
        }


@pytest.mark.parametrize(
    ("persona", "slug"), [("bob", "globex"), ("nobody", "acme"), ("bob", "no-such-tenant")]
)
async def test_a_tenant_out_of_reach_looks_like_no_tenant(
    world: World, persona: str, slug: str
) -> None:
    async with socket(slug, world.user(persona)) as (_, connected, code):
        assert not connected
        assert code == CLOSE_NOT_FOUND


async def test_events_of_other_tenants_never_arrive(world: World) -> None:
    globex, acme = world.globex, world.acme
    async with socket("acme", world.bob) as (communicator, connected, _):
        assert connected
        await communicator.receive_json_from(timeout=5)  # hello
        await sync_to_async(send_tenant_event)(globex.pk, "cluster.changed", 1)
        await sync_to_async(send_tenant_event)(acme.pk, "cluster.changed", 2)
        assert (await communicator.receive_json_from(timeout=5))["id"] == 2


async def test_a_foreign_origin_is_refused(world: World) -> None:
    async with socket("acme", world.bob, origin=(b"origin", b"https://evil.example")) as (
        _,
        connected,
        _code,
    ):
        assert not connected


async def test_a_disabled_account_is_signed_out(world: World) -> None:
    bob = world.bob
    cookie = await sync_to_async(session_cookie_for)(bob)
    await User.objects.filter(pk=bob.pk).aupdate(is_active=False)
    communicator = WebsocketCommunicator(
        application, "/ws/tenants/acme/", headers=[ORIGIN, (b"cookie", cookie)]
    )
    await communicator.connect(timeout=5)
    assert await first_message_is_the_close(communicator) == CLOSE_UNAUTHENTICATED
    await communicator.disconnect()


async def test_removing_a_member_closes_their_socket(world: World) -> None:
    acme, bob = world.acme, world.bob
    async with socket("acme", bob) as (communicator, connected, _):
        assert connected
        await communicator.receive_json_from(timeout=5)  # hello
        await Membership.objects.filter(user=bob).adelete()
        await sync_to_async(send_tenant_event)(acme.pk, ACCESS_CHANGED)
        closed = await communicator.receive_output(timeout=5)
        assert closed == {"type": "websocket.close", "code": CLOSE_NOT_FOUND}


async def test_ping_gets_a_pong(world: World) -> None:
    async with socket("acme", world.bob) as (communicator, connected, _):
        assert connected
        await communicator.receive_json_from(timeout=5)
        await communicator.send_json_to({"kind": "ping"})
        assert await communicator.receive_json_from(timeout=5) == {"kind": "pong"}


# --- The platform's channel (the operator console's fleet) ---------------------------------

PLATFORM = "/ws/platform/"


@pytest.mark.parametrize("persona", ["bob", "carol", "nobody"])
async def test_the_platform_channel_is_for_operators_and_auditors_only(
    world: World, persona: str
) -> None:
    async with socket_at(PLATFORM, world.user(persona)) as (_, connected, code):
        assert not connected
        assert code == CLOSE_FORBIDDEN


async def test_the_platform_channel_tells_the_signed_out_to_sign_in(world: World) -> None:
    async with socket_at(PLATFORM, None) as (communicator, connected, _):
        assert connected
        assert await first_message_is_the_close(communicator) == CLOSE_UNAUTHENTICATED


@pytest.mark.parametrize("persona", ["oscar", "audrey"])
async def test_operators_and_auditors_hear_every_tenants_events(world: World, persona: str) -> None:
    async with socket_at(PLATFORM, world.user(persona)) as (communicator, connected, _):
        assert connected
        assert await communicator.receive_json_from(timeout=5) == {"kind": "hello"}
        await sync_to_async(send_tenant_event)(world.acme.pk, "vm.changed", 7, state="running")
        await sync_to_async(send_tenant_event)(world.globex.pk, "cluster.changed", 9)
        assert await communicator.receive_json_from(timeout=5) == {
            "kind": "vm.changed",
            "id": 7,
            "state": "running",
        }
        assert (await communicator.receive_json_from(timeout=5))["id"] == 9


async def test_a_disabled_operator_is_dropped_from_the_platform_channel(world: World) -> None:
    colleague = await sync_to_async(make_user)("opal", "operator")
    async with socket_at(PLATFORM, colleague) as (communicator, connected, _):
        assert connected
        await communicator.receive_json_from(timeout=5)  # hello
        await sync_to_async(user_set_active)(actor=Actor(world.oscar), user=colleague, active=False)
        closed = await communicator.receive_output(timeout=5)
        assert closed == {"type": "websocket.close", "code": CLOSE_FORBIDDEN}
