"""What the journeys through the real flow share: the simulator's pace, the quota of the
tenant they onboard, and the onboarding itself (the fixtures using them, ``tenant_slug`` and
what it pulls in, are in ``tests/browser/conftest.py``)."""

from __future__ import annotations

from butler_portal.simulator import Delays, SimulatorConfig
from clusters.seed import seed_catalog
from tenants.access import TenantRole
from tenants.audit import Actor
from tenants.models import Membership
from tenants.services import tenant_create
from tests.conftest import make_user
from vms.seed import seed_vm_catalog

# Slow enough that the page is open before things are up (so a test sees them move), fast
# enough to stay a short test: a cluster is Ready, a VM Running, within about ten seconds.
JOURNEY_PACE = SimulatorConfig(
    delays=Delays(
        network=0.2,
        control_plane=2.0,
        control_plane_sleep=0.5,
        cluster=0.2,
        machine=0.5,
        vm=0.5,
        disk_import=0.5,
        helm=0.5,
    ),
    watch_timeout_seconds=5,
)
LIMITS = {
    "clusters": 2,
    "worker_nodes": 6,
    "vms": 3,
    "vcpu": 24,
    "memory_mib": 49152,
    "storage_gib": 300,
    "load_balancer_ips": 3,
}
READY_TIMEOUT_MS = 60_000


def onboard(slug: str) -> None:
    """A tenant onboarded for real (namespace, network, quota) with a member and a viewer."""
    seed_catalog()
    seed_vm_catalog()
    tenant = tenant_create(actor=Actor.system(), slug=slug, name="Journey Inc", limits=LIMITS)
    Membership.objects.create(tenant=tenant, user=make_user("bob"), role=TenantRole.MEMBER)
    Membership.objects.create(tenant=tenant, user=make_user("carol"), role=TenantRole.VIEWER)
