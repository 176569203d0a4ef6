"""Kinds the API server does not serve: named once in the log, followed once they appear."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable

import pytest

from butler_portal.kube.adapter import KubeClient, Manifest
from butler_portal.kube.errors import Conflict, NotServed, Transient
from butler_portal.kube.informer import Backoff, Informer, WatchedKind
from butler_portal.kube.served import (
    Kind,
    ServedKindsMonitor,
    describe_unserved,
    unserved_kinds,
    waiting_reason,
)
from tests.kube.crd_helpers import install_crd, minimal_crd

pytestmark = pytest.mark.k8s


def eventually(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def fresh_group() -> str:
    return f"g{uuid.uuid4().hex[:8]}.butler.test"


def test_unserved_kinds_names_missing_groups_and_missing_kinds_in_served_groups(
    k8s: KubeClient,
) -> None:
    missing_group = Kind(f"{fresh_group()}/v1", "Gadget")
    missing_kind = Kind("kubeovn.io/v1", "Teleporter")
    served = Kind("kubeovn.io/v1", "Subnet")

    unserved = unserved_kinds(k8s, [served, missing_group, missing_kind, Kind("v1", "Namespace")])

    assert sorted(unserved) == sorted([missing_group, missing_kind])
    assert missing_kind.component == "Kube-OVN"
    assert "Kube-OVN (Teleporter)" in describe_unserved(unserved)


def test_an_unserved_kind_is_its_own_error_and_reads_as_waiting(k8s: KubeClient) -> None:
    with pytest.raises(NotServed) as raised:
        k8s.list("kamaji.clastix.io/v1alpha1", "Teleporter")

    assert raised.value.kind == "Teleporter"
    assert waiting_reason(raised.value).startswith("Waiting for Kamaji on the management cluster")
    assert "retried by itself" in waiting_reason(Transient("connection refused"))
    assert "retried by itself" in waiting_reason(Conflict("conflict"))


def test_the_monitor_says_once_what_is_missing_and_again_when_it_is_served(
    k8s: KubeClient, caplog: pytest.LogCaptureFixture
) -> None:
    group = fresh_group()
    gadget = Kind(f"{group}/v1", "Gadget")
    monitor = ServedKindsMonitor(
        lambda: k8s, [gadget, Kind("v1", "Namespace")], name="test", settled_interval=0.1
    )
    monitor.backoff = Backoff(initial=0.05, maximum=0.1)
    stop = threading.Event()
    thread = threading.Thread(target=monitor.run, args=(stop,), daemon=True)
    caplog.set_level(logging.INFO, logger="butler_portal.kube.served")
    thread.start()
    try:
        assert eventually(lambda: monitor.unserved == frozenset({gadget}))
        time.sleep(0.6)  # several more looks at the same missing kind
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1
        assert group in warnings[0].getMessage()
        assert "install" in warnings[0].getMessage()

        install_crd(k8s, minimal_crd(group, "Gadget"))

        assert eventually(lambda: monitor.unserved == frozenset())
        assert any("now served" in r.getMessage() for r in caplog.records)
    finally:
        stop.set()
        thread.join(5)


def test_an_informer_waits_quietly_for_an_unserved_kind_then_follows_it(
    k8s: KubeClient, k8s_namespace: str, caplog: pytest.LogCaptureFixture
) -> None:
    group = fresh_group()
    seen: list[tuple[str, str]] = []

    def handler(event_type: str, obj: Manifest) -> None:
        seen.append((event_type, obj["metadata"]["name"]))

    stop = threading.Event()
    informer = Informer(lambda: k8s, WatchedKind(f"{group}/v1", "Widget"), handler, stop=stop)
    informer.not_served_backoff = Backoff(initial=0.05, maximum=0.2)
    thread = threading.Thread(target=informer.run, daemon=True)
    caplog.set_level(logging.DEBUG, logger="butler_portal.kube.informer")
    thread.start()
    try:
        time.sleep(1.0)  # several attempts while the kind is not served
        attempts = [r for r in caplog.records if "not served" in r.getMessage()]
        assert len(attempts) >= 3
        assert all(r.levelno == logging.DEBUG for r in attempts)

        install_crd(k8s, minimal_crd(group, "Widget"))
        k8s.apply(
            {
                "apiVersion": f"{group}/v1",
                "kind": "Widget",
                "metadata": {"name": "first", "namespace": k8s_namespace},
            }
        )

        assert eventually(lambda: any(name == "first" for _, name in seen))
        assert any("followed again" in r.getMessage() for r in caplog.records)
    finally:
        stop.set()
        thread.join(5)
