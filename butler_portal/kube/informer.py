"""Keep one list-and-watch stream per kind alive, whatever happens to the API server.

Both the watcher (status into the portal) and the simulator (status into Kubernetes) sit on
this: it lists once, then watches from the list's resourceVersion, resumes from the last
version it saw after a dropped connection, lists again when the server answers 410 Gone,
and backs off while the server is away. Every object it sees goes to one callback.

Nothing a callback does can stop the stream: an exception is logged, the stream goes on, and
the object is handed over again at the next watch restart until a call succeeds or a newer
version of the object replaces it. A relist also reports, as DELETED with the last version
seen, the objects that vanished while the stream was down, so a 410 loses no deletion.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from butler_portal.kube.adapter import KubeClient, Manifest
from butler_portal.kube.errors import Gone, KubeError, NotFound, NotServed, Transient

logger = logging.getLogger(__name__)

# A handler gets the event type (ADDED, MODIFIED, DELETED, or SYNC for objects found by a
# list) and the object.
Handler = Callable[[str, Manifest], None]

SYNC = "SYNC"
DELETED = "DELETED"

ObjectKey = tuple[str, str]  # (namespace, or "" for cluster-scoped objects; name)


def object_key(obj: Manifest) -> ObjectKey:
    metadata = obj.get("metadata") or {}
    return (metadata.get("namespace") or "", metadata.get("name") or "")


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
        # A component is installed in minutes, not seconds: no need to ask every 30 s.
        self.not_served_backoff = Backoff(initial=2.0, maximum=120.0)
        # What is wrong since the last success ("kind not served", ...), to log it once.
        self._trouble: str | None = None
        self.resource_version: str | None = None
        self.relists = 0  # how many times it had to list (observability and tests)
        self._failures_at_version = 0
        self.synced = threading.Event()  # set once the first list has been handed over
        # The last version of every object seen, to report deletions a relist reveals.
        self._known: dict[ObjectKey, Manifest] = {}
        # Objects whose handler call failed, to hand over again.
        self._failed: dict[ObjectKey, tuple[str, Manifest]] = {}
        # Held while the handler runs: stopping waits for it, so no call outlives a stop.
        self._delivering = threading.Lock()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                client = self.client()
                if client is None:
                    self._pause()
                    continue
                self._retry_failed()
                if self.resource_version is None:
                    self._list(client)
                    self._recovered()
                self._watch(client)
                self._recovered()
            except Exception as error:
                # A stream cut short by stopping is no failure worth a word.
                if not self.stop.is_set():
                    self._recover(error)

    def _recovered(self) -> None:
        if self._trouble is not None:
            logger.info("%s: followed again (after %s)", self.watched, self._trouble)
            self._trouble = None
        self.backoff.reset()
        self.not_served_backoff.reset()
        self._failures_at_version = 0

    def _recover(self, error: Exception) -> None:
        if isinstance(error, Gone):
            logger.info("%s: resourceVersion expired, listing again", self.watched)
            self.resource_version = None
        elif isinstance(error, NotServed):
            # The component is not installed (yet). The watcher says so once for every kind
            # (butler_portal.kube.served); here it is only worth a debug line per attempt.
            self._note_trouble("kind not served", error, level=logging.DEBUG)
            self.resource_version = None
            self.stop.wait(self.not_served_backoff.next_delay())
            return
        elif isinstance(error, Transient | NotFound):
            # Transient: the server is away. Said once per outage, not once per attempt.
            self._failures_at_version += 1
            if self._failures_at_version >= self.RELIST_AFTER_FAILURES:
                self.resource_version = None
                self._failures_at_version = 0
            self._note_trouble("API server unavailable", error, level=logging.WARNING)
        elif isinstance(error, KubeError):
            self._note_trouble("refused", error, level=logging.ERROR)
        else:
            # Handlers cannot get here (see _deliver): this is a bug in the stream itself,
            # and giving up would silently freeze the portal's view of this kind.
            logger.error("%s: unexpected error; retrying", self.watched, exc_info=error)
        self._pause()

    def _note_trouble(self, trouble: str, error: Exception, *, level: int) -> None:
        """Log the first failure of a streak at ``level``, the rest of it at debug level."""
        first = self._trouble != trouble
        self._trouble = trouble
        logger.log(
            level if first else logging.DEBUG,
            "%s: %s; retrying with backoff%s",
            self.watched,
            error,
            "" if first else " (still)",
        )

    def wait_idle(self) -> None:
        """Return once no handler call is running (after a stop, none will start again)."""
        with self._delivering:
            pass

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
        previous, self._known = self._known, {object_key(item): item for item in listed.items}
        for item in listed.items:
            self._deliver(SYNC, item)
        for key in previous.keys() - self._known.keys():
            self._deliver(DELETED, previous[key])
        self.resource_version = listed.resource_version
        self.synced.set()

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
                if self.stop.is_set():
                    return
                if self._trouble is not None:  # the server answers again
                    self._recovered()
                if event.type != "BOOKMARK":
                    key = object_key(event.object)
                    if event.type == DELETED:
                        self._known.pop(key, None)
                    else:
                        self._known[key] = event.object
                    self._deliver(event.type, event.object)
                if event.resource_version:
                    self.resource_version = event.resource_version
        finally:
            events.close()

    def _deliver(self, event_type: str, obj: Manifest) -> None:
        key = object_key(obj)
        with self._delivering:
            if self.stop.is_set():
                return
            try:
                self.handler(event_type, obj)
            except Exception:
                logger.exception(
                    "%s: handler failed on %s %s; it gets the object again later",
                    self.watched,
                    event_type,
                    "/".join(filter(None, key)),
                )
                self._failed[key] = (event_type, obj)
            else:
                self._failed.pop(key, None)

    def _retry_failed(self) -> None:
        for event_type, obj in list(self._failed.values()):
            self._deliver(event_type, obj)


class InformerGroup:
    """Several informers, one thread each, started and stopped together."""

    def __init__(
        self,
        client: Callable[[], KubeClient | None],
        handlers: Mapping[WatchedKind, Handler],
        *,
        name: str,
        watch_timeout_seconds: int = 60,
        on_thread_exit: Callable[[], None] | None = None,
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
        # Runs last in each informer's thread, e.g. to close the thread's database connections.
        self.on_thread_exit = on_thread_exit
        self._threads: list[threading.Thread] = []

    def start(self) -> InformerGroup:
        for informer in self.informers:
            thread = threading.Thread(
                target=self._run,
                args=(informer,),
                name=f"{self.name}:{informer.watched.kind}",
                daemon=True,
            )
            thread.start()
            self._threads.append(thread)
        return self

    def wait_until_synced(self, timeout: float) -> bool:
        """True once every informer has listed and handed over its kind once."""
        deadline = time.monotonic() + timeout
        return all(
            informer.synced.wait(max(0.0, deadline - time.monotonic()))
            for informer in self.informers
        )

    def stop(self, timeout: float = 10.0) -> None:
        """Stop handing objects over at once; give the threads ``timeout`` seconds to end.

        When this returns no handler is running and none will run again. A thread that is
        blocked reading an idle watch ends at its next event or at the watch's server-side
        timeout, without calling its handler; the threads are daemons, so none holds up exit.
        """
        self.stop_event.set()
        for informer in self.informers:
            informer.wait_idle()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._threads = [thread for thread in self._threads if thread.is_alive()]

    def __enter__(self) -> InformerGroup:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self, informer: Informer) -> None:
        try:
            informer.run()
        finally:
            if self.on_thread_exit is not None:
                self.on_thread_exit()
