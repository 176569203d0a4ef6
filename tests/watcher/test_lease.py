"""Leader election on a real Lease: acquire, hold, expire, release, and lose a write race."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from butler_portal.kube.adapter import KubeClient, Manifest
from butler_portal.kube.lease import (
    LEASE_API_VERSION,
    Attempt,
    LeaderElectionConfig,
    LeaderElector,
)
from tests.watcher.support import eventually

pytestmark = pytest.mark.k8s


def elector(
    client: Callable[[], KubeClient | None], config: LeaderElectionConfig, identity: str
) -> LeaderElector:
    return LeaderElector(
        client,
        LeaderElectionConfig(
            namespace=config.namespace,
            name=config.name,
            identity=identity,
            lease_duration=config.lease_duration,
            renew_deadline=config.renew_deadline,
            retry_period=config.retry_period,
        ),
        on_started_leading=lambda: None,
        on_stopped_leading=lambda: None,
    )


def lease_spec(k8s: KubeClient, config: LeaderElectionConfig) -> dict[str, Any]:
    spec: dict[str, Any] = k8s.get(LEASE_API_VERSION, "Lease", config.name, config.namespace)[
        "spec"
    ]
    return spec


def test_the_first_candidate_creates_the_lease_and_others_find_it_taken(
    k8s: KubeClient, lease_config: Callable[[], LeaderElectionConfig]
) -> None:
    config = lease_config()
    first, second = elector(lambda: k8s, config, "a"), elector(lambda: k8s, config, "b")

    assert first.try_acquire_or_renew() is Attempt.HELD
    assert second.try_acquire_or_renew() is Attempt.TAKEN
    assert first.try_acquire_or_renew() is Attempt.HELD  # renewing

    spec = lease_spec(k8s, config)
    assert spec["holderIdentity"] == "a"
    assert spec["leaseDurationSeconds"] == config.lease_duration
    assert spec["leaseTransitions"] == 0
    assert spec["renewTime"] > spec["acquireTime"]


def test_a_lease_nobody_renews_is_taken_over_after_its_duration(
    k8s: KubeClient, lease_config: Callable[[], LeaderElectionConfig]
) -> None:
    config = lease_config()
    first, second = elector(lambda: k8s, config, "a"), elector(lambda: k8s, config, "b")
    assert first.try_acquire_or_renew() is Attempt.HELD

    first_seen = time.monotonic()
    assert second.try_acquire_or_renew() is Attempt.TAKEN
    while second.try_acquire_or_renew() is not Attempt.HELD:
        time.sleep(0.05)

    # Measured on the candidate's own clock from when it first saw the record unchanged.
    assert time.monotonic() - first_seen >= config.lease_duration
    spec = lease_spec(k8s, config)
    assert (spec["holderIdentity"], spec["leaseTransitions"]) == ("b", 1)
    assert first.try_acquire_or_renew() is Attempt.TAKEN


def test_a_released_lease_is_taken_over_at_once(
    k8s: KubeClient, lease_config: Callable[[], LeaderElectionConfig]
) -> None:
    config = lease_config()
    first, second = elector(lambda: k8s, config, "a"), elector(lambda: k8s, config, "b")
    assert first.try_acquire_or_renew() is Attempt.HELD
    assert second.try_acquire_or_renew() is Attempt.TAKEN

    assert first.release()
    assert "holderIdentity" not in lease_spec(k8s, config)
    assert second.try_acquire_or_renew() is Attempt.HELD
    assert not first.release()  # not its lease any more


class RivalWritesFirst:
    """The portal's client, except that a rival updates the lease between our read and write."""

    def __init__(self, client: KubeClient, rival: Callable[[], object]) -> None:
        self.client = client
        self.rival = rival

    def get(self, *args: Any, **kwargs: Any) -> Manifest:
        return self.client.get(*args, **kwargs)

    def replace(self, manifest: Manifest) -> Manifest:
        self.rival()
        return self.client.replace(manifest)


def test_losing_the_race_to_write_the_lease_is_a_409_and_not_leadership(
    k8s: KubeClient, lease_config: Callable[[], LeaderElectionConfig]
) -> None:
    config = lease_config()
    rival = elector(lambda: k8s, config, "rival")
    assert rival.try_acquire_or_renew() is Attempt.HELD
    assert rival.release()  # free: any candidate may take it now

    racing = RivalWritesFirst(k8s, lambda: rival.try_acquire_or_renew())
    candidate = elector(lambda: racing, config, "slow")  # type: ignore[arg-type, return-value]

    assert candidate.try_acquire_or_renew() is Attempt.TAKEN
    assert lease_spec(k8s, config)["holderIdentity"] == "rival"


def test_run_leads_until_the_api_is_gone_past_the_renew_deadline_then_leads_again(
    k8s: KubeClient, lease_config: Callable[[], LeaderElectionConfig]
) -> None:
    config = lease_config()
    reachable = threading.Event()
    reachable.set()
    transitions: list[str] = []
    leader = LeaderElector(
        lambda: k8s if reachable.is_set() else None,
        config,
        on_started_leading=lambda: transitions.append("started"),
        on_stopped_leading=lambda: transitions.append("stopped"),
    )
    stop = threading.Event()
    runner = threading.Thread(target=leader.run, args=(stop,))
    runner.start()
    try:
        assert eventually(lambda: leader.is_leader, timeout=5)

        reachable.clear()  # renewals fail from now on
        lost_at = time.monotonic()
        assert eventually(lambda: transitions == ["started", "stopped"], timeout=5)
        assert not leader.is_leader
        # It stepped down before another candidate could have taken the lease over.
        assert time.monotonic() - lost_at < config.lease_duration

        reachable.set()  # the lease still names it: it leads again without waiting
        assert eventually(lambda: transitions[-1] == "started", timeout=5)
    finally:
        stop.set()
        runner.join(5)
    assert transitions == ["started", "stopped", "started", "stopped"]
    assert "holderIdentity" not in lease_spec(k8s, config)  # released on stop


def test_inconsistent_durations_are_refused() -> None:
    with pytest.raises(ValueError, match="lease_duration > renew_deadline > retry_period"):
        LeaderElectionConfig(namespace="n", name="l", lease_duration=10, renew_deadline=10)
