"""A VM's serial console in the browser: a websocket proxied to KubeVirt's console.

Route: ``ws/tenants/<slug>/vms/<pk>/console/`` (same origin, the session cookie signs in).

Frames, both ways, are the console's raw bytes, with no framing of ours: the browser sends
keystrokes as binary frames (a text frame is taken as its UTF-8 bytes); the server sends
what the guest writes as binary frames, unchanged. Behind it, one connection per browser
socket to ``GET /apis/subresources.kubevirt.io/v1/namespaces/<ns>/virtualmachineinstances/
<name>/console`` (subprotocol ``plain.kubevirt.io``) on the management cluster's API server,
with the portal's own credentials (``KubeClient.open_console``). When either side ends,
both are closed.

Close codes (the close frame's reason says why, in words to show the user):

====  ===========================================================================
1000  the session ended: the guest's console closed (the VM stopped or restarted)
4401  not signed in
4403  the tenant is visible but the caller may not operate in it (viewer, auditor)
4404  no such VM within the caller's reach (another tenant's looks the same)
4409  the VM's state allows no console (it is not running)
4502  KubeVirt refused the console or could not be reached, or the connection broke
====  ===========================================================================

Every refusal is decided before anything connects upstream. Refusals about rights (4403,
4404) refuse the handshake itself: the socket is never accepted, and a browser sees HTTP 403
(close code 1006); the console page has already told a person why, so only a page left open
across a change of rights meets it. A caller who is not signed in (any more: a page left
open across the end of its session) gets 4401 after accept, with nothing sent and nothing
opened, so that the page asks to sign in again instead of looking like a server that is
down. Refusals about the moment (4409, 4502) come as accept-then-close too, so the page can
show the reason. Nothing is audited for a refusal; a session that opens is audited
(``open_console``) and so is its end (``close_console``, with its duration). Bytes of a
session are never logged or kept.

Who may: tenant members and admins (and platform operators): ``Action.OPERATE``, like the
console page. If the tenant's members change (an ``access.changed`` event), an open console
whose user lost that right is closed (4403, or 4404 if the tenant is out of reach).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from dataclasses import dataclass
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from butler_portal.kube import kube_client
from butler_portal.kube.adapter import ConsoleStream, KubeClient
from butler_portal.kube.errors import Forbidden, KubeError, Transient, Unauthorized
from butler_portal.realtime import (
    ACCESS_CHANGED,
    CLOSE_FORBIDDEN,
    CLOSE_NOT_FOUND,
    CLOSE_UNAUTHENTICATED,
    refuse_signed_out,
    tenant_group,
)
from tenants.access import Action, user_can
from tenants.audit import Actor
from tenants.models import User
from tenants.owned import namespace_of
from tenants.scoping import DENIED_MESSAGES
from vms.lifecycle import action_refusal
from vms.models import VirtualMachine
from vms.selectors import vms_for
from vms.services import vm_console_closed, vm_console_opened

logger = logging.getLogger(__name__)

CLOSE_ENDED = 1000
CLOSE_NOT_RUNNING = 4409
CLOSE_UPSTREAM = 4502
#: Refusals about rights: the handshake itself is refused, nothing is ever accepted.
ACCESS_REFUSALS = frozenset({CLOSE_FORBIDDEN, CLOSE_NOT_FOUND})
# RFC 6455: a close frame's reason is at most 123 bytes of UTF-8.
MAX_CLOSE_REASON_BYTES = 123

ENDED = "The console session ended."
LOST = "The connection to the console was lost."
NO_SUCH_VM = "No such virtual machine."
SIGN_IN = "Sign in to use the console."


@dataclass(frozen=True)
class Refusal:
    code: int
    reason: str


@dataclass(frozen=True)
class ConsoleTarget:
    """A VM whose console the caller may open now, and where it is."""

    vm: VirtualMachine
    namespace: str
    client: KubeClient


def console_target(user: User, slug: str, vm_id: int) -> ConsoleTarget | Refusal:
    """May ``user`` open this VM's console now? (404 outside reach, 403 read-only, 409 state)."""
    # Re-read the user: the session's copy may predate a deactivation or a role change.
    user.refresh_from_db(fields=["is_active", "platform_role", "is_superuser"])
    vm = vms_for(user).filter(tenant__slug=slug, pk=vm_id).first()
    if vm is None:
        return Refusal(CLOSE_NOT_FOUND, NO_SUCH_VM)
    if not user_can(user, vm.tenant, Action.OPERATE):
        return Refusal(CLOSE_FORBIDDEN, DENIED_MESSAGES[Action.OPERATE])
    if refusal := action_refusal(vm.state, vm.run_strategy, "console"):
        return Refusal(CLOSE_NOT_RUNNING, refusal)
    client = kube_client()
    if client is None:
        return Refusal(CLOSE_UPSTREAM, "No Kubernetes cluster is configured.")
    return ConsoleTarget(vm=vm, namespace=namespace_of(vm), client=client)


def upstream_refusal(error: KubeError) -> str:
    """What to tell the user when KubeVirt would not connect (the details go to the log)."""
    if isinstance(error, Forbidden | Unauthorized):
        return "The portal is not allowed to open this console."
    if isinstance(error, Transient):
        return "KubeVirt's console service did not answer; try again in a moment."
    return f"KubeVirt refused the console: {error.message}"


def close_reason(text: str) -> str:
    """``text`` cut to fit a close frame, on a character boundary."""
    encoded = text.encode()
    if len(encoded) <= MAX_CLOSE_REASON_BYTES:
        return text
    ellipsis = "…"
    room = MAX_CLOSE_REASON_BYTES - len(ellipsis.encode())
    return encoded[:room].decode(errors="ignore") + ellipsis


@dataclass
class Session:
    """One open console: for the audit trail and for closing both sides once."""

    actor: Actor
    vm: VirtualMachine
    upstream: ConsoleStream
    id: str
    started: float
    ended: bool = False


class VMConsoleConsumer(AsyncWebsocketConsumer):  # type: ignore[misc]
    """``/ws/tenants/<slug>/vms/<pk>/console/``: see the module's docstring for the contract."""

    session: Session | None = None
    pump: asyncio.Task[None] | None = None
    tenant_id: int | None = None
    closing = False  # the first reason to close wins: the others follow from it

    async def connect(self) -> None:
        user = self.scope.get("user")
        if not isinstance(user, User) or not user.is_authenticated:
            await refuse_signed_out(self, SIGN_IN)
            return
        found = await self._target(user)
        if isinstance(found, Refusal):
            await self._refuse(found)
            return
        vm = found.vm
        # Listen for changes of members first: a console must not outlive its user's right.
        self.tenant_id = vm.tenant_id
        await self.channel_layer.group_add(tenant_group(vm.tenant_id), self.channel_name)
        try:
            upstream = await found.client.open_console(found.namespace, vm.name)
        except KubeError as error:
            logger.warning("console of %s/%s refused: %s", found.namespace, vm.name, error)
            await self._refuse(Refusal(CLOSE_UPSTREAM, upstream_refusal(error)))
            return
        actor = Actor(user=user, source_ip=self._client_address())
        session = Session(actor, vm, upstream, uuid.uuid4().hex[:12], time.monotonic())
        try:
            await database_sync_to_async(vm_console_opened)(actor=actor, vm=vm, session=session.id)
        except BaseException:
            await upstream.close()
            raise
        self.session = session
        logger.info("console session %s of %s/%s opened", self.session.id, vm.tenant.slug, vm)
        await self.accept()
        self.pump = asyncio.create_task(self._pump_upstream(session))

    async def dispatch(self, message: dict[str, Any]) -> None:
        # Keystrokes are the hot path and never touch the database: Channels would first hop
        # to its single database thread (close_old_connections) for each one, which halved
        # the keys per second 20 busy consoles got through (bench/results/console_echo.md).
        if message["type"] == "websocket.receive":
            await self.websocket_receive(message)
            return
        await super().dispatch(message)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.session is None or self.session.ended:
            return
        keystrokes = bytes_data if bytes_data is not None else (text_data or "").encode()
        await self.session.upstream.send(keystrokes)

    async def disconnect(self, code: int) -> None:
        """The socket closed (the browser left, or after our close): end the upstream side."""
        we_closed, self.closing = self.closing, True
        if self.tenant_id is not None:
            await self.channel_layer.group_discard(tenant_group(self.tenant_id), self.channel_name)
        if self.pump is not None:
            if not we_closed:  # else it is finishing: let it write the audit trail
                self.pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.pump
        await self._end_session()

    async def portal_event(self, message: dict[str, Any]) -> None:
        """Tenant events: only a change of members matters here (may this user still?)."""
        if message["event"].get("kind") != ACCESS_CHANGED or self.session is None:
            return
        found = await self._target(self.session.actor.user)
        if isinstance(found, Refusal) and found.code in (CLOSE_FORBIDDEN, CLOSE_NOT_FOUND):
            await self._end(found)

    # --- Helpers -------------------------------------------------------------------------

    async def _pump_upstream(self, session: Session) -> None:
        """The guest's output to the browser, until the console closes."""
        try:
            async for output in session.upstream:
                await self.send(bytes_data=output)
        except Exception as error:  # the browser's side broke under us: end the session
            logger.info("console session %s: the browser side failed: %r", session.id, error)
            self.closing = True
            await self._end_session()
            return
        ended_cleanly = session.upstream.close_code == CLOSE_ENDED
        await self._end(
            Refusal(CLOSE_ENDED, ENDED) if ended_cleanly else Refusal(CLOSE_UPSTREAM, LOST)
        )

    async def _end(self, why: Refusal) -> None:
        """End the session and close the browser's socket with ``why``, unless already closing
        (ending the upstream side ends the pump, which would otherwise close again)."""
        if self.closing:
            return
        self.closing = True
        await self._end_session()
        await self.close(code=why.code, reason=close_reason(why.reason))

    async def _end_session(self) -> None:
        """Close the upstream side and audit the end, once, whichever side ended first."""
        session = self.session
        if session is None or session.ended:
            return
        session.ended = True
        duration = time.monotonic() - session.started  # before waiting for the close handshake
        await session.upstream.close()
        await database_sync_to_async(vm_console_closed)(
            actor=session.actor, vm=session.vm, session=session.id, duration_seconds=duration
        )
        logger.info("console session %s closed after %.1fs", session.id, duration)

    async def _refuse(self, refusal: Refusal) -> None:
        if refusal.code in ACCESS_REFUSALS:
            # Never accept a socket for someone who may not have it: the handshake is refused
            # (the browser sees HTTP 403, close code 1006; the page said why already).
            await self.close(code=refusal.code)
            return
        # The caller may use the console, it just cannot open now: accept so the browser
        # gets the code and its reason, and close at once. Nothing was opened upstream.
        await self.accept()
        await self.close(code=refusal.code, reason=close_reason(refusal.reason))

    async def _target(self, user: User | None) -> ConsoleTarget | Refusal:
        if user is None:
            return Refusal(CLOSE_UNAUTHENTICATED, SIGN_IN)
        kwargs = self.scope["url_route"]["kwargs"]
        found: ConsoleTarget | Refusal = await database_sync_to_async(console_target)(
            user, kwargs["slug"], int(kwargs["pk"])
        )
        return found

    def _client_address(self) -> str | None:
        client = self.scope.get("client")
        return str(client[0]) if client else None


__all__ = [
    "CLOSE_ENDED",
    "CLOSE_FORBIDDEN",
    "CLOSE_NOT_FOUND",
    "CLOSE_NOT_RUNNING",
    "CLOSE_UNAUTHENTICATED",
    "CLOSE_UPSTREAM",
    "VMConsoleConsumer",
    "close_reason",
    "console_target",
]
