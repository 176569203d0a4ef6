"""The informer's promises: a failing handler neither stops the stream nor loses the object,
a stop means no more handler calls, and a relist after 410 reports what was deleted."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pytest

from butler_portal.kube.adapter import KubeClient, Manifest
from butler_portal.kube.informer import DELETED, SYNC, InformerGroup, WatchedKind
from butler_portal.kube.localcp import LocalControlPlane
from tests.watcher.support import eventually

pytestmark = pytest.mark.k8s


def config_map(name: str, namespace: str, value: str = "1") -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace},
        "data": {"value": value},
    }


class Recorder:
    """A handler that records (event type, name, value) and fails on names in ``failing``."""

    def __init__(self, failing: set[str] | None = None) -> None:
        self.failing = failing or set()
        self.calls: list[tuple[str, str, str]] = []
        self._lock = threading.Lock()

    def __call__(self, event_type: str, obj: Manifest) -> None:
        name = obj["metadata"]["name"]
        with self._lock:
            self.calls.append((event_type, name, (obj.get("data") or {}).get("value", "")))
        if name in self.failing:
            raise RuntimeError(f"handler bug on {name}")

    def names(self) -> list[str]:
        with self._lock:
            return [name for _, name, _ in self.calls]


@pytest.fixture
def follow() -> Iterator[Callable[..., InformerGroup]]:
    groups: list[InformerGroup] = []

    def start(
        client: Callable[[], KubeClient | None],
        namespace: str,
        handler: Recorder,
        watch_timeout_seconds: int = 60,
    ) -> InformerGroup:
        kind = WatchedKind("v1", "ConfigMap", namespace=namespace)
        group = InformerGroup(
            client, {kind: handler}, name="test", watch_timeout_seconds=watch_timeout_seconds
        )
        groups.append(group.start())
        return group

    yield start
    for group in groups:
        group.stop(timeout=0)


def test_a_failing_handler_does_not_stop_the_stream_and_gets_the_object_again(
    k8s: KubeClient, k8s_namespace: str, follow: Callable[..., InformerGroup]
) -> None:
    k8s.apply(config_map("bad-listed", k8s_namespace))
    k8s.apply(config_map("good-listed", k8s_namespace))
    handler = Recorder(failing={"bad-listed", "bad-watched"})
    # A one-second watch brings the informer back to its retries quickly.
    group = follow(lambda: k8s, k8s_namespace, handler, watch_timeout_seconds=1)
    assert group.wait_until_synced(10)

    k8s.apply(config_map("bad-watched", k8s_namespace))
    k8s.apply(config_map("good-watched", k8s_namespace))

    assert eventually(lambda: "good-watched" in handler.names(), timeout=10)
    assert {"bad-listed", "good-listed", "bad-watched"} <= set(handler.names())
    # Both failures are handed over again at each watch restart until the bug is fixed.
    handler.failing.clear()
    before = len(handler.calls)
    assert eventually(
        lambda: {"bad-listed", "bad-watched"} <= set(handler.names()[before:]), timeout=10
    )
    after_fix = len(handler.calls)
    time.sleep(2.5)  # two more watch restarts: nothing left to retry
    assert handler.names()[after_fix:] == []


def test_after_stop_returns_no_handler_runs_even_when_events_arrive(
    k8s: KubeClient, k8s_namespace: str, follow: Callable[..., InformerGroup]
) -> None:
    handler = Recorder()
    group = follow(lambda: k8s, k8s_namespace, handler)
    assert group.wait_until_synced(10)
    k8s.apply(config_map("before", k8s_namespace))
    assert eventually(lambda: handler.names() == ["before"], timeout=10)

    group.stop(timeout=0)
    k8s.apply(config_map("after", k8s_namespace))
    time.sleep(1)  # the blocked stream reads the event, and drops it

    assert handler.names() == ["before"]


def test_a_relist_after_410_reports_changes_and_deletions_missed_meanwhile(
    uncached_k8s: LocalControlPlane, k8s_namespace: str, follow: Callable[..., InformerGroup]
) -> None:
    with uncached_k8s.client() as client:
        namespace = k8s_namespace  # the name only: it is created on this API server too
        client.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
        client.apply(config_map("kept", namespace))
        client.apply(config_map("removed", namespace))
        reachable = threading.Event()
        reachable.set()
        handler = Recorder()
        group = follow(
            lambda: client if reachable.is_set() else None,
            namespace,
            handler,
            watch_timeout_seconds=1,
        )
        assert group.wait_until_synced(10)
        (informer,) = group.informers

        reachable.clear()
        time.sleep(1.5)  # the watch ends; the informer now finds no server
        client.apply(config_map("kept", namespace, value="2"))
        client.delete("v1", "ConfigMap", "removed", namespace)
        client.apply(config_map("unrelated", "default", value=str(time.time_ns())))
        client.apply(config_map("unrelated", "default", value=str(time.time_ns())))
        uncached_k8s.compact_etcd()
        calls_before = len(handler.calls)
        reachable.set()

        assert eventually(lambda: informer.relists == 2, timeout=15)
        assert eventually(lambda: len(handler.calls) >= calls_before + 2, timeout=5)
        assert sorted(handler.calls[calls_before:]) == [
            (DELETED, "removed", "1"),  # with the last version the informer saw
            (SYNC, "kept", "2"),
        ]
