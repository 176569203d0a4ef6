"""Cluster services: requests within quota, day-2 rules, deletion, suspension, concurrency."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.core.exceptions import ValidationError

from clusters.models import Cluster, ClusterStep
from clusters.provisioning import cluster_fail
from clusters.selectors import cluster_quota_preview, upgrade_targets
from clusters.services import (
    cluster_delete,
    cluster_hibernate,
    cluster_retry,
    cluster_scale,
    cluster_set_protection,
    cluster_upgrade,
    cluster_wake,
    kubernetes_version_save,
)
from tenants.audit import Actor
from tenants.models import AuditEvent, QuotaClaim, Tenant, User
from tenants.selectors import quota_used
from tenants.services import tenant_set_state
from tests.clusters.conftest import (
    asleep_cluster_objects,
    instance_type,
    kamaji_control_plane,
    machines_of,
    make_cluster_row,
    make_ready,
    observe,
    request,
    spec,
    version,
)
from tests.concurrency import race
from tests.conftest import make_tenant
from tests.vms.conftest import ensure_vm_catalog, make_vm_row

pytestmark = pytest.mark.usefixtures("catalog")


def refusal(error: pytest.ExceptionInfo[ValidationError]) -> dict[str, list[str]]:
    return error.value.message_dict


# --- Requesting -----------------------------------------------------------------------------


def test_a_request_reserves_quota_records_a_timeline_and_is_audited(
    acme: Tenant, bob: User, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        cluster = request(acme, bob, worker_count=3, worker_disk_gib=30)

    claim = QuotaClaim.objects.get(tenant=acme, subject=f"cluster:{cluster.pk}")
    assert claim.amounts() == {
        "clusters": 1,
        "worker_nodes": 3,
        "vms": 0,
        "vcpu": 6,
        "memory_mib": 3 * 4096,
        "storage_gib": 90,
        "load_balancer_ips": 1,
    }
    cluster.refresh_from_db()
    assert cluster.phase == Cluster.Phase.PENDING
    # Without Kubernetes the provisioning task says so instead of leaving it unexplained.
    assert cluster.phase_reason == "No Kubernetes cluster is configured: nothing was applied."
    assert list(cluster.steps.values_list("key", flat=True)) == [
        "control-plane",
        "endpoint",
        "control-plane-ready",
        "kubeconfig",
        "worker-0",
        "worker-1",
        "worker-2",
        "addon-cilium",
        "addon-portal-access",
    ]
    event = AuditEvent.objects.get(object_type="cluster", action="create")
    assert (event.actor, event.tenant, event.object_repr) == (bob, acme, "acme/web")
    assert event.changes["worker_count"] == 3
    assert cluster.created_by == bob


def test_optional_add_ons_come_on_top_of_the_required_ones(acme: Tenant, bob: User) -> None:
    from clusters.models import ClusterAddon

    metrics = ClusterAddon.objects.get(name="metrics-server")
    cluster = request(acme, bob, addons=[metrics])

    assert sorted(cluster.addons.values_list("name", flat=True)) == [
        "cilium",
        "metrics-server",
        "portal-access",
    ]


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"name": "Web_1"}, "name"),
        ({"name": "x" * 41}, "name"),
        ({"control_plane_replicas": 4}, "control_plane_replicas"),
        ({"worker_count": 0}, "worker_count"),
        ({"worker_disk_gib": 5}, "worker_disk_gib"),
    ],
)
def test_invalid_requests_are_refused_on_their_field(
    acme: Tenant, bob: User, fields: dict[str, Any], field: str
) -> None:
    name = fields.pop("name", "web")
    with pytest.raises(ValidationError) as raised:
        request(acme, bob, name, **fields)

    assert field in refusal(raised)
    assert not Cluster.objects.exists()
    assert not QuotaClaim.objects.exists()


def test_names_are_unique_per_tenant_only(
    acme: Tenant, globex: Tenant, bob: User, gina: User
) -> None:
    request(acme, bob, "web")
    request(globex, gina, "web")

    with pytest.raises(ValidationError) as raised:
        request(acme, bob, "web")
    assert refusal(raised) == {"name": ["acme already has a cluster named web."]}


def test_names_stay_clear_of_the_tenants_virtual_machines(acme: Tenant, bob: User) -> None:
    ensure_vm_catalog()
    make_vm_row(acme, name="db")
    make_vm_row(acme, name="web-md-0-abcde")

    with pytest.raises(ValidationError) as same_name:
        request(acme, bob, "db")
    with pytest.raises(ValidationError) as workers_would_collide:
        request(acme, bob, "web")
    request(acme, bob, "web-2")  # only the exact name and the worker prefix collide

    assert refusal(same_name) == {
        "name": [
            "The virtual machine db in acme would share this cluster's object names:"
            " choose another name."
        ]
    }
    assert "web-md-0-abcde" in refusal(workers_would_collide)["name"][0]
    assert not Cluster.objects.filter(tenant=acme, name__in=["db", "web"]).exists()


def test_retired_catalog_entries_are_refused(acme: Tenant, bob: User) -> None:
    retired_type = instance_type("m1.small")
    retired_type.active = False
    retired_type.save()

    with pytest.raises(ValidationError) as raised:
        request(acme, bob, version=version("v1.32.9"), instance_type=retired_type)

    assert set(refusal(raised)) == {"version", "instance_type"}


@pytest.mark.parametrize(
    ("limits", "fields", "field"),
    [
        ({"worker_nodes": 2}, {"worker_count": 3}, "worker_count"),
        ({"vcpu": 4}, {"instance_type": "m1.large"}, "instance_type"),
        ({"memory_mib": 4096}, {}, "instance_type"),
        ({"storage_gib": 30}, {}, "worker_disk_gib"),
        ({"clusters": 0}, {}, "__all__"),
        ({"load_balancer_ips": 0}, {}, "__all__"),
    ],
)
def test_quota_refusals_name_the_field_to_change(
    bob: User, limits: dict[str, int], fields: dict[str, Any], field: str
) -> None:
    tenant = make_tenant("small", "Small Ltd", **limits)
    if "instance_type" in fields:
        fields["instance_type"] = instance_type(fields["instance_type"])
    preview = cluster_quota_preview(tenant, spec(**fields))

    with pytest.raises(ValidationError) as raised:
        request(tenant, bob, **fields)

    assert set(refusal(raised)) == {field}
    assert "left in the quota" in refusal(raised)[field][0]
    # The form's preview foresees the same refusal, on the same field.
    assert not preview.fits
    assert set(preview.errors()) == {field}
    assert not Cluster.objects.filter(tenant=tenant).exists()
    assert quota_used(tenant)["clusters"] == 0


def test_the_preview_shows_use_against_what_is_left(acme: Tenant, bob: User) -> None:
    request(acme, bob, "first", worker_count=2)

    preview = cluster_quota_preview(acme, spec("second", worker_count=4))

    lines = {
        line.resource: (line.requested, line.used, line.limit, line.fits) for line in preview.lines
    }
    assert lines["worker_nodes"] == (4, 2, 10, True)
    assert lines["vcpu"] == (8, 4, 48, True)
    assert lines["clusters"] == (1, 1, 3, True)
    assert preview.fits
    assert Cluster.objects.count() == 1


def test_a_suspended_tenant_gets_no_new_cluster_and_can_only_give_back(
    acme: Tenant, bob: User, oscar: User
) -> None:
    cluster = make_ready(make_cluster_row(acme))
    tenant_set_state(actor=Actor(oscar), tenant=acme, state=Tenant.State.SUSPENDED)
    actor = Actor(bob)

    refused: dict[str, Callable[[], object]] = {
        "request": lambda: request(acme, bob, "more"),
        "scale": lambda: cluster_scale(actor=actor, cluster=cluster, worker_count=3),
        "upgrade": lambda: cluster_upgrade(
            actor=actor, cluster=cluster, version=version("v1.36.3")
        ),
        "protection": lambda: cluster_set_protection(actor=actor, cluster=cluster, enabled=True),
    }
    outcomes = {}
    for name, attempt in refused.items():
        with pytest.raises(ValidationError) as raised:
            attempt()
        outcomes[name] = refusal(raised)
    given_back = "resources can only be given back (stopped, hibernated, deleted)."
    assert outcomes == {
        "request": {"__all__": ["Tenant acme is suspended: nothing new can be created."]},
        "scale": {"__all__": [f"Tenant acme is suspended: {given_back}"]},
        "upgrade": {"__all__": [f"Tenant acme is suspended: {given_back}"]},
        "protection": {"__all__": [f"Tenant acme is suspended: {given_back}"]},
    }

    # Giving back is the one thing still allowed: the same rule as for VMs.
    assert cluster_hibernate(actor=actor, cluster=cluster).hibernated
    cluster_delete(actor=actor, cluster=cluster, confirm_name=cluster.name)
    assert not Cluster.objects.filter(pk=cluster.pk).exists()


@pytest.mark.django_db(transaction=True)
def test_concurrent_requests_never_exceed_the_cluster_quota() -> None:
    """Twelve requests at once race for a quota of three clusters."""
    from clusters.seed import seed_catalog

    seed_catalog()
    tenant = make_tenant("race", "Race Ltd", clusters=3)
    user = User.objects.create(username="racer")

    outcomes = race(12, lambda number: request(tenant, user, f"race-{number}", worker_count=1))

    assert outcomes == ["__all__"] * 9 + ["created"] * 3
    assert Cluster.objects.filter(tenant=tenant).count() == 3
    assert quota_used(tenant)["clusters"] == 3


@pytest.mark.django_db(transaction=True)
def test_concurrent_requests_for_one_name_create_one_cluster() -> None:
    from clusters.seed import seed_catalog

    seed_catalog()
    tenant = make_tenant("twins", "Twins Ltd", clusters=10)
    user = User.objects.create(username="twin")

    outcomes = race(6, lambda _: request(tenant, user, "same", worker_count=1))

    assert outcomes == ["created"] + ["name"] * 5
    assert quota_used(tenant)["clusters"] == 1


# --- Scaling --------------------------------------------------------------------------------


def test_scaling_resizes_the_quota_claim_and_refuses_on_worker_count(
    acme: Tenant, bob: User
) -> None:
    cluster = make_ready(request(acme, bob, worker_count=2))

    scaled = cluster_scale(actor=Actor(bob), cluster=cluster, worker_count=5)
    assert (scaled.worker_count, scaled.phase) == (5, Cluster.Phase.SCALING)
    assert quota_used(acme)["worker_nodes"] == 5
    assert scaled.steps.filter(key__startswith="worker-").count() == 5

    with pytest.raises(ValidationError) as raised:
        cluster_scale(actor=Actor(bob), cluster=scaled, worker_count=11)
    assert set(refusal(raised)) == {"worker_count"}
    assert quota_used(acme)["worker_nodes"] == 5

    cluster_scale(actor=Actor(bob), cluster=scaled, worker_count=1)
    assert quota_used(acme)["worker_nodes"] == 1
    event = AuditEvent.objects.filter(action="scale").order_by("occurred_at", "id").first()
    assert event is not None
    assert event.changes == {"worker_count": [2, 5]}


# --- Upgrading ------------------------------------------------------------------------------


def test_upgrades_go_one_minor_at_a_time_and_never_to_end_of_life(
    acme: Tenant, bob: User, oscar: User
) -> None:
    from clusters.models import KubernetesVersion

    kubernetes_version_save(actor=Actor(oscar), version=KubernetesVersion(version="v1.34.6"))
    cluster = make_ready(make_cluster_row(acme, version=version("v1.34.4")))

    assert [v.version for v in upgrade_targets(cluster)] == ["v1.35.4", "v1.34.6"]
    for refused in ("v1.36.3", "v1.33.4", "v1.34.4"):
        with pytest.raises(ValidationError) as raised:
            cluster_upgrade(actor=Actor(bob), cluster=cluster, version=version(refused))
        assert set(refusal(raised)) == {"version"}, refused

    eol = version("v1.35.4")
    eol.status = KubernetesVersion.Status.SUPPORTED
    eol.save()
    KubernetesVersion.objects.filter(version="v1.34.6").update(status="end-of-life")
    with pytest.raises(ValidationError):
        cluster_upgrade(actor=Actor(bob), cluster=cluster, version=version("v1.34.6"))


def test_the_control_plane_upgrades_first_and_the_workers_follow(
    acme: Tenant, bob: User, django_capture_on_commit_callbacks: Any
) -> None:
    cluster = make_ready(make_cluster_row(acme, version=version("v1.35.4")))

    upgraded = cluster_upgrade(actor=Actor(bob), cluster=cluster, version=version("v1.36.3"))
    assert (upgraded.version.version, upgraded.worker_version.version) == ("v1.36.3", "v1.35.4")
    assert upgraded.phase == Cluster.Phase.UPGRADING
    with pytest.raises(ValidationError) as raised:
        cluster_upgrade(actor=Actor(bob), cluster=upgraded, version=version("v1.36.3"))
    assert "version" in refusal(raised)

    # Kamaji reports the control plane upgraded: the workers are next, applied on commit
    # (here without Kubernetes, so the task can only say that nothing was applied).
    with django_capture_on_commit_callbacks(execute=True):
        observe(
            upgraded, [kamaji_control_plane(cluster.name, version="v1.36.3", running="v1.36.3")]
        )
    upgraded.refresh_from_db()
    assert upgraded.worker_version.version == "v1.36.3"
    assert upgraded.phase == Cluster.Phase.UPGRADING
    assert upgraded.phase_reason == "No Kubernetes cluster is configured: nothing was applied."
    follow = AuditEvent.objects.get(action="upgrade_workers")
    assert (follow.actor, follow.changes) == (None, {"worker_version": ["v1.35.4", "v1.36.3"]})


# --- Hibernation ----------------------------------------------------------------------------


def test_hibernate_and_wake(acme: Tenant, bob: User) -> None:
    cluster = make_ready(request(acme, bob))
    actor = Actor(bob)

    going = cluster_hibernate(actor=actor, cluster=cluster)
    # Hibernating until Kubernetes reports everything stopped; then Hibernated.
    assert (going.hibernated, going.phase, going.action) == (
        True,
        Cluster.Phase.HIBERNATING,
        Cluster.Action.HIBERNATE,
    )
    asleep = observe(
        going,
        asleep_cluster_objects(cluster.name, namespace=f"tenant-{acme.slug}"),
        gone=machines_of(going),
    )
    assert (asleep.phase, asleep.action) == (Cluster.Phase.HIBERNATED, Cluster.Action.NONE)
    assert quota_used(acme)["worker_nodes"] == 2  # kept, so waking up cannot fail
    refused_while_asleep: list[Callable[[], object]] = [
        lambda: cluster_hibernate(actor=actor, cluster=asleep),
        lambda: cluster_scale(actor=actor, cluster=asleep, worker_count=3),
        lambda: cluster_upgrade(actor=actor, cluster=asleep, version=version("v1.36.3")),
    ]
    for refused in refused_while_asleep:
        with pytest.raises(ValidationError):
            refused()

    awake = cluster_wake(actor=actor, cluster=asleep)
    assert (awake.hibernated, awake.phase, awake.action) == (
        False,
        Cluster.Phase.WAKING,
        Cluster.Action.WAKE,
    )
    assert [e.action for e in AuditEvent.objects.filter(object_type="cluster").order_by("id")][
        -2:
    ] == [
        "hibernate",
        "wake",
    ]
    awake = make_ready(awake)
    assert (awake.phase, awake.action) == (Cluster.Phase.READY, Cluster.Action.NONE)
    with pytest.raises(ValidationError):
        cluster_wake(actor=actor, cluster=awake)


# --- Deletion -------------------------------------------------------------------------------


def test_deleting_needs_the_typed_name_and_no_protection(acme: Tenant, bob: User) -> None:
    cluster = request(acme, bob, "web", deletion_protection=True)
    actor = Actor(bob)

    with pytest.raises(ValidationError) as raised:
        cluster_delete(actor=actor, cluster=cluster, confirm_name="wbe")
    assert refusal(raised) == {"confirm_name": ["Type the cluster's name, web, to confirm."]}

    with pytest.raises(ValidationError) as raised:
        cluster_delete(actor=actor, cluster=cluster, confirm_name="web")
    assert refusal(raised) == {"__all__": ["Deletion protection is on: turn it off first."]}
    assert Cluster.objects.filter(pk=cluster.pk).exists()

    cluster_set_protection(actor=actor, cluster=cluster, enabled=False)
    # Without Kubernetes there is nothing to wait for: gone at once, quota released.
    assert cluster_delete(actor=actor, cluster=cluster, confirm_name=" web ") is True
    assert not Cluster.objects.filter(pk=cluster.pk).exists()
    assert not ClusterStep.objects.exists()
    assert quota_used(acme)["clusters"] == 0
    actions = list(
        AuditEvent.objects.filter(object_type="cluster")
        .order_by("id")
        .values_list("action", flat=True)
    )
    assert actions == ["create", "unprotect", "delete"]


def test_with_kubernetes_the_quota_waits_for_the_objects_to_go(
    acme: Tenant, bob: User, settings: Any
) -> None:
    settings.KUBE_MODE = "kubeconfig"  # only the decision matters here: no task runs
    cluster = request(acme, bob, "web")

    assert cluster_delete(actor=Actor(bob), cluster=cluster, confirm_name="web") is False

    cluster.refresh_from_db()
    assert cluster.phase == Cluster.Phase.DELETING
    assert quota_used(acme)["clusters"] == 1
    with pytest.raises(ValidationError):
        cluster_scale(actor=Actor(bob), cluster=cluster, worker_count=3)


# --- Failure and retry ----------------------------------------------------------------------


def test_a_failed_cluster_gives_its_quota_back_and_a_retry_takes_it_again(
    acme: Tenant, bob: User
) -> None:
    cluster = request(acme, bob, "web", worker_count=4)
    cluster_fail(cluster_id=cluster.pk, reason="Kubernetes rejected MachineDeployment web-md-0: no")
    cluster.refresh_from_db()

    assert (cluster.phase, cluster.phase_reason) == (
        Cluster.Phase.FAILED,
        "Kubernetes rejected MachineDeployment web-md-0: no",
    )
    assert quota_used(acme)["worker_nodes"] == 0

    other = request(acme, bob, "other", worker_count=8)
    with pytest.raises(ValidationError) as raised:
        cluster_retry(actor=Actor(bob), cluster=cluster)
    assert set(refusal(raised)) == {"worker_count"}

    cluster_scale(actor=Actor(bob), cluster=other, worker_count=6)
    retried = cluster_retry(actor=Actor(bob), cluster=cluster)
    assert (retried.phase, retried.apply_error) == (Cluster.Phase.PENDING, "")
    assert quota_used(acme)["worker_nodes"] == 10
    with pytest.raises(ValidationError):
        cluster_retry(actor=Actor(bob), cluster=retried)
