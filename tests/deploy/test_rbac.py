"""The chart's RBAC, proven on the API server: the portal runs as the chart's ServiceAccount
(a TokenRequest token, nothing else) through onboarding, clusters, VMs, the serial console,
the watcher with leader election and the drift reconcile, and all of it works. Then single
verbs are taken away, and the flow that needs each one fails with the API's Forbidden in
words a person reads (a failed object's reason, a console's close reason, the watcher's log).

The simulator plays the controllers with the admin's identity, as the real ones run with
their own.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import pytest
import yaml
from asgiref.sync import async_to_sync
from django.core.exceptions import ValidationError

from butler_portal.kube import kube_client
from butler_portal.kube.adapter import KubeClient, Manifest
from butler_portal.kube.errors import Forbidden
from butler_portal.kube.lease import LEASE_API_VERSION
from butler_portal.labels import portal_labels
from butler_portal.simulator import Simulator
from butler_portal.watcher import LEASE_NAME, Watcher
from butler_portal.watcher.drift import reconcile
from butler_portal.watcher.registry import collect_drift_checks, handler_modules
from clusters.kubeconfig import cluster_kubeconfig
from clusters.models import Cluster
from clusters.provisioning import cluster_teardown
from clusters.services import cluster_delete
from tenants.audit import Actor
from tenants.models import LoadBalancerRange, Tenant, TenantNetwork, User
from tenants.selectors import ManagementClusterUnavailable, drift_now
from tenants.services import tenant_delete
from tests.clusters.conftest import request as request_cluster
from tests.clusters.test_kubeconfig import kubeadm_style_ca, running_cluster, store_ca
from tests.conftest import make_tenant, make_user
from tests.deploy.conftest import AsChartIdentity, TakeAway
from tests.deploy.support import GUARD_MESSAGE, PortalIdentity, unlabelled_secret
from tests.provisioning_support import onboarded_tenant
from tests.simulator_fixtures import wait_for
from tests.vms.conftest import add_key, create, ensure_vm_catalog, make_running, make_vm_row
from tests.vms.test_console import close_frame, console, instance, read_until
from vms.consumers import CLOSE_UPSTREAM
from vms.models import VirtualMachine
from vms.provisioning import vm_teardown
from vms.services import vm_delete

pytestmark = [pytest.mark.k8s, pytest.mark.django_db(transaction=True)]

TIMEOUT = 60.0
LIMITS = {
    "clusters": 2,
    "worker_nodes": 6,
    "vms": 2,
    "vcpu": 40,
    "memory_mib": 81920,
    "storage_gib": 500,
    "load_balancer_ips": 2,
}


@pytest.fixture
def operator() -> User:
    return make_user("op", "operator")


def subnet_of(tenant: Tenant) -> str:
    return TenantNetwork.objects.get(tenant=tenant).namespace  # the Subnet is named alike


def network_ready(tenant: Tenant) -> Callable[[], TenantNetwork | None]:
    return lambda: TenantNetwork.objects.filter(tenant=tenant, state="ready").first()


def cluster_in(cluster: Cluster, phase: str) -> Callable[[], Cluster | None]:
    return lambda: Cluster.objects.filter(pk=cluster.pk, phase=phase).first()


def vm_in(vm: VirtualMachine, state: str) -> Callable[[], VirtualMachine | None]:
    return lambda: VirtualMachine.objects.filter(pk=vm.pk, state=state).first()


def gone(
    model: type[Cluster] | type[VirtualMachine], pk: int, teardown: Callable[..., bool]
) -> Callable[[], bool]:
    """A ``wait_for`` predicate: the row is gone, once Kubernetes let go of its objects.

    In production the worker retries a teardown with backoff until the objects are gone;
    tasks run eagerly here and do not retry, so this plays the retries (as the portal's
    identity, like the worker) between the watcher's events.
    """

    def check() -> bool:
        if not model.objects.filter(pk=pk).exists():
            return True
        if model is Cluster:
            teardown(cluster_id=pk)
        else:
            teardown(vm_id=pk)
        return not model.objects.filter(pk=pk).exists()

    return check


async def login_prompt(path: str, user: User) -> bytes:
    async with console(path, user) as browser:
        return await read_until(browser, b"login: ")


async def console_close(path: str, user: User) -> dict[str, object]:
    async with console(path, user) as browser:
        return await close_frame(browser)


def console_path(vm: VirtualMachine) -> str:
    return f"/ws/tenants/{vm.tenant.slug}/vms/{vm.pk}/console/"


# --- Everything works with the chart's rights --------------------------------------------------


def test_the_portal_runs_on_the_charts_rights_alone(
    as_chart_identity: AsChartIdentity,
    k8s: KubeClient,
    simulator: Simulator,
    address_space: LoadBalancerRange,
    operator: User,
) -> None:
    identity = as_chart_identity()
    ensure_vm_catalog()  # the clusters' catalog and the VMs'
    actor = Actor(operator)

    # The watcher, as the chart runs it: leader election on the Lease in the release's
    # namespace, and the drift reconcile as soon as it leads.
    with Watcher.from_settings(watch_timeout_seconds=5) as watcher:
        # Asked again while it answers False: it may count as leader a moment before its
        # informers exist (the elector's callback starts them), and then answers at once.
        wait_for(lambda: watcher.wait_until_synced(5.0), TIMEOUT)
        lease = k8s.get(LEASE_API_VERSION, "Lease", LEASE_NAME, identity.namespace)
        assert lease["spec"]["holderIdentity"] == watcher.identity
        first_report = wait_for(lambda: watcher.last_drift_report, TIMEOUT)
        assert first_report is not None

        # Onboarding: namespace, quota, Kube-OVN network and MetalLB share, then Ready.
        tenant = onboarded_tenant(operator, "rbac", LIMITS)
        wait_for(network_ready(tenant), TIMEOUT)

        # A cluster comes up, and a member's kubeconfig is signed with its CA (a Secret).
        cluster = request_cluster(tenant, operator, "web", worker_count=1)
        ready = wait_for(cluster_in(cluster, Cluster.Phase.READY), TIMEOUT)
        kubeconfig = yaml.safe_load(cluster_kubeconfig(actor=actor, cluster=ready))
        assert kubeconfig["users"][0]["user"]["client-certificate-data"]

        # A VM boots, and its serial console opens through the aggregated API.
        vm = create(tenant, operator, "box", ssh_keys=[add_key(operator)])
        running = wait_for(vm_in(vm, VirtualMachine.State.RUNNING), TIMEOUT)
        greeting = async_to_sync(login_prompt)(console_path(running), operator)
        assert greeting.endswith(b"box login: ")

        # Drift: a Subnet deleted behind the portal's back is reported and applied again.
        k8s.delete("kubeovn.io/v1", "Subnet", subnet_of(tenant))
        assert any(m.owner == f"tenant {tenant.slug}" for m in drift_now().missing)
        client = kube_client()
        assert client is not None
        reconcile(client, collect_drift_checks(handler_modules()))
        assert k8s.get("kubeovn.io/v1", "Subnet", subnet_of(tenant))

        # And everything goes away again.
        vm_delete(actor=actor, vm=running, confirm_name="box")
        wait_for(gone(VirtualMachine, vm.pk, vm_teardown), TIMEOUT, interval=0.5)
        cluster_delete(actor=actor, cluster=Cluster.objects.get(pk=ready.pk), confirm_name="web")
        wait_for(gone(Cluster, cluster.pk, cluster_teardown), TIMEOUT, interval=0.5)
        tenant_delete(actor=actor, tenant=tenant)
        wait_for(lambda: not Tenant.objects.filter(pk=tenant.pk).exists(), TIMEOUT)


# --- What RBAC cannot narrow, admission does ----------------------------------------------------


def test_the_portal_may_write_only_objects_it_manages(
    as_chart_identity: AsChartIdentity, k8s: KubeClient, k8s_namespace: str
) -> None:
    identity = as_chart_identity()
    client = identity.client
    # Someone else's namespace and Secret (the admin's: no portal label).
    k8s.apply(unlabelled_secret(k8s_namespace))

    refusals = []
    with pytest.raises(Forbidden) as created:
        client.apply(unlabelled_secret(k8s_namespace, "new"))
    refusals.append(created.value)
    with pytest.raises(Forbidden) as taken_over:
        client.apply(labelled(unlabelled_secret(k8s_namespace)))  # claiming it by labelling
    refusals.append(taken_over.value)
    with pytest.raises(Forbidden) as deleted:
        client.delete("v1", "Secret", "not-the-portals", k8s_namespace)
    refusals.append(deleted.value)
    with pytest.raises(Forbidden) as namespace_deleted:
        client.delete("v1", "Namespace", k8s_namespace)
    refusals.append(namespace_deleted.value)

    for refusal in refusals:
        assert GUARD_MESSAGE in refusal.message, refusal.message
    assert "the portal may only delete namespaces" in namespace_deleted.value.message
    assert k8s.get("v1", "Secret", "not-the-portals", k8s_namespace)
    assert not k8s.get("v1", "Namespace", k8s_namespace)["metadata"].get("deletionTimestamp")

    # Its own objects it writes and deletes as before; the RBAC allowed all of the above.
    own = labelled(unlabelled_secret(k8s_namespace, "own"))
    assert client.apply(own)["metadata"]["labels"] == own["metadata"]["labels"]
    client.delete("v1", "Secret", "own", k8s_namespace)


def labelled(manifest: Manifest) -> Manifest:
    """``manifest`` labelled as the portal labels what it applies."""
    return {**manifest, "metadata": {**manifest["metadata"], "labels": portal_labels("acme")}}


# --- Each right is needed -----------------------------------------------------------------------


@dataclass(frozen=True)
class Seen:
    """What a person is shown, and the Kubernetes refusal behind it (the same, or a log)."""

    shown: str
    refusal: str


@dataclass
class Context:
    identity: PortalIdentity
    k8s: KubeClient
    operator: User
    caplog: pytest.LogCaptureFixture


def onboarding(context: Context) -> Seen:
    with context.caplog.at_level(logging.WARNING, logger="tenants.network"):
        tenant = onboarded_tenant(context.operator, "deny", LIMITS)
    network = TenantNetwork.objects.get(tenant=tenant)
    assert network.state == TenantNetwork.State.FAILED, network.message
    # The page says it in plain words; Kubernetes' own are in the log, for the operators.
    return Seen(network.message, context.caplog.text)


def cluster_request(context: Context) -> Seen:
    ensure_vm_catalog()
    tenant = onboarded_tenant(context.operator, "deny", LIMITS)
    cluster = request_cluster(tenant, context.operator, "web")
    cluster.refresh_from_db()
    assert cluster.phase == Cluster.Phase.FAILED, cluster.phase_reason
    return Seen(cluster.phase_reason, cluster.phase_reason)


def vm_request(context: Context) -> Seen:
    ensure_vm_catalog()
    tenant = onboarded_tenant(context.operator, "deny", LIMITS)
    vm = create(tenant, context.operator, "box")
    vm.refresh_from_db()
    assert vm.state == VirtualMachine.State.FAILED, vm.reason_raw
    return Seen(vm.reason, vm.reason_raw)


def kubeconfig_download(context: Context) -> Seen:
    ensure_vm_catalog()
    acme = make_tenant("acme", "Acme Corp")
    store_ca(context.k8s, "web", *kubeadm_style_ca())  # as Kamaji writes it
    cluster = running_cluster(acme, "web")
    with pytest.raises(ValidationError) as refused:
        cluster_kubeconfig(actor=Actor(context.operator), cluster=cluster)
    message = refused.value.messages[0]
    return Seen(message, message)


def serial_console(context: Context) -> Seen:
    acme = make_tenant("acme", "Acme Corp")
    vm = make_running(make_vm_row(acme))
    namespace = f"tenant-{acme.slug}"
    context.k8s.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    context.k8s.apply(instance(vm.name, namespace))  # it runs, as far as KubeVirt knows
    with context.caplog.at_level(logging.WARNING, logger="vms.consumers"):
        closed = async_to_sync(console_close)(console_path(vm), context.operator)
    assert closed["code"] == CLOSE_UPSTREAM
    return Seen(str(closed["reason"]), context.caplog.text)


def leader_election(context: Context) -> Seen:
    with (
        context.caplog.at_level(logging.WARNING, logger="butler_portal.kube.lease"),
        Watcher.from_settings(reconcile_interval=None) as watcher,
    ):
        assert not watcher.wait_until_leading(3.0)
    return Seen(context.caplog.text, context.caplog.text)


def drift_page(context: Context) -> Seen:
    with pytest.raises(ManagementClusterUnavailable) as unavailable:
        drift_now()
    return Seen(str(unavailable.value), str(unavailable.value))


def case(take_away: TakeAway, flow: Callable[[Context], Seen], shown: str) -> object:
    _, resource, verb = take_away
    return pytest.param(take_away, flow, shown, id=f"{verb}-{resource.replace('/', '-')}")


@pytest.mark.parametrize(
    ("take_away", "flow", "shown"),
    [
        case(
            ("", "namespaces", "create"), onboarding, "The portal may not do this on the platform."
        ),
        case(
            ("metallb.io", "ipaddresspools", "patch"),
            onboarding,
            "The portal may not do this on the platform.",
        ),
        case(
            ("cluster.x-k8s.io", "clusters", "patch"), cluster_request, "Kubernetes refused Cluster"
        ),
        # Server-side apply of a new object is authorized as a create too.
        case(
            ("cluster.x-k8s.io", "clusters", "create"),
            cluster_request,
            "Kubernetes refused Cluster",
        ),
        case(
            ("kubevirt.io", "virtualmachines", "create"),
            vm_request,
            "The portal may not do this on the platform.",
        ),
        case(("", "secrets", "get"), kubeconfig_download, "certificate authority is unusable"),
        case(
            ("subresources.kubevirt.io", "virtualmachineinstances/console", "get"),
            serial_console,
            "The portal is not allowed to open this console.",
        ),
        case(("coordination.k8s.io", "leases", "create"), leader_election, "lease"),
        case(("coordination.k8s.io", "leases", "get"), leader_election, "lease"),
        case(
            ("kubeovn.io", "subnets", "list"), drift_page, "The management cluster did not answer"
        ),
    ],
)
def test_without_one_right_its_flow_fails_with_the_apis_forbidden(
    as_chart_identity: AsChartIdentity,
    k8s: KubeClient,
    simulator: Simulator,
    address_space: LoadBalancerRange,
    operator: User,
    caplog: pytest.LogCaptureFixture,
    take_away: TakeAway,
    flow: Callable[[Context], Seen],
    shown: str,
) -> None:
    _, resource, verb = take_away
    identity = as_chart_identity(take_away=take_away)

    seen = flow(Context(identity, k8s, operator, caplog))

    assert shown in seen.shown
    # The API's own words: who was refused what.
    assert f'cannot {verb} resource "{resource}"' in seen.refusal
    assert identity.username in seen.refusal
