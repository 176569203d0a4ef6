"""Keep one list-and-watch stream per kind alive, whatever happens to the API server.

Both the watcher (status into the portal) and the simulator (status into Kubernetes) sit on
this: it lists once, then watches from the list's resourceVersion, resumes from the last
version it saw after a dropped connection, lists again when the server answers 410 Gone,
and backs off while the server is away. Every object it sees goes to one callback.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass

from butler_portal.kube.adapter import KubeClient, Manifest
from butler_portal.kube.errors import Gone, KubeError, NotFound, Transient

logger = logging.getLogger(__name__)

# A handler gets the event type (ADDED, MODIFIED, DELETED, or SYNC for objects found by a
# list) and the object.
Handler = Callable[[str, Manifest], None]

SYNC = "SYNC"


@dataclass(frozen=True)
class WatchedKind:
    api_version: str
    kind: str
    namespace: str | None = None
    label_selector: str | None = None

    def __str__(self) -> str:
        return f"{self.kind}.{self.api_version}"


@dataclass
class Backoff:
    """Exponential delays with jitter, reset after a success."""

    initial: float = 0.5
    maximum: float = 30.0
    attempt: int = 0

    def next_delay(self) -> float:
        delay: float = min(self.maximum, self.initial * 2.0**self.attempt)
        self.attempt += 1
        return delay * (0.5 + random.random() / 2)  # noqa: S311 - jitter, not security

    def reset(self) -> None:
        self.attempt = 0


class Informer:
    """Follows one kind until ``stop`` is set. Run it in a thread of its own."""

    # A watch that fails this often in a row from the same resourceVersion starts over
    # with a list: some compaction races answer 500 instead of 410.
    RELIST_AFTER_FAILURES = 3

    def __init__(
        self,
        client: Callable[[], KubeClient | None],
        watched: WatchedKind,
        handler: Handler,
        *,
        stop: threading.Event,
        watch_timeout_seconds: int = 60,
        backoff: Backoff | None = None,
    ) -> None:
        self.client = client
        self.watched = watched
        self.handler = handler
        self.stop = stop
        self.watch_timeout_seconds = watch_timeout_seconds
        self.backoff = backoff or Backoff()
        self.resource_version: str | None = None
        self.relists = 0  # how many times it had to list (observability and tests)

    def run(self) -> None:
        failures_at_version = 0
        while not self.stop.is_set():
            try:
                client = self.client()
                if client is None:
                    self._pause()
                    continue
                if self.resource_version is None:
                    self._list(client)
                self._watch(client)
                self.backoff.reset()
                failures_at_version = 0
            except Gone:
                logger.info("%s: resourceVersion expired, listing again", self.watched)
                self.resource_version = None
            except (Transient, NotFound) as error:
                # NotFound: the CRD is not installed (yet); Transient: the server is away.
                failures_at_version += 1
                if failures_at_version >= self.RELIST_AFTER_FAILURES:
                    self.resource_version = None
                    failures_at_version = 0
                logger.warning("%s: %s; retrying", self.watched, error)
                self._pause()
            except KubeError as error:
                logger.error("%s: %s; retrying", self.watched, error)
                self._pause()
            except Exception:
                # A handler bug must not end the stream for every later object.
                logger.exception("%s: handler failed; continuing", self.watched)
                self._pause()

    def _pause(self) -> None:
        self.stop.wait(self.backoff.next_delay())

    def _list(self, client: KubeClient) -> None:
        listed = client.list(
            self.watched.api_version,
            self.watched.kind,
            self.watched.namespace,
            label_selector=self.watched.label_selector,
        )
        self.relists += 1
        for item in listed.items:
            self.handler(SYNC, item)
        self.resource_version = listed.resource_version

    def _watch(self, client: KubeClient) -> None:
        events = client.watch(
            self.watched.api_version,
            self.watched.kind,
            self.watched.namespace,
            resource_version=self.resource_version,
            label_selector=self.watched.label_selector,
            timeout_seconds=self.watch_timeout_seconds,
        )
        try:
            for event in events:
                if event.type != "BOOKMARK":
                    self.handler(event.type, event.object)
                if event.resource_version:
                    self.resource_version = event.resource_version
                if self.stop.is_set():
                    return
        finally:
            events.close()


class InformerGroup:
    """Several informers, one thread each, started and stopped together."""

    def __init__(
        self,
        client: Callable[[], KubeClient | None],
        handlers: dict[WatchedKind, Handler],
        *,
        name: str,
        watch_timeout_seconds: int = 60,
    ) -> None:
        self.stop_event = threading.Event()
        self.informers = [
            Informer(
                client,
                watched,
                handler,
                stop=self.stop_event,
                watch_timeout_seconds=watch_timeout_seconds,
            )
            for watched, handler in handlers.items()
        ]
        self.name = name
        self._threads: list[threading.Thread] = []

    def start(self) -> InformerGroup:
        for informer in self.informers:
            thread = threading.Thread(
                target=informer.run, name=f"{self.name}:{informer.watched.kind}", daemon=True
            )
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self.stop_event.set()
        for thread in self._threads:
            thread.join(timeout)
        self._threads.clear()

    def __enter__(self) -> InformerGroup:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
