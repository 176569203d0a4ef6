"""The watcher: Kubernetes status into the portal, by watch.

One informer group (one list-and-watch stream per kind, whatever the number of objects) feeds
the handlers the apps provide (``settings.WATCHER_HANDLER_MODULES``). Each call runs in a
transaction, so the tenant events a handler publishes go out once its rows are committed.
The drift reconcile runs when leadership starts and then every ``reconcile_interval``.

With leader election, replicas compete for a Lease and only the holder runs the informers and
the reconcile; the others stand by and take over when it stops or dies. Without it (the
embedded single process, tests) the watcher leads from ``start()`` to ``stop()``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from django.conf import settings
from django.db import close_old_connections, connections, transaction

from butler_portal.kube import kube_client
from butler_portal.kube.adapter import KubeClient, Manifest
from butler_portal.kube.errors import KubeError
from butler_portal.kube.informer import Handler, Informer, InformerGroup, WatchedKind
from butler_portal.kube.lease import LeaderElectionConfig, LeaderElector
from butler_portal.kube.served import ServedKindsMonitor
from butler_portal.watcher.drift import DriftCheck, DriftReport, reconcile
from butler_portal.watcher.registry import (
    collect_drift_checks,
    collect_handlers,
    handler_modules,
    needed_kinds,
)

logger = logging.getLogger(__name__)

LEASE_NAME = "butler-portal-watcher"
POLL_SECONDS = 0.02


@dataclass
class _Term:
    """What runs while this watcher leads."""

    informers: InformerGroup
    reconciler: threading.Thread | None


class Watcher:
    def __init__(
        self,
        *,
        client: Callable[[], KubeClient | None] = kube_client,
        handlers: Mapping[WatchedKind, Handler] | None = None,
        drift_checks: Sequence[DriftCheck] | None = None,
        election: LeaderElectionConfig | None = None,
        reconcile_interval: float | None = 600.0,
        watch_timeout_seconds: int = 60,
        name: str = "watcher",
    ) -> None:
        """``handlers`` and ``drift_checks`` default to what the handler modules provide;
        ``reconcile_interval=None`` turns the drift reconcile off."""
        modules = handler_modules() if handlers is None or drift_checks is None else []
        self.handlers = dict(handlers) if handlers is not None else collect_handlers(modules)
        self.drift_checks = (
            list(drift_checks) if drift_checks is not None else collect_drift_checks(modules)
        )
        self.client = client
        self.reconcile_interval = reconcile_interval
        self.watch_timeout_seconds = watch_timeout_seconds
        self.name = name
        self.last_drift_report: DriftReport | None = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        # Handlers run one at a time: one that derives state from several rows (a network's
        # Vpc, Subnet and pool) then sees what the others committed, not a stale snapshot.
        self._handling = threading.Lock()
        self._term: _Term | None = None
        # Reconcilers of ended terms that may still be finishing a pass (stop waits for them).
        self._winding_down: list[threading.Thread] = []
        self._elector_thread: threading.Thread | None = None
        # On every replica, leader or not: the log says once what the cluster lacks.
        self.served_kinds = ServedKindsMonitor(
            client, needed_kinds(self.handlers, self.drift_checks), name=name
        )
        self._elector = (
            LeaderElector(
                client,
                election,
                on_started_leading=self._start_term,
                on_stopped_leading=self._end_term,
            )
            if election is not None
            else None
        )

    @classmethod
    def from_settings(cls, **overrides: Any) -> Watcher:
        """The watcher as configured: handler modules, leader election, reconcile period."""
        election = (
            LeaderElectionConfig(
                namespace=settings.WATCHER_LEASE_NAMESPACE,
                name=LEASE_NAME,
                lease_duration=settings.WATCHER_LEASE_DURATION_SECONDS,
                renew_deadline=settings.WATCHER_RENEW_DEADLINE_SECONDS,
                retry_period=settings.WATCHER_RETRY_PERIOD_SECONDS,
            )
            if settings.WATCHER_LEADER_ELECTION
            else None
        )
        minutes = settings.WATCHER_RECONCILE_MINUTES
        options: dict[str, Any] = {
            "election": election,
            "reconcile_interval": minutes * 60.0 if minutes > 0 else None,
        }
        return cls(**{**options, **overrides})

    # --- State ---------------------------------------------------------------------------

    @property
    def identity(self) -> str | None:
        """The holder identity this watcher writes into the Lease (None without election)."""
        return self._elector.identity if self._elector else None

    @property
    def is_leader(self) -> bool:
        if self._elector is not None:
            return self._elector.is_leader
        return self._term is not None

    @property
    def informers(self) -> list[Informer]:
        """The current term's informers (empty while not leading)."""
        term = self._term
        return list(term.informers.informers) if term else []

    def wait_until_leading(self, timeout: float) -> bool:
        return _wait_for(lambda: self.is_leader, timeout)

    def wait_until_synced(self, timeout: float) -> bool:
        """True once this watcher leads and every kind has been listed and handled once."""
        deadline = time.monotonic() + timeout
        # The elector says "leader" a moment before its callback has started the term's
        # informers: wait for the term itself, not only for the lease.
        if not _wait_for(lambda: self.is_leader and self._term is not None, timeout):
            return False
        term = self._term
        remaining = max(0.0, deadline - time.monotonic())
        return term is not None and term.informers.wait_until_synced(remaining)

    # --- Lifecycle -----------------------------------------------------------------------

    def start(self) -> Watcher:
        kinds = ", ".join(str(watched) for watched in self.handlers) or "nothing"
        logger.info("%s: following %s", self.name, kinds)
        threading.Thread(
            target=self.served_kinds.run,
            args=(self._stopping,),
            name=f"{self.name}:served-kinds",
            daemon=True,
        ).start()
        if self._elector is None:
            self._start_term()
        else:
            self._elector_thread = threading.Thread(
                target=self._elector.run,
                args=(self._stopping,),
                name=f"{self.name}:lease",
                daemon=True,
            )
            self._elector_thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop following at once, release the lease, and wait for the drift reconcile.

        Informer threads blocked on an idle watch are not waited for: they call no handler
        any more, and end at their next event or watch timeout.
        """
        deadline = time.monotonic() + timeout
        self._stopping.set()
        if self._elector_thread is not None:
            # The elector steps down (ending the term) before it releases the lease, so a
            # standby never runs alongside this watcher's last handler call.
            self._elector_thread.join(timeout)
        self._end_term()  # without election, or when the elector is stuck in an API call
        with self._lock:
            reconcilers, self._winding_down = self._winding_down, []
        for reconciler in reconcilers:
            reconciler.join(max(0.0, deadline - time.monotonic()))
        logger.info("%s: stopped", self.name)

    def __enter__(self) -> Watcher:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # --- One term of leadership -----------------------------------------------------------

    def _start_term(self) -> None:
        with self._lock:
            if self._term is not None or self._stopping.is_set():
                return
            informers = InformerGroup(
                self.client,
                {watched: self._guarded(handler) for watched, handler in self.handlers.items()},
                name=self.name,
                watch_timeout_seconds=self.watch_timeout_seconds,
                # Django opens a connection per thread; a thread's end must close it.
                on_thread_exit=connections.close_all,
            )
            reconciler = None
            if self.reconcile_interval is not None and self.drift_checks:
                reconciler = threading.Thread(
                    target=self._reconcile_every,
                    args=(informers.stop_event,),
                    name=f"{self.name}:reconcile",
                    daemon=True,
                )
            self._term = _Term(informers, reconciler)
            informers.start()
            if reconciler is not None:
                reconciler.start()
        logger.info("%s: leading; informers started", self.name)

    def _end_term(self) -> None:
        with self._lock:
            term, self._term = self._term, None
            if term is not None and term.reconciler is not None:
                alive = [thread for thread in self._winding_down if thread.is_alive()]
                self._winding_down = [*alive, term.reconciler]
        if term is not None:
            # Returns once no handler runs; blocked watch reads are left to end on their own.
            term.informers.stop(timeout=0)
            logger.info("%s: not leading; informers stopped", self.name)

    def _guarded(self, handler: Handler) -> Handler:
        def handle(event_type: str, obj: Manifest) -> None:
            with self._handling:
                if not self.is_leader:
                    # Past the renew deadline without a renew: another replica may lead by
                    # now. This term is ending; the next one (here or there) lists again.
                    return
                _in_transaction(handler, event_type, obj)

        return handle

    def _reconcile_every(self, stop: threading.Event) -> None:
        assert self.reconcile_interval is not None
        try:
            while not stop.is_set():
                self._reconcile_once(stop)
                stop.wait(self.reconcile_interval)
        finally:
            connections.close_all()

    def _reconcile_once(self, stop: threading.Event) -> None:
        client = self.client()
        if client is None:
            return
        close_old_connections()
        try:
            self.last_drift_report = reconcile(
                client,
                self.drift_checks,
                may_repair=lambda: not stop.is_set() and self.is_leader,
            )
        except KubeError as error:
            logger.warning("%s: drift reconcile skipped: %s", self.name, error)
        except Exception:
            logger.exception("%s: drift reconcile failed", self.name)
        finally:
            close_old_connections()


def _in_transaction(handler: Handler, event_type: str, obj: Manifest) -> None:
    # Like a request: drop a connection that is broken or past CONN_MAX_AGE before and after,
    # since this thread lives for days and the database may restart meanwhile.
    close_old_connections()
    try:
        with transaction.atomic():
            handler(event_type, obj)
    finally:
        close_old_connections()


def _wait_for(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            return False
        time.sleep(POLL_SECONDS)
    return True
