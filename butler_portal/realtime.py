"""Live updates: small events on a tenant's channel group, pushed to its open browsers
(and on the platform's group, to the operator console's).

An event says *what* changed (kind and id), never the data itself: the browser re-fetches
the row or panel through the normal, permission-checked view. Events are published only
after the transaction that caused them commits, so nothing announces a rolled-back change.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer, AsyncWebsocketConsumer
from channels.layers import get_channel_layer
from django.conf import settings
from django.contrib.auth import get_user
from django.db import transaction
from django.http import HttpRequest

from tenants.access import Action
from tenants.models import Tenant, User

EVENT_TYPE = "portal.event"
ACCESS_CHANGED = "access.changed"
#: Every tenant's events, for the operator console (operators and auditors see all tenants).
PLATFORM_GROUP = "platform"

# Close codes in the 4000 range mirror HTTP: the browser can tell "sign in" from "no access".
# 4401 comes after accept (see ``refuse_signed_out``); a refused handshake reaches a browser
# as 1006, exactly like a server that is down.
CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_NOT_FOUND = 4404


def tenant_group(tenant_id: int) -> str:
    return f"tenant.{tenant_id}"


def send_tenant_event(
    tenant_id: int, kind: str, object_id: int | str | None = None, **data: Any
) -> None:
    """Send an event now (callers outside a transaction: the watcher after its commit)."""
    _send((tenant_group(tenant_id), PLATFORM_GROUP), {"kind": kind, "id": object_id, **data})


def publish_tenant_event(
    tenant_id: int, kind: str, object_id: int | str | None = None, **data: Any
) -> None:
    """Send an event once the current transaction commits (immediately outside one)."""
    transaction.on_commit(lambda: send_tenant_event(tenant_id, kind, object_id, **data))


def publish_platform_event(kind: str) -> None:
    """An event for the operator console alone, once the current transaction commits."""
    transaction.on_commit(lambda: _send((PLATFORM_GROUP,), {"kind": kind, "id": None}))


async def refuse_signed_out(consumer: AsyncWebsocketConsumer, reason: str = "") -> None:
    """Close with 4401, accepting first so that the browser gets the code: a page whose
    session ended asks to sign in again instead of retrying forever. Nothing is joined,
    sent or opened before the close."""
    await consumer.accept()
    await consumer.close(code=CLOSE_UNAUTHENTICATED, reason=reason or None)


def session_still_signed_in(scope: dict[str, Any]) -> bool:
    """Does the session a socket was opened with still sign in its user? Sessions end
    while sockets stay open: signing out elsewhere, expiry, an operator clearing them."""
    opened_with = scope.get("session")
    key = getattr(opened_with, "session_key", None)
    user = scope.get("user")
    if key is None or user is None:
        return False
    request = HttpRequest()
    # A fresh read: the scope's copy was loaded once, when the socket opened.
    request.session = import_module(settings.SESSION_ENGINE).SessionStore(key)
    now = get_user(request)
    return bool(now.is_authenticated) and now.pk == user.pk


def _send(groups: tuple[str, ...], event: dict[str, Any]) -> None:
    layer = get_channel_layer()
    if layer is None:
        return

    async def send_to_each() -> None:  # one hop to the event loop for every group
        for group in groups:
            await layer.group_send(group, {"type": EVENT_TYPE, "event": event})

    async_to_sync(send_to_each)()


class EventsConsumer(AsyncJsonWebsocketConsumer):  # type: ignore[misc]
    """A one-way stream of one channel group's events to a browser (``live.js``).

    Subclasses decide in ``connect`` who may listen, then ``join`` the group; an
    ``access.changed`` event makes them decide again (``still_allowed``) and close with
    ``refusal_code`` when the answer is no. A browser that is not signed in (any more) is
    told so with 4401 after accept, never a refused handshake, and its pings check that the
    session still signs it in.
    """

    group: str | None = None
    refusal_code: int = CLOSE_FORBIDDEN

    async def join(self, group: str) -> None:
        self.group = group
        await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        if self.group is not None:
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        # The socket is one-way (server to browser); a ping gets a pong so clients can
        # detect dead connections, unless the session ended since (then 4401).
        if isinstance(content, dict) and content.get("kind") == "ping":
            if not await database_sync_to_async(session_still_signed_in)(self.scope):
                await self.close(code=CLOSE_UNAUTHENTICATED)
                return
            await self.send_json({"kind": "pong"})

    async def portal_event(self, message: dict[str, Any]) -> None:
        event = message["event"]
        if event.get("kind") == ACCESS_CHANGED and not await self.still_allowed():
            await self.close(code=self.refusal_code)
            return
        await self.send_json(event)

    async def still_allowed(self) -> bool:
        raise NotImplementedError

    def signed_in(self) -> bool:
        user = self.scope.get("user")
        return user is not None and bool(user.is_authenticated)

    def reread_user(self) -> User:
        """The scope's user as the database has it now (the scope's copy may predate a
        deactivation)."""
        user: User = self.scope["user"]
        user.refresh_from_db(fields=["is_active", "platform_role", "is_superuser"])
        return user


class TenantEventsConsumer(EventsConsumer):
    """``/ws/tenants/<slug>/``: the tenant's events, for anyone who may view the tenant.

    A tenant outside the user's reach is indistinguishable from one that does not exist.
    """

    refusal_code = CLOSE_NOT_FOUND

    async def connect(self) -> None:
        if not self.signed_in():
            await refuse_signed_out(self)
            return
        tenant_id = await self._visible_tenant_id()
        if tenant_id is None:
            await self.close(code=CLOSE_NOT_FOUND)
            return
        await self.join(tenant_group(tenant_id))
        await self.send_json({"kind": "hello", "tenant": self.scope["url_route"]["kwargs"]["slug"]})

    async def still_allowed(self) -> bool:
        # Membership changed somewhere in this tenant: make sure we may still listen.
        return await self._visible_tenant_id() is not None

    async def _visible_tenant_id(self) -> int | None:
        found: int | None = await database_sync_to_async(self._visible_tenant_id_now)()
        return found

    def _visible_tenant_id_now(self) -> int | None:
        return (
            Tenant.objects.for_user(self.reread_user(), Action.VIEW)
            .filter(slug=self.scope["url_route"]["kwargs"]["slug"])
            .values_list("pk", flat=True)
            .first()
        )


class PlatformEventsConsumer(EventsConsumer):
    """``/ws/platform/``: every tenant's events, for platform operators and auditors (the
    operator console's fleet)."""

    async def connect(self) -> None:
        if not self.signed_in():
            await refuse_signed_out(self)
            return
        if not await self.still_allowed():
            await self.close(code=CLOSE_FORBIDDEN)
            return
        await self.join(PLATFORM_GROUP)
        await self.send_json({"kind": "hello"})

    async def still_allowed(self) -> bool:
        allowed: bool = await database_sync_to_async(self._sees_every_tenant_now)()
        return allowed

    def _sees_every_tenant_now(self) -> bool:
        user = self.reread_user()
        return user.is_active and user.sees_every_tenant


__all__ = [
    "PlatformEventsConsumer",
    "TenantEventsConsumer",
    "publish_platform_event",
    "publish_tenant_event",
    "refuse_signed_out",
    "send_tenant_event",
    "session_still_signed_in",
    "tenant_group",
]
