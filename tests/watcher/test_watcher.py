"""The watcher end to end: a status written to the real API server reaches the tenant's row
and its channel group, through API server restarts, 410 Gone and leader changes."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from butler_portal.kube.adapter import KubeClient
from butler_portal.kube.informer import WatchedKind
from butler_portal.kube.lease import LEASE_API_VERSION, LeaderElectionConfig
from butler_portal.kube.localcp import LocalControlPlane
from butler_portal.watcher import LEASE_NAME, Watcher
from tenants.models import LoadBalancerRange, TenantNetwork, User
from tests.watcher.listener import TenantEventListener
from tests.watcher.support import (
    ClientGate,
    eventually,
    network_event,
    onboard,
    report_network_ready,
)

pytestmark = [pytest.mark.k8s, pytest.mark.django_db(transaction=True)]

StartWatcher = Callable[..., Watcher]


def test_kube_ovn_and_metallb_status_reaches_the_network_row_and_the_tenant_channel(
    portal_k8s: KubeClient,
    address_space: LoadBalancerRange,
    operator: User,
    listener: TenantEventListener,
    start_watcher: StartWatcher,
) -> None:
    network = TenantNetwork.objects.get(tenant=onboard(operator, "w-status"))
    listener.subscribe(network.tenant_id)
    watcher = start_watcher()
    assert watcher.wait_until_synced(15)
    # The first list found the Vpc, the Subnet and the pool, none of them ready yet: nothing
    # changed, so nothing is announced (a relist must not flood the browsers).
    assert listener.drain() == []

    report_network_ready(portal_k8s, network, free_ips=240)

    listener.wait_for(network_event(network, "ready"), timeout=15)
    network.refresh_from_db()
    assert network.state == TenantNetwork.State.READY
    assert (network.vpc_ready, network.subnet_ready, network.address_pool_ready) == (
        True,
        True,
        True,
    )
    assert (network.subnet_available_ips, network.subnet_used_ips) == (240, 13)
    assert (network.lb_assigned_ips, network.lb_available_ips) == (0, 4)
    # One stream per kind, however many objects and handler modules it serves.
    followed = [str(informer.watched) for informer in watcher.informers]
    assert len(followed) == len(set(followed))
    assert {"Vpc.kubeovn.io/v1", "Subnet.kubeovn.io/v1", "IPAddressPool.metallb.io/v1beta1"} <= set(
        followed
    )


def test_a_status_written_right_after_an_api_server_restart_is_not_lost(
    local_k8s: LocalControlPlane,
    portal_k8s: KubeClient,
    address_space: LoadBalancerRange,
    operator: User,
    listener: TenantEventListener,
    start_watcher: StartWatcher,
) -> None:
    network = TenantNetwork.objects.get(tenant=onboard(operator, "w-restart"))
    listener.subscribe(network.tenant_id)
    watcher = start_watcher()
    assert watcher.wait_until_synced(15)
    listener.drain()

    local_k8s.restart_apiserver()
    report_network_ready(portal_k8s, network)

    listener.wait_for(network_event(network, "ready"), timeout=60)
    network.refresh_from_db()
    assert network.subnet_ready
    assert network.subnet_available_ips == 250


def test_a_410_gone_makes_the_watcher_list_again_without_losing_the_update(
    uncached_k8s: LocalControlPlane,
    portal_on_uncached_k8s: KubeClient,
    address_space: LoadBalancerRange,
    operator: User,
    listener: TenantEventListener,
    start_watcher: StartWatcher,
) -> None:
    network = TenantNetwork.objects.get(tenant=onboard(operator, "w-gone"))
    listener.subscribe(network.tenant_id)
    gate = ClientGate()
    # A short server-side watch timeout brings every stream back to the gate within a second.
    watcher = start_watcher(client=gate, watch_timeout_seconds=1)
    assert watcher.wait_until_synced(15)
    subnet_informer = next(i for i in watcher.informers if i.watched.kind == "Subnet")
    listener.drain()

    gate.close()  # the watcher loses the API server...
    assert eventually(lambda: gate.held_back() == len(watcher.informers), timeout=10)
    # ...and meanwhile the status changes and the history that held the change is compacted.
    report_network_ready(portal_on_uncached_k8s, network)
    for step in range(2):  # compaction must pass the change, not stop right at it
        portal_on_uncached_k8s.apply(_config_map(step))
    uncached_k8s.compact_etcd()
    gate.open.set()

    listener.wait_for(network_event(network, "ready"), timeout=30)
    assert subnet_informer.relists == 2  # the first list, then the one the 410 forced
    network.refresh_from_db()
    assert network.subnet_available_ips == 250


def test_two_watchers_elect_one_leader_and_the_standby_takes_over_when_it_stops(
    portal_k8s: KubeClient,
    k8s: KubeClient,
    address_space: LoadBalancerRange,
    operator: User,
    listener: TenantEventListener,
    start_watcher: StartWatcher,
    lease_config: Callable[[], LeaderElectionConfig],
) -> None:
    network = TenantNetwork.objects.get(tenant=onboard(operator, "w-leader"))
    listener.subscribe(network.tenant_id)
    config = lease_config()
    first = start_watcher(election=lease_config(), name="first")
    second = start_watcher(election=lease_config(), name="second")

    assert eventually(lambda: first.is_leader or second.is_leader, timeout=10)
    leader, standby = (first, second) if first.is_leader else (second, first)
    # Over several renew periods, exactly one of them leads, and only it runs informers.
    for _ in range(20):
        assert (first.is_leader, second.is_leader).count(True) == 1
        assert standby.informers == []
        time.sleep(0.05)
    assert leader.wait_until_synced(15)
    assert _lease_holder(k8s, config.namespace) == leader.identity

    stopped_at = time.monotonic()
    leader.stop()
    assert _lease_holder(k8s, config.namespace) is None  # released on the way out
    # Released, not expired: the standby leads after one retry period, not the lease
    # duration. (Only the takeover is timed: the new leader's first list handles every
    # object left on the shared API server, which takes seconds late in a full run.)
    assert eventually(lambda: standby.is_leader, timeout=config.lease_duration + 5)
    assert time.monotonic() - stopped_at < config.lease_duration
    assert _lease_holder(k8s, config.namespace) == standby.identity
    assert standby.wait_until_synced(30)

    listener.drain()
    report_network_ready(portal_k8s, network)
    listener.wait_for(network_event(network, "ready"), timeout=15)


def test_a_leader_whose_lease_is_taken_stops_its_informers_at_once(
    portal_k8s: KubeClient,
    k8s: KubeClient,
    start_watcher: StartWatcher,
    lease_config: Callable[[], LeaderElectionConfig],
) -> None:
    config = lease_config()
    watcher = start_watcher(election=config, handlers={_config_maps(config.namespace): _ignore})
    assert watcher.wait_until_synced(15)

    lease = k8s.get(LEASE_API_VERSION, "Lease", LEASE_NAME, config.namespace)
    lease["spec"]["holderIdentity"] = "someone-else"
    k8s.replace(lease)

    # The next renew (within one retry period) finds the lease taken.
    assert eventually(lambda: not watcher.is_leader, timeout=2 * config.retry_period + 1)
    assert watcher.informers == []
    # The intruder never renews: once its lease has expired, the watcher takes over again.
    # (Generous: it returns as soon as the informers have listed, and a loaded machine
    # once needed more than the lease's duration plus five seconds.)
    assert watcher.wait_until_synced(config.lease_duration + 20)


def test_with_leader_election_off_the_watcher_leads_from_start_to_stop(
    portal_k8s: KubeClient, k8s_namespace: str
) -> None:
    handled: list[str] = []
    kind = _config_maps(k8s_namespace)
    watcher = Watcher(handlers={kind: lambda t, obj: handled.append(obj["metadata"]["name"])})
    assert watcher.informers == []
    with watcher:
        assert watcher.is_leader
        assert watcher.wait_until_synced(15)
        portal_k8s.apply(_config_map(0, k8s_namespace))
        assert eventually(lambda: handled == ["step-0"], timeout=10)
    assert watcher.informers == []
    assert not watcher.is_leader


def _config_maps(namespace: str) -> WatchedKind:
    return WatchedKind("v1", "ConfigMap", namespace=namespace)


def _config_map(step: int, namespace: str = "default") -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": f"step-{step}", "namespace": namespace},
        "data": {"step": str(time.time_ns())},
    }


def _ignore(event_type: str, obj: object) -> None:
    return None


def _lease_holder(client: KubeClient, namespace: str) -> str | None:
    lease = client.get(LEASE_API_VERSION, "Lease", LEASE_NAME, namespace)
    holder: str | None = lease["spec"].get("holderIdentity")
    return holder
