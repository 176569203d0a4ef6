"""The common base every simulated controller stands on.

- ``Api``: reads, and the three ways the simulator writes (all server-side apply, so the
  portal's fields are never touched): a status writer, ``own()`` for objects the simulator
  creates, and ``patch()`` for the few fields a real controller sets on someone else's object.
- ``StageClock``: the delay scheduler. A reconciler asks "has this object spent N seconds in
  this stage?" and gets the seconds still to wait, which the work queue turns into a requeue.
- ``Controller``: one simulated controller for one kind: finalizer handling, failure lookup,
  step delays.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, ClassVar, Protocol

from butler_portal.kube.adapter import KubeClient
from butler_portal.kube.errors import Conflict, NotFound
from butler_portal.simulator.config import Failure, SimulatorConfig
from butler_portal.simulator.objects import (
    Manifest,
    Ref,
    annotations_of,
    contains,
    dig,
    fingerprint,
    is_deleting,
    namespace_of,
    now,
    uid_of,
)

if TYPE_CHECKING:
    from butler_portal.simulator.runtime import Runtime

# Status, and every object the simulator creates, belongs to this field manager.
FIELD_MANAGER = "butler-simulator"
# Kinds whose CRD has no status subresource: their status is written on the main resource
# (STATUS.md, "Testing against a bare kube-apiserver").
STATUS_ON_MAIN_RESOURCE = frozenset({("kubevirt.io/v1", "VirtualMachineInstance")})


class Reader(Protocol):
    """Reads, from the API server (``Api``) or from the informers' cache (``Store``)."""

    def get(self, ref: Ref) -> Manifest | None: ...

    def find(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> Manifest | None: ...

    def list(
        self,
        api_version: str,
        kind: str,
        namespace: str | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> list[Manifest]: ...


class Api:
    """The simulator's view of the API server: ``KubeClient`` plus its write conventions."""

    def __init__(self, client: KubeClient) -> None:
        self.client = client

    def get(self, ref: Ref) -> Manifest | None:
        try:
            return self.client.get(ref.api_version, ref.kind, ref.name, ref.namespace)
        except NotFound:
            return None

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
        selector = ",".join(f"{key}={value}" for key, value in (labels or {}).items()) or None
        return self.client.list(api_version, kind, namespace, label_selector=selector).items

    def write_status(self, obj: Manifest, status: Manifest) -> None:
        """Make the object's status exactly ``status`` (skipped when it already is)."""
        if obj.get("status") == status:
            return
        api_version, kind = obj["apiVersion"], obj["kind"]
        if (api_version, kind) in STATUS_ON_MAIN_RESOURCE:
            # Its own field manager: the simulator's creation apply owns the spec, and an
            # apply without the spec under that manager would remove it.
            self.patch(obj, "status", {"status": status})
        else:
            self.client.patch_status(
                api_version,
                kind,
                obj["metadata"]["name"],
                status,
                obj["metadata"].get("namespace"),
                server_side_apply=True,
                field_manager=FIELD_MANAGER,
            )
        obj["status"] = status

    def own(self, manifest: Manifest, current: Manifest | None = None) -> Manifest:
        """Create, or converge, an object the simulator makes (a real controller's child).

        Given the ``current`` object (from the cache), an apply that would change nothing is
        skipped: the API server's write path is the simulator's bottleneck."""
        if current is not None and contains(current, manifest):
            return current
        metadata = manifest["metadata"]
        for empty in [key for key in ("labels", "annotations") if not metadata.get(key, True)]:
            # The server stores no empty map, so applying one would rewrite the object each
            # time (a new resourceVersion, an event, a reconcile: a loop).
            del metadata[empty]
        return self.client.apply(manifest, field_manager=FIELD_MANAGER)

    def patch(self, obj: Manifest, aspect: str, changes: Manifest) -> Manifest:
        """Apply a few fields to an existing object under the field manager of ``aspect``.

        One manager per aspect (finalizer, owner references, endpoint…), because an apply
        removes whatever its manager applied before and left out this time. The uid makes
        it a precondition: an object deleted meanwhile gives ``Conflict``, never a new one.
        """
        metadata = {**changes.get("metadata", {}), "name": obj["metadata"]["name"]}
        metadata["uid"] = uid_of(obj)
        if namespace := namespace_of(obj):
            metadata["namespace"] = namespace
        body = {**changes, "apiVersion": obj["apiVersion"], "kind": obj["kind"]}
        body["metadata"] = metadata
        return self.client.apply(body, field_manager=f"{FIELD_MANAGER}-{aspect}")

    def delete(self, ref: Ref) -> None:
        self.client.delete(ref.api_version, ref.kind, ref.name, ref.namespace)

    def event(
        self,
        obj: Manifest,
        reason: str,
        message: str,
        *,
        component: str,
        warning: bool = False,
    ) -> None:
        """Record a core/v1 Event about ``obj`` once (the name is derived from its content)."""
        name = f"{obj['metadata']['name']}.{fingerprint([uid_of(obj), reason, message], 12)}"
        namespace = namespace_of(obj) or "default"
        try:
            self.client.get("v1", "Event", name, namespace)
            return
        except NotFound:
            pass
        stamp = now()
        self.own(
            {
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": {"name": name, "namespace": namespace},
                "involvedObject": {
                    "apiVersion": obj["apiVersion"],
                    "kind": obj["kind"],
                    "name": obj["metadata"]["name"],
                    "namespace": namespace_of(obj) or None,
                    "uid": uid_of(obj),
                },
                "reason": reason,
                "message": message,
                "type": "Warning" if warning else "Normal",
                "source": {"component": component},
                "firstTimestamp": stamp,
                "lastTimestamp": stamp,
                "count": 1,
            }
        )


class StageClock:
    """How long each object has been in its current stage (the delay scheduler).

    ``remaining(obj, stage, seconds)`` starts the clock the first time an object is seen in
    ``stage`` and answers the seconds left; a different stage restarts it. Memory only: a
    restarted simulator simply waits the full step again.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stages: dict[tuple[str, str], tuple[str, float]] = {}

    def remaining(self, obj: Manifest, stage: str, seconds: float, *, track: str = "") -> float:
        key = (uid_of(obj), track)
        moment = time.monotonic()
        with self._lock:
            current = self._stages.get(key)
            if current is None or current[0] != stage:
                self._stages[key] = (stage, moment)
                return max(0.0, seconds)
            return max(0.0, current[1] + seconds - moment)

    def forget(self, uid: str) -> None:
        with self._lock:
            for key in [key for key in self._stages if key[0] == uid]:
                del self._stages[key]


class Controller:
    """One simulated upstream controller, reconciling one kind.

    Subclasses set ``api_version``/``kind`` and implement ``reconcile``, which returns the
    seconds after which it wants another look (None: only when something changes).
    """

    api_version: ClassVar[str]
    kind: ClassVar[str]
    # The finalizer the real controller puts on its objects, so deleting shows progress.
    finalizer: ClassVar[str | None] = None
    # The Delays field used by the default finalization.
    finalize_step: ClassVar[str] = "cluster"
    # Kinds it creates: watched, and a change to one wakes its owner (ownerReferences).
    owns: ClassVar[tuple[tuple[str, str], ...]] = ()
    # Other kinds whose changes can matter to this kind's objects (see ``wake``).
    wakes_on: ClassVar[tuple[tuple[str, str], ...]] = ()

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.api = runtime.api  # live reads, and every write
        self.cache: Reader = runtime.store  # related objects, as last seen by the informers
        self.config: SimulatorConfig = runtime.config

    # --- The reconcile contract ----------------------------------------------------------

    def handle(self, obj: Manifest) -> float | None:
        """Finalizer bookkeeping around ``reconcile``/``finalize``."""
        finalizers = obj["metadata"].get("finalizers") or []
        if is_deleting(obj):
            if self.finalizer and self.finalizer in finalizers:
                return self.finalize(obj)
            return None
        if self.finalizer and self.finalizer not in finalizers:
            # First the finalizer, as the real controllers do: the update wakes us again.
            self.api.patch(obj, "finalizer", {"metadata": {"finalizers": [self.finalizer]}})
            return None
        return self.reconcile(obj)

    def reconcile(self, obj: Manifest) -> float | None:
        raise NotImplementedError

    def finalize(self, obj: Manifest) -> float | None:
        """Delete what the object owns, wait until it is gone and one step, then let go."""
        if self.runtime.collector.delete_dependents(obj):
            return self.step(obj, "cluster")  # look again even if an event is missed
        if wait := self.wait(obj, "finalizing", self.finalize_step):
            return wait
        self.release(obj)
        return None

    def wake(self, obj: Manifest) -> Iterable[Ref]:
        """Objects of this controller's kind to reconcile after ``obj`` (a ``wakes_on`` kind)
        changed. Owners named in ownerReferences are woken without asking."""
        return ()

    # --- Helpers for reconcilers ---------------------------------------------------------

    def release(self, obj: Manifest) -> None:
        """Remove this controller's finalizer (the only one its field manager holds)."""
        with contextlib.suppress(Conflict, NotFound):  # already gone
            self.api.patch(obj, "finalizer", {"metadata": {"finalizers": []}})

    def step(self, obj: Manifest, step: str) -> float:
        """The length of one ``step`` (a ``Delays`` field) for this object."""
        return self.config.step_seconds(step, annotations_of(obj))

    def wait(
        self, obj: Manifest, stage: str, step: str, *, fraction: float = 1.0, track: str = ""
    ) -> float:
        """Seconds ``obj`` must still spend in ``stage`` (``fraction`` of one ``step``) before
        it advances; 0 means go on. ``track`` keeps independent clocks on one object."""
        seconds = self.step(obj, step) * fraction
        return self.runtime.clock.remaining(obj, stage, seconds, track=track)

    @staticmethod
    def failure(obj: Manifest | None) -> Failure | None:
        return Failure.of(obj) if obj else None

    def ref(self, name: str, namespace: str | None) -> Ref:
        return Ref(self.api_version, self.kind, name, namespace)

    @staticmethod
    def status_of(obj: Manifest | None) -> Manifest:
        return dict(dig(obj, "status", default={}))
