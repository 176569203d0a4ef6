"""Live updates: small events on a tenant's channel group, pushed to its open browsers.

An event says *what* changed (kind and id), never the data itself: the browser re-fetches
the row or panel through the normal, permission-checked view. Events are published only
after the transaction that caused them commits, so nothing announces a rolled-back change.
"""

from __future__ import annotations

from typing import Any

from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from channels.layers import get_channel_layer
from django.db import transaction

from tenants.access import Action
from tenants.models import Tenant

EVENT_TYPE = "portal.event"
ACCESS_CHANGED = "access.changed"

# Close codes in the 4000 range mirror HTTP: the browser can tell "sign in" from "no access".
CLOSE_UNAUTHENTICATED = 4401
CLOSE_NOT_FOUND = 4404


def tenant_group(tenant_id: int) -> str:
    return f"tenant.{tenant_id}"


def send_tenant_event(
    tenant_id: int, kind: str, object_id: int | str | None = None, **data: Any
) -> None:
    """Send an event now (callers outside a transaction: the watcher after its commit)."""
    layer = get_channel_layer()
    if layer is None:
        return
    event = {"kind": kind, "id": object_id, **data}
    async_to_sync(layer.group_send)(tenant_group(tenant_id), {"type": EVENT_TYPE, "event": event})


def publish_tenant_event(
    tenant_id: int, kind: str, object_id: int | str | None = None, **data: Any
) -> None:
    """Send an event once the current transaction commits (immediately outside one)."""
    transaction.on_commit(lambda: send_tenant_event(tenant_id, kind, object_id, **data))


class TenantEventsConsumer(AsyncJsonWebsocketConsumer):  # type: ignore[misc]
    """``/ws/tenants/<slug>/``: the tenant's events, for anyone who may view the tenant.

    A tenant outside the user's reach is indistinguishable from one that does not exist.
    """

    tenant_id: int | None = None

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        tenant_id = await self._visible_tenant_id(self.scope["url_route"]["kwargs"]["slug"])
        if tenant_id is None:
            await self.close(code=CLOSE_NOT_FOUND)
            return
        self.tenant_id = tenant_id
        await self.channel_layer.group_add(tenant_group(tenant_id), self.channel_name)
        await self.accept()
        await self.send_json({"kind": "hello", "tenant": self.scope["url_route"]["kwargs"]["slug"]})

    async def disconnect(self, code: int) -> None:
        if self.tenant_id is not None:
            await self.channel_layer.group_discard(tenant_group(self.tenant_id), self.channel_name)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        # The socket is one-way (server to browser); a ping gets a pong so clients can
        # detect dead connections.
        if isinstance(content, dict) and content.get("kind") == "ping":
            await self.send_json({"kind": "pong"})

    async def portal_event(self, message: dict[str, Any]) -> None:
        event = message["event"]
        if event.get("kind") == ACCESS_CHANGED:
            # Membership changed somewhere in this tenant: make sure we may still listen.
            slug = self.scope["url_route"]["kwargs"]["slug"]
            if await self._visible_tenant_id(slug) is None:
                await self.close(code=CLOSE_NOT_FOUND)
                return
        await self.send_json(event)

    async def _visible_tenant_id(self, slug: str) -> int | None:
        found: int | None = await database_sync_to_async(self._visible_tenant_id_now)(slug)
        return found

    def _visible_tenant_id_now(self, slug: str) -> int | None:
        user = self.scope["user"]
        # Re-read the user: the scope's copy may predate a deactivation.
        user.refresh_from_db(fields=["is_active", "platform_role", "is_superuser"])
        return (
            Tenant.objects.for_user(user, Action.VIEW)
            .filter(slug=slug)
            .values_list("pk", flat=True)
            .first()
        )


__all__ = ["TenantEventsConsumer", "publish_tenant_event", "send_tenant_event", "tenant_group"]
