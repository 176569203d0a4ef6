"""The drift reconcile against the real API server: what is missing is applied again through
the tenant's service, orphans are reported and left in place."""

from __future__ import annotations

import io
import json
from collections.abc import Callable

import pytest
from django.core.management import call_command

from butler_portal.kube.adapter import KubeClient
from butler_portal.kube.errors import NotFound
from butler_portal.watcher import ObjectRef, Watcher
from butler_portal.watcher.drift import Missing, Orphan, drift_report, reconcile
from tenants.drift import drift_checks
from tenants.models import LoadBalancerRange, TenantNetwork, User
from tests.watcher.support import eventually, ghost_vpc, onboard

pytestmark = [pytest.mark.k8s, pytest.mark.django_db(transaction=True)]

CHECK = "tenant networks"


def subnet_of(network: TenantNetwork) -> ObjectRef:
    return ObjectRef("kubeovn.io/v1", "Subnet", "", network.namespace)


def test_a_deleted_subnet_is_applied_again_through_the_tenant_service(
    portal_k8s: KubeClient, address_space: LoadBalancerRange, operator: User
) -> None:
    network = TenantNetwork.objects.get(tenant=onboard(operator, "d-missing"))
    intact = TenantNetwork.objects.get(tenant=onboard(operator, "d-intact"))
    portal_k8s.delete("kubeovn.io/v1", "Subnet", network.namespace)

    report = reconcile(portal_k8s, drift_checks())

    assert [m for m in report.missing if m.check == CHECK] == [
        Missing(CHECK, "tenant d-missing", (subnet_of(network),))
    ]
    subnet = portal_k8s.get("kubeovn.io/v1", "Subnet", network.namespace)
    assert subnet["spec"]["cidrBlock"] == network.subnet_cidr
    assert not any(o.object.name in (network.namespace, intact.namespace) for o in report.orphans)
    assert not [m for m in reconcile(portal_k8s, drift_checks()).missing if m.check == CHECK]


def test_orphans_are_reported_and_left_in_place(
    portal_k8s: KubeClient, address_space: LoadBalancerRange, operator: User
) -> None:
    orphan = ghost_vpc(portal_k8s, "d-ghost")

    report = reconcile(portal_k8s, drift_checks())

    assert Orphan(CHECK, orphan, "tenant d-ghost no longer exists") in report.orphans
    assert not report.clean
    portal_k8s.get("kubeovn.io/v1", "Vpc", orphan.name)  # still there: a person decides


def test_failed_and_deleting_networks_are_not_applied_again(
    portal_k8s: KubeClient, address_space: LoadBalancerRange, operator: User
) -> None:
    failed = TenantNetwork.objects.get(tenant=onboard(operator, "d-failed"))
    portal_k8s.delete("kubeovn.io/v1", "Subnet", failed.namespace)
    TenantNetwork.objects.filter(pk=failed.pk).update(state=TenantNetwork.State.FAILED)

    report = reconcile(portal_k8s, drift_checks())

    assert not [m for m in report.missing if m.owner == "tenant d-failed"]
    with pytest.raises(NotFound):
        portal_k8s.get("kubeovn.io/v1", "Subnet", failed.namespace)


def test_the_leader_reconciles_as_soon_as_it_starts(
    portal_k8s: KubeClient,
    address_space: LoadBalancerRange,
    operator: User,
    start_watcher: Callable[..., Watcher],
) -> None:
    network = TenantNetwork.objects.get(tenant=onboard(operator, "d-start"))
    portal_k8s.delete("metallb.io/v1beta1", "L2Advertisement", network.namespace, "metallb-system")

    watcher = start_watcher(reconcile_interval=3600.0)

    assert eventually(lambda: watcher.last_drift_report is not None, timeout=15)
    assert watcher.last_drift_report is not None
    assert [m.owner for m in watcher.last_drift_report.missing if m.check == CHECK] == [
        "tenant d-start"
    ]
    portal_k8s.get("metallb.io/v1beta1", "L2Advertisement", network.namespace, "metallb-system")


def test_the_watch_command_prints_the_drift_report_as_json(
    portal_k8s: KubeClient, address_space: LoadBalancerRange, operator: User
) -> None:
    network = TenantNetwork.objects.get(tenant=onboard(operator, "d-json"))
    portal_k8s.delete("kubeovn.io/v1", "Subnet", network.namespace)
    orphan = ghost_vpc(portal_k8s, "d-json-ghost")
    out = io.StringIO()

    call_command("watch", "--drift-report", stdout=out)

    printed = json.loads(out.getvalue())
    assert printed["clean"] is False
    assert {"check": CHECK, "owner": "tenant d-json", "objects": [str(subnet_of(network))]} in (
        printed["missing"]
    )
    assert {
        "check": CHECK,
        "object": str(orphan),
        "reason": "tenant d-json-ghost no longer exists",
    } in (printed["orphans"])
    # A report changes nothing.
    with pytest.raises(NotFound):
        portal_k8s.get("kubeovn.io/v1", "Subnet", network.namespace)
    assert drift_report(portal_k8s, drift_checks()).missing
