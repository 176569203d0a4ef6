"""A VM from request to running and back to nothing, against the real API server with the
infrastructure simulator playing KubeVirt, CDI, Kube-OVN and MetalLB, and the watcher
bringing what they report into the database (tasks run on commit, eagerly)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from ipaddress import IPv4Address, IPv4Network

import pytest

from butler_portal.kube.adapter import KubeClient
from butler_portal.simulator import FAIL_ANNOTATION, Simulator
from butler_portal.watcher import Watcher
from butler_portal.watcher.registry import collect_handlers, handler_modules
from tenants.audit import Actor
from tenants.models import LoadBalancerRange, Tenant, TenantNetwork, User
from tenants.selectors import quota_used
from tenants.services import tenant_create
from tests.provisioning_support import unused_public_range
from tests.simulator_fixtures import _simulator_client, simulator, wait_for
from tests.vms.conftest import add_key, create, ensure_vm_catalog
from vms.models import VirtualMachine, VMImage, VMService
from vms.selectors import vm_timeline
from vms.services import vm_delete, vm_expose, vm_start, vm_stop
from vms.spec import PortSpec

pytestmark = [pytest.mark.k8s, pytest.mark.django_db(transaction=True)]

__all__ = ["_simulator_client", "simulator"]  # fixtures, brought in by import

TIMEOUT = 30.0


@pytest.fixture
def operator() -> User:
    return User.objects.create_user("op", password="x", platform_role="operator")


@pytest.fixture
def public_addresses(db: None) -> LoadBalancerRange:
    return unused_public_range("e2e-public")


@pytest.fixture
def tenant(portal_k8s: KubeClient, public_addresses: LoadBalancerRange, operator: User) -> Tenant:
    ensure_vm_catalog()
    slug = f"e2e-{uuid.uuid4().hex[:6]}"
    return tenant_create(
        actor=Actor(operator),
        slug=slug,
        name=slug,
        limits={
            "vms": 2,
            "vcpu": 8,
            "memory_mib": 16384,
            "storage_gib": 100,
            "load_balancer_ips": 1,
        },
    )


@pytest.fixture
def watcher(portal_k8s: KubeClient, simulator: Simulator) -> Iterator[Watcher]:
    """The watcher as deployed for tenants and VMs (no drift reconcile)."""
    modules = handler_modules(["tenants.status", "vms.status"])
    with Watcher(
        handlers=collect_handlers(modules), drift_checks=[], reconcile_interval=None
    ) as running:
        assert running.wait_until_synced(TIMEOUT)
        yield running


def fresh(vm: VirtualMachine) -> VirtualMachine:
    vm.refresh_from_db()
    return vm


def reaching(
    vm: VirtualMachine, state: str, also: Callable[[VirtualMachine], bool] = lambda vm: True
) -> Callable[[], VirtualMachine | None]:
    """A ``wait_for`` predicate: the VM, once it is in ``state`` and ``also`` holds.

    Each object's events (the VM's, its instance's, its disk's) arrive in their own order, so
    a test waits for every fact it then checks.
    """

    def check() -> VirtualMachine | None:
        current = fresh(vm)
        return current if current.state == state and also(current) else None

    return check


def exposure_ready(vm: VirtualMachine) -> Callable[[], VMService | None]:
    """A ``wait_for`` predicate: the VM's exposure, once it has its public address."""

    def check() -> VMService | None:
        service = VMService.objects.filter(vm=vm).first()
        return service if service is not None and service.state == "ready" else None

    return check


def test_a_vm_comes_up_gets_addresses_stops_starts_and_goes(
    tenant: Tenant, operator: User, watcher: Watcher
) -> None:
    actor = Actor(operator)
    vm = create(tenant, operator, "web", ssh_keys=[add_key(operator)])

    running = wait_for(
        reaching(vm, "running", lambda vm: bool(vm.ip_addresses) and vm.disk_phase == "Succeeded"),
        TIMEOUT,
    )
    subnet = TenantNetwork.objects.get(tenant=tenant).subnet_cidr
    assert subnet is not None
    assert IPv4Address(running.ip_address) in IPv4Network(subnet)
    assert (running.disk_phase, running.disk_progress) == ("Succeeded", "100.0%")
    assert running.node_name.startswith("sim-node-")

    vm_expose(actor=actor, vm=running, ports=[PortSpec("TCP", 22, 22)])
    exposed = wait_for(exposure_ready(vm), TIMEOUT)
    public = LoadBalancerRange.objects.get()
    assert exposed.public_ip is not None
    first, last = IPv4Address(public.first_address), IPv4Address(public.last_address)
    assert first <= IPv4Address(exposed.public_ip) <= last

    vm_stop(actor=actor, vm=fresh(vm))
    stopped = wait_for(reaching(vm, "stopped", lambda vm: not vm.node_name), TIMEOUT)
    assert stopped.ip_addresses == []

    vm_start(actor=actor, vm=stopped)
    wait_for(reaching(vm, "running"), TIMEOUT)

    vm_delete(actor=actor, vm=fresh(vm), confirm_name="web")
    wait_for(lambda: not VirtualMachine.objects.filter(pk=vm.pk).exists(), TIMEOUT)
    assert sum(quota_used(tenant).values()) == 0


def test_a_failing_disk_import_shows_cdis_words(
    tenant: Tenant, operator: User, watcher: Watcher, portal_k8s: KubeClient
) -> None:
    broken = VMImage.objects.create(
        name="broken",
        display_name="Broken",
        source_kind="http",
        source="https://images.example.test/missing.qcow2",
    )
    vm = create(tenant, operator, "web", image=broken)
    # The simulator fails a DataVolume that asks for it: mark the one KubeVirt makes.
    namespace = f"tenant-{tenant.slug}"
    wait_for(lambda: _data_volume(portal_k8s, namespace), TIMEOUT)
    portal_k8s.apply(
        {
            "apiVersion": "cdi.kubevirt.io/v1beta1",
            "kind": "DataVolume",
            "metadata": {
                "name": "web-rootdisk",
                "namespace": namespace,
                "annotations": {FAIL_ANNOTATION: "HTTP request errored: 404 Not Found"},
            },
        },
        field_manager="test",
    )

    # The VM's DataVolumeError and the DataVolume's failure arrive in either order: wait for
    # both (the reason quotes CDI once its DataVolume report is in).
    failed = wait_for(reaching(vm, "error", lambda vm: vm.disk_phase == "Failed"), TIMEOUT)

    assert failed.reason == (
        "The disk image could not be read. Delete the virtual machine and try another image, or "
        "ask the platform operators if it keeps failing."
    )
    assert failed.reason_raw == (
        "DataVolumeError: Unable to process data: HTTP request errored: 404 Not Found"
    )
    assert vm_timeline(failed)[0].state == "failed"


def _data_volume(client: KubeClient, namespace: str) -> bool:
    from butler_portal.kube.errors import NotFound

    try:
        client.get("cdi.kubevirt.io/v1beta1", "DataVolume", "web-rootdisk", namespace)
    except NotFound:
        return False
    return True
