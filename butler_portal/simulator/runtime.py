"""The machinery the simulated controllers share, and the ``Simulator`` that runs them.

Informer threads (one per watched kind) only record what they see and put keys on a delay
queue; one worker thread reconciles the keys in due order. Every write therefore happens on
that one thread, which keeps address allocation (Kube-OVN, MetalLB) free of races without
locks. (More workers were measured not to help: the local API server is the bottleneck.)
"""

from __future__ import annotations

import contextlib
import heapq
import ipaddress
import itertools
import logging
import math
import os
import threading
import time
import urllib.parse
from collections import OrderedDict, defaultdict
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Generic, TypeVar

import yaml

from butler_portal.kube.adapter import KubeClient
from butler_portal.kube.errors import Conflict, Invalid, KubeError, NotFound, Transient
from butler_portal.kube.informer import SYNC, InformerGroup, WatchedKind
from butler_portal.simulator.base import Api, Controller, StageClock
from butler_portal.simulator.config import SimulatorConfig
from butler_portal.simulator.controllers import ALL_CONTROLLERS
from butler_portal.simulator.objects import Manifest, Ref, has_labels, is_deleting, uid_of
from butler_portal.simulator.subresources import SubresourceServer

logger = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)

DELETED = "DELETED"
# How many deleted owners the garbage collector remembers, for dependents that show up late.
REMEMBERED_DELETIONS = 10_000
MAX_RETRY_SECONDS = 30.0
CACHE_SYNC_TIMEOUT_SECONDS = 10.0


class DelayQueue(Generic[K]):
    """Keys due at a moment; a key waits once, at the earliest moment it was asked for.

    Background keys (objects found by a list, not by a change) are served only when no
    foreground key is due, like controller-runtime's priority queue: after a (re)start, what
    changes now goes before re-checking everything that already existed.
    """

    def __init__(self) -> None:
        self._ready = threading.Condition()
        self._heaps: dict[bool, list[tuple[float, int, K]]] = {False: [], True: []}
        self._due: dict[K, tuple[float, bool]] = {}  # key → (due, in background)
        self._order = itertools.count()
        self._closed = False

    def add(self, key: K, delay: float = 0.0, *, background: bool = False) -> None:
        due = time.monotonic() + max(0.0, delay)
        with self._ready:
            if self._closed:
                return
            if (queued := self._due.get(key)) is not None:
                if queued[0] <= due and queued[1] <= background:
                    return  # already as early, and as urgent
                due, background = min(due, queued[0]), background and queued[1]
            self._due[key] = (due, background)
            heapq.heappush(self._heaps[background], (due, next(self._order), key))
            self._ready.notify()

    def get(self) -> K | None:
        """The next due key (foreground first), waiting for it; None once closed."""
        with self._ready:
            while not self._closed:
                now, wait = time.monotonic(), None
                for background, heap in self._heaps.items():
                    while heap and self._due.get(heap[0][2]) != (heap[0][0], background):
                        heapq.heappop(heap)  # superseded by an earlier or more urgent request
                    if heap and heap[0][0] <= now:
                        key = heapq.heappop(heap)[2]
                        del self._due[key]
                        return key
                    if heap:
                        wait = min(wait or math.inf, heap[0][0] - now)
                self._ready.wait(wait)
            return None

    def close(self) -> None:
        with self._ready:
            self._closed = True
            self._ready.notify_all()


class Store:
    """The latest version of every watched object, as the informers last saw it.

    It decides whom to wake, and reconcilers read the objects *related* to the one they
    reconcile from it (as controller-runtime's cache does): an event updates the store before
    it wakes anyone, so a reconcile never sees anything older than what woke it. The object
    being reconciled, and every read that decides what to create, come from the API server.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._objects: dict[tuple[str, str], dict[tuple[str | None, str], Manifest]] = defaultdict(
            dict
        )

    def observe(self, event_type: str, obj: Manifest) -> None:
        ref = Ref.of(obj)
        with self._lock:
            kind = self._objects[(ref.api_version, ref.kind)]
            if event_type == DELETED:
                kind.pop((ref.namespace, ref.name), None)
            else:
                kind[(ref.namespace, ref.name)] = obj

    def get(self, ref: Ref) -> Manifest | None:
        with self._lock:
            return self._objects[(ref.api_version, ref.kind)].get((ref.namespace, ref.name))

    def find(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> Manifest | None:
        return self.get(Ref(api_version, kind, name, namespace))

    def list(
        self,
        api_version: str,
        kind: str,
        namespace: str | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> list[Manifest]:
        with self._lock:
            objects = list(self._objects[(api_version, kind)].values())
        return [
            obj
            for obj in objects
            if (namespace is None or obj["metadata"].get("namespace") == namespace)
            and has_labels(obj, labels or {})
        ]


@dataclass(frozen=True)
class Collect:
    """Work item: delete the dependents of an owner that was deleted."""

    owner_uid: str


# What the work queue holds: an object to reconcile, or an owner whose dependents to collect.
WorkItem = Ref | Collect


class GarbageCollector:
    """What kube-controller-manager's garbage collector does; a bare API server has none.

    Among the watched kinds it indexes ownerReferences; when an owner is deleted, every
    dependent none of whose owners remain is deleted too (background propagation).
    """

    def __init__(self, api: Api, store: Store, queue: DelayQueue[WorkItem]) -> None:
        self.api = api
        self.store = store
        self.queue = queue
        self._lock = threading.Lock()
        self._dependents: dict[str, set[Ref]] = defaultdict(set)
        self._owners: dict[Ref, set[str]] = {}
        self._deleted: OrderedDict[str, None] = OrderedDict()

    def observe(self, event_type: str, obj: Manifest) -> None:
        ref, uid = Ref.of(obj), uid_of(obj)
        with self._lock:
            for owner_uid in self._owners.pop(ref, set()):
                self._dependents[owner_uid].discard(ref)
            if event_type == DELETED:
                self._deleted[uid] = None
                while len(self._deleted) > REMEMBERED_DELETIONS:
                    self._deleted.popitem(last=False)
                if self._dependents.get(uid):
                    self.queue.add(Collect(uid))
                return
            owners = {owner["uid"] for owner in obj["metadata"].get("ownerReferences") or ()}
            if owners:
                self._owners[ref] = owners
                for owner_uid in owners:
                    self._dependents[owner_uid].add(ref)
                if owners <= self._deleted.keys():  # it arrived after its owner was gone
                    self.queue.add(Collect(next(iter(owners))))

    def dependents(self, owner_uid: str) -> list[Ref]:
        with self._lock:
            return sorted(self._dependents.get(owner_uid, ()), key=str)

    def collect(self, owner_uid: str) -> None:
        for ref in self.dependents(owner_uid):
            with self._lock:
                orphaned = self._owners.get(ref, set()) <= self._deleted.keys()
            if orphaned:
                self.api.delete(ref)

    def delete_dependents(self, owner: Manifest) -> bool:
        """Delete what ``owner`` owns (a finalizer's cleanup); True while any of it remains."""
        dependents = self.dependents(uid_of(owner))
        for ref in dependents:
            obj = self.store.get(ref)
            if obj is not None and not is_deleting(obj):
                self.api.delete(ref)
        return bool(dependents)


# Kinds watched only so that the garbage collector sees their ownerReferences (the Cluster
# owns the templates a MachineDeployment uses).
COLLECTED_KINDS = (
    ("infrastructure.cluster.x-k8s.io/v1alpha1", "KubevirtMachineTemplate"),
    ("bootstrap.cluster.x-k8s.io/v1beta2", "KubeadmConfigTemplate"),
)


class Runtime:
    """What every controller shares: the API, the config, the clock, the queue, the caches."""

    def __init__(self, client: KubeClient, config: SimulatorConfig) -> None:
        self.api = Api(client)
        self.config = config
        self.clock = StageClock()
        self.queue: DelayQueue[WorkItem] = DelayQueue()
        self.store = Store()
        self.collector = GarbageCollector(self.api, self.store, self.queue)


class NotLocalCluster(RuntimeError):
    """The simulator would write fake status into a cluster that is not a local one."""


def is_loopback_url(url: str) -> bool:
    host = urllib.parse.urlparse(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def ensure_local(server_url: str, *, force: bool) -> None:
    if not force and not is_loopback_url(server_url):
        raise NotLocalCluster(
            f"{server_url or 'this API server'} is not a local control plane (loopback); "
            "the simulator would write fake status into it. Use force to insist."
        )


def kubeconfig_server(path: str | Path) -> str:
    """The API server URL of a kubeconfig's current context."""
    config: dict[str, Any] = yaml.safe_load(Path(path).read_text()) or {}
    contexts = {entry["name"]: entry["context"] for entry in config.get("contexts") or ()}
    clusters = {entry["name"]: entry["cluster"] for entry in config.get("clusters") or ()}
    context = contexts.get(config.get("current-context", ""), {})
    return str(clusters.get(context.get("cluster", ""), {}).get("server", ""))


class Simulator:
    """Plays the infrastructure controllers against a local API server.

        with Simulator(client, server_url=url, config=SimulatorConfig(speed=4)):
            ...  # objects applied now progress as STATUS.md describes

    It refuses any API server that is not on loopback unless ``force=True``: it writes fake
    status, creates fake Secrets and deletes objects, which would wreck a real cluster.

    On a loopback API server it also serves virt-api's aggregated ``subresources.kubevirt.io``
    (the VMs' serial consoles, see ``subresources``) for as long as it runs.
    """

    def __init__(
        self,
        client: KubeClient,
        *,
        server_url: str,
        config: SimulatorConfig | None = None,
        force: bool = False,
        controllers: Iterable[type[Controller]] | None = None,
        serve_subresources: bool | None = None,
    ) -> None:
        ensure_local(server_url, force=force)
        self.config = config or SimulatorConfig()
        self.runtime = Runtime(client, self.config)
        # virt-api's aggregated API (the VM console) listens on this machine's loopback:
        # only an API server on the same loopback can reach it, and a forced remote cluster
        # may run the real virt-api, whose APIService this one would replace.
        if serve_subresources is None:
            serve_subresources = is_loopback_url(server_url)
        self.subresources = SubresourceServer(client, self.config) if serve_subresources else None
        self.controllers = {
            (cls.api_version, cls.kind): cls(self.runtime)
            for cls in (ALL_CONTROLLERS if controllers is None else controllers)
        }
        self._wakers: dict[tuple[str, str], list[Controller]] = defaultdict(list)
        for controller in self.controllers.values():
            for kind in controller.wakes_on:
                self._wakers[kind].append(controller)
        owned = {kind for controller in self.controllers.values() for kind in controller.owns}
        watched = {*self.controllers, *self._wakers, *owned, *COLLECTED_KINDS}
        self._informers = InformerGroup(
            lambda: client,
            {WatchedKind(api_version, kind): self._observe for api_version, kind in watched},
            name="simulator",
            watch_timeout_seconds=self.config.watch_timeout_seconds,
        )
        self._worker: threading.Thread | None = None
        self._stopping = threading.Event()
        self._failures: dict[WorkItem, int] = defaultdict(int)
        # Unexpected errors (a rejected write is a simulator bug): tests assert it stays empty.
        self.errors: list[str] = []

    @classmethod
    def from_kubeconfig(
        cls, path: str | Path, *, config: SimulatorConfig | None = None, force: bool = False
    ) -> Simulator:
        server_url = kubeconfig_server(path)
        ensure_local(server_url, force=force)  # before any client is made
        return cls(
            KubeClient.from_kubeconfig(path), server_url=server_url, config=config, force=force
        )

    @classmethod
    def from_settings(
        cls, *, config: SimulatorConfig | None = None, force: bool = False
    ) -> Simulator:
        """Against the cluster the portal is configured for (``KUBE_MODE``/``KUBECONFIG``)."""
        from django.conf import settings

        from butler_portal.kube import kube_client

        client = kube_client()
        if client is None:
            raise NotLocalCluster("KUBE_MODE=off: there is no cluster to simulate")
        if settings.KUBE_MODE == "in-cluster":
            host = os.environ.get("KUBERNETES_SERVICE_HOST", "")
            server_url = f"https://{host}:{os.environ.get('KUBERNETES_SERVICE_PORT', '443')}"
        else:
            server_url = kubeconfig_server(settings.KUBECONFIG)
        return cls(client, server_url=server_url, config=config, force=force)

    # --- Lifecycle -----------------------------------------------------------------------

    def start(self) -> Simulator:
        if self.subresources is not None:
            self.subresources.start()
        self._discover()
        self._informers.start()
        self._wait_for_caches()
        self._worker = threading.Thread(target=self._work, name="simulator:worker", daemon=True)
        self._worker.start()
        return self

    def _discover(self) -> None:
        """Learn every kind's REST path once, before the informer threads all ask at once."""
        for informer in self._informers.informers:
            with contextlib.suppress(KubeError):  # a CRD not installed: its informer retries
                self.runtime.api.client.resource(
                    informer.watched.api_version, informer.watched.kind
                )

    def _wait_for_caches(self) -> None:
        """Reconcile only once every kind has been listed, as controllers do (a half-filled
        cache would make them write wrong status, e.g. a control plane that "does not exist").
        A kind whose CRD is missing never lists: after the timeout, go on without it."""
        deadline = time.monotonic() + CACHE_SYNC_TIMEOUT_SECONDS
        while unsynced := [str(i.watched) for i in self._informers.informers if not i.relists]:
            if time.monotonic() > deadline:
                logger.warning(
                    "simulator: starting without %s (not listed yet)", ", ".join(unsynced)
                )
                return
            time.sleep(0.01)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop writing at once. Informer threads end by themselves at their next watch
        timeout (``watch_timeout_seconds``); waiting for them would only slow teardown."""
        self._stopping.set()
        self._informers.stop(timeout=0)
        self.runtime.queue.close()
        if self._worker is not None:
            self._worker.join(timeout)
            self._worker = None
        if self.subresources is not None:
            self.subresources.stop()

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # --- Events in, work out -------------------------------------------------------------

    def _observe(self, event_type: str, obj: Manifest) -> None:
        """Informer callback (informer threads): remember, and queue whom it concerns."""
        if self._stopping.is_set():
            return
        runtime = self.runtime
        runtime.store.observe(event_type, obj)
        runtime.collector.observe(event_type, obj)
        kind = (obj["apiVersion"], obj["kind"])
        background = event_type == SYNC  # found by a list: it did not just change
        if event_type == DELETED:
            runtime.clock.forget(uid_of(obj))
        elif kind in self.controllers:
            runtime.queue.add(Ref.of(obj), background=background)
        for owner in Ref.owners_of(obj):
            if (owner.api_version, owner.kind) in self.controllers:
                runtime.queue.add(owner, background=background)
        for controller in self._wakers.get(kind, ()):
            for ref in controller.wake(obj):
                runtime.queue.add(ref, background=background)

    def _work(self) -> None:
        queue = self.runtime.queue
        while (key := queue.get()) is not None:
            if self._stopping.is_set():
                return
            retry = self._attempt(key)
            logger.debug("simulator: %s done, again in %s", key, retry)
            if retry is not None:
                queue.add(key, retry)

    def _process(self, key: WorkItem) -> float | None:
        if isinstance(key, Collect):
            self.runtime.collector.collect(key.owner_uid)
            return None
        controller = self.controllers[(key.api_version, key.kind)]
        obj = self.runtime.api.get(key)
        return None if obj is None else controller.handle(obj)

    def _attempt(self, key: WorkItem) -> float | None:
        """Process one work item; the delay before looking at it again, if any."""
        try:
            requeue = self._process(key)
        except Conflict:
            return 0.05  # the object changed or went away under us: look again
        except NotFound:
            return None  # gone (or its kind is not installed): nothing to do
        except Exception as error:
            self._failures[key] += 1
            if isinstance(error, Transient):
                logger.info("simulator: %s: %s; retrying", key, error)
            else:
                summary = error.summary if isinstance(error, Invalid) else repr(error)
                self.errors.append(f"{key}: {summary}")
                logger.exception("simulator: %s failed", key)
            return float(min(MAX_RETRY_SECONDS, 0.1 * 2 ** self._failures[key]))
        self._failures.pop(key, None)
        return None if requeue is None else max(requeue, 0.01)
