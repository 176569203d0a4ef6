"""Hear tenant events where a browser's websocket would: on the channel layer.

The listener owns an event loop in a thread of its own, because the pub/sub channel layer
keeps one connection per event loop: subscribing and receiving must happen on the same one.
Each event is stamped with ``time.perf_counter()`` as it comes off the layer, on that loop.
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from channels.layers import get_channel_layer

from butler_portal.realtime import tenant_group

T = TypeVar("T")
Event = dict[str, Any]


class TenantEventListener:
    def __init__(self) -> None:
        self.received: queue.Queue[tuple[float, Event]] = queue.Queue()
        self._layer = get_channel_layer()
        assert self._layer is not None, "no channel layer is configured"
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="tenant-event-listener", daemon=True
        )
        self._thread.start()
        self._channel: str = self._run(self._layer.new_channel())
        self._receiver = asyncio.run_coroutine_threadsafe(self._receive_forever(), self._loop)

    def subscribe(self, tenant_id: int) -> None:
        self._run(self._layer.group_add(tenant_group(tenant_id), self._channel))

    def next_event(self, timeout: float) -> tuple[float, Event]:
        """The next event and when it arrived; ``queue.Empty`` after ``timeout`` seconds."""
        return self.received.get(timeout=timeout)

    def wait_for(self, matches: Callable[[Event], bool], timeout: float) -> Event:
        """The first event that ``matches``, skipping others; fails after ``timeout``."""
        deadline = time.monotonic() + timeout
        seen: list[Event] = []
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                _, event = self.next_event(remaining)
            except queue.Empty:
                break
            if matches(event):
                return event
            seen.append(event)
        raise AssertionError(f"no matching event within {timeout}s; got {seen}")

    def drain(self, quiet_for: float = 0.3) -> list[Event]:
        """Everything received until nothing arrives for ``quiet_for`` seconds."""
        drained: list[Event] = []
        while True:
            try:
                drained.append(self.next_event(quiet_for)[1])
            except queue.Empty:
                return drained

    def close(self) -> None:
        self._receiver.cancel()
        self._run(self._layer.flush())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    async def _receive_forever(self) -> None:
        while True:
            message = await self._layer.receive(self._channel)
            self.received.put((time.perf_counter(), message["event"]))

    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(10)
