"""Leader election on a ``coordination.k8s.io/v1`` Lease, the way client-go's leaderelection does it.

Several replicas of a process compete for one Lease; the one named in ``holderIdentity`` leads
and renews it every ``retry_period``. A candidate takes the Lease over only once it has seen
the record unchanged for the lease's duration, measured on its own monotonic clock (so clock
skew between machines does not matter). Every write carries the resourceVersion that was read,
so two candidates can never both win: the slower one gets 409 Conflict.

The leader counts itself leader only until ``renew_deadline`` after its last successful renew,
which is shorter than the lease duration: even when a renew call hangs, it stops acting before
anyone else may take over. On a graceful stop it clears the holder, and a standby takes over
at its next retry instead of waiting for the lease to expire.

No Django here: the watcher wires this to its informers.
"""

from __future__ import annotations

import enum
import logging
import math
import os
import random
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from butler_portal.kube.adapter import KubeClient, Manifest
from butler_portal.kube.errors import Conflict, KubeError, NotFound

logger = logging.getLogger(__name__)

LEASE_API_VERSION = "coordination.k8s.io/v1"
# client-go waits a random 1.0-1.2 retry periods between candidate attempts, so candidates
# that started together do not keep colliding.
JITTER_FACTOR = 0.2


def default_identity() -> str:
    """Unique per process, and readable in ``kubectl get lease``: host, pid and a random tag."""
    return f"{socket.gethostname()}_{os.getpid()}_{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True)
class LeaderElectionConfig:
    namespace: str
    name: str
    identity: str = field(default_factory=default_identity)
    lease_duration: float = 15.0  # how long a candidate waits on an unchanged lease
    renew_deadline: float = 10.0  # how long the leader keeps leading without a renew
    retry_period: float = 2.0  # the pace of renew and acquire attempts

    def __post_init__(self) -> None:
        # The leader must give up before a candidate may take over, or two would lead.
        if not self.lease_duration > self.renew_deadline > self.retry_period > 0:
            raise ValueError(
                "leader election needs lease_duration > renew_deadline > retry_period > 0, "
                f"got {self.lease_duration}/{self.renew_deadline}/{self.retry_period}"
            )


@dataclass(frozen=True)
class LeaseRecord:
    """The ``spec`` of a Lease, as leader election uses it."""

    holder: str
    lease_duration_seconds: int
    acquire_time: str
    renew_time: str
    transitions: int

    @classmethod
    def from_lease(cls, lease: Manifest) -> LeaseRecord:
        spec = lease.get("spec") or {}
        return cls(
            holder=spec.get("holderIdentity") or "",
            lease_duration_seconds=int(spec.get("leaseDurationSeconds") or 0),
            acquire_time=spec.get("acquireTime") or "",
            renew_time=spec.get("renewTime") or "",
            transitions=int(spec.get("leaseTransitions") or 0),
        )

    def spec(self) -> Manifest:
        spec: Manifest = {
            "leaseDurationSeconds": self.lease_duration_seconds,
            "acquireTime": self.acquire_time,
            "renewTime": self.renew_time,
            "leaseTransitions": self.transitions,
        }
        if self.holder:
            spec["holderIdentity"] = self.holder
        return spec


class Attempt(enum.Enum):
    HELD = "held"  # this candidate holds the lease now
    TAKEN = "taken"  # someone else holds it, or won the race to write it
    FAILED = "failed"  # the API could not be asked; nothing is known


def micro_time() -> str:
    """Now as a Kubernetes MicroTime (RFC 3339 with microseconds, UTC)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaderElector:
    """Competes for one Lease; ``run(stop)`` calls back when leadership starts and ends.

    The callbacks run on the elector's thread and must return quickly (start or stop threads).
    Leadership can be won and lost several times in one ``run``.
    """

    def __init__(
        self,
        client: Callable[[], KubeClient | None],
        config: LeaderElectionConfig,
        *,
        on_started_leading: Callable[[], None],
        on_stopped_leading: Callable[[], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.config = config
        self.on_started_leading = on_started_leading
        self.on_stopped_leading = on_stopped_leading
        self.clock = clock
        self._lock = threading.Lock()
        self._leading = False
        self._renewed_at = 0.0
        # The resourceVersion of the lease last seen, and when (on our clock) it last changed.
        self._observed_version = ""
        self._observed_at = 0.0

    @property
    def identity(self) -> str:
        return self.config.identity

    @property
    def is_leader(self) -> bool:
        """True while leading and within the renew deadline (checked on every call)."""
        with self._lock:
            fresh = self.clock() - self._renewed_at < self.config.renew_deadline
            return self._leading and fresh

    # --- One attempt ---------------------------------------------------------------------

    def try_acquire_or_renew(self) -> Attempt:
        """Read the lease; write ourselves in as holder if it is ours, free, or expired."""
        client = self.client()
        if client is None:
            return Attempt.FAILED
        now = micro_time()
        duration = max(1, math.ceil(self.config.lease_duration))
        try:
            try:
                lease = client.get(
                    LEASE_API_VERSION, "Lease", self.config.name, self.config.namespace
                )
            except NotFound:
                record = LeaseRecord(self.identity, duration, now, now, transitions=0)
                return Attempt.HELD if self._write(client, record, None) else Attempt.TAKEN
            current = LeaseRecord.from_lease(lease)
            version = str(lease["metadata"].get("resourceVersion", ""))
            self._observe(version)
            if current.holder and current.holder != self.identity and self._unexpired(current):
                return Attempt.TAKEN
            if current.holder == self.identity:
                record = replace(current, lease_duration_seconds=duration, renew_time=now)
            else:
                record = LeaseRecord(
                    self.identity, duration, now, now, transitions=current.transitions + 1
                )
            return Attempt.HELD if self._write(client, record, version) else Attempt.TAKEN
        except KubeError as error:
            logger.warning("lease %s: %s", self._where(), error)
            return Attempt.FAILED

    def release(self) -> bool:
        """Clear the holder if it is us, so a standby need not wait for expiry."""
        client = self.client()
        if client is None:
            return False
        try:
            lease = client.get(LEASE_API_VERSION, "Lease", self.config.name, self.config.namespace)
            current = LeaseRecord.from_lease(lease)
            if current.holder != self.identity:
                return False
            now = micro_time()
            # Like client-go: no holder, a 1 s duration, the transition count kept.
            released = LeaseRecord("", 1, now, now, current.transitions)
            version = str(lease["metadata"].get("resourceVersion", ""))
            return self._write(client, released, version)
        except KubeError as error:
            logger.warning("lease %s: release failed: %s", self._where(), error)
            return False

    def _write(self, client: KubeClient, record: LeaseRecord, resource_version: str | None) -> bool:
        """Create (no version) or update the lease; False if another writer got there first."""
        metadata: Manifest = {"name": self.config.name, "namespace": self.config.namespace}
        manifest = {"apiVersion": LEASE_API_VERSION, "kind": "Lease", "metadata": metadata}
        manifest["spec"] = record.spec()
        try:
            if resource_version is None:
                written = client.create(manifest)
            else:
                metadata["resourceVersion"] = resource_version
                written = client.replace(manifest)
        except Conflict:
            # Someone else created or updated it since we read it: they won this round.
            return False
        self._observe(str(written["metadata"].get("resourceVersion", "")))
        return True

    def _observe(self, version: str) -> None:
        # Any write changes the resourceVersion: a holder that renews keeps it moving.
        if version != self._observed_version:
            self._observed_version = version
            self._observed_at = self.clock()

    def _unexpired(self, record: LeaseRecord) -> bool:
        return self.clock() < self._observed_at + record.lease_duration_seconds

    def _where(self) -> str:
        return f"{self.config.namespace}/{self.config.name}"

    # --- The loop ------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Acquire, lead while renewing, repeat; on ``stop`` step down and release the lease."""
        try:
            while (acquired_at := self._acquire(stop)) is not None:
                self._lead_since(acquired_at)
                logger.info("lease %s: %s is the leader", self._where(), self.identity)
                self.on_started_leading()
                self._renew_until_lost(stop)
                self._step_down()
        finally:
            self._step_down()
            if stop.is_set() and self.release():
                logger.info("lease %s: released by %s", self._where(), self.identity)

    def _acquire(self, stop: threading.Event) -> float | None:
        """Try until this candidate holds the lease (when the winning attempt began) or stop."""
        while not stop.is_set():
            started = self.clock()
            if self.try_acquire_or_renew() is Attempt.HELD:
                return started
            jitter = 1 + random.uniform(0, JITTER_FACTOR)  # noqa: S311 - jitter, not security
            stop.wait(self.config.retry_period * jitter)
        return None

    def _renew_until_lost(self, stop: threading.Event) -> None:
        while not stop.wait(self.config.retry_period):
            started = self.clock()
            attempt = self.try_acquire_or_renew()
            if not self.is_leader:
                # The deadline passed before this renew came back (even a successful one).
                # Callers that asked is_leader meanwhile held back work, so this term is
                # over; the next one starts afresh.
                logger.warning(
                    "lease %s: not renewed within %.1fs; %s steps down",
                    self._where(),
                    self.config.renew_deadline,
                    self.identity,
                )
                return
            if attempt is Attempt.TAKEN:
                logger.warning("lease %s: taken over; %s steps down", self._where(), self.identity)
                return
            if attempt is Attempt.HELD:
                self._lead_since(started)

    def _lead_since(self, renewed_at: float) -> None:
        # The renew counts from when the attempt began: the write may have landed at any
        # point during the call, so this errs on the side of stepping down early.
        with self._lock:
            self._leading = True
            self._renewed_at = renewed_at

    def _step_down(self) -> None:
        with self._lock:
            was_leading, self._leading = self._leading, False
        if was_leading:
            self.on_stopped_leading()
