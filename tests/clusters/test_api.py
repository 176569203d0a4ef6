"""/api/v1/clusters/ and the catalog endpoints."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from django.urls import reverse

from clusters.models import Cluster, ClusterAddon, InstanceType, KubernetesVersion
from tenants.models import AuditEvent, Tenant, User
from tenants.selectors import quota_used
from tests.api_mixin import (
    TENANT_WRITE_OUTCOMES,
    CatalogEndpointTests,
    TenantResourceEndpointTests,
    check_deleting_needs_the_typed_name,
    listed_names,
    write_outcomes,
)
from tests.clusters.conftest import ensure_catalog, make_cluster_row, make_ready, version
from tests.conftest import api_client_for, make_tenant

pytestmark = pytest.mark.usefixtures("catalog")

numbers = itertools.count(1)


def cluster_url(cluster: Cluster, action: str | None = None) -> str:
    if action is None:
        return reverse("api:cluster-detail", args=[cluster.pk])
    return reverse(f"api:cluster-{action}", args=[cluster.pk])


# --- Clusters -------------------------------------------------------------------------------


class TestClusterEndpoint(TenantResourceEndpointTests):
    basename = "cluster"
    max_list_queries = 6

    def make_object(self, tenant: Tenant) -> Cluster:
        ensure_catalog()  # this runs before the module's fixtures
        return make_cluster_row(tenant, name=f"c{next(numbers)}")

    def create_payload(self) -> dict[str, Any]:
        return {"tenant": "acme", "name": f"new-{next(numbers)}", "worker_count": 1}


def test_create_fills_in_the_catalog_defaults_and_answers_with_the_timeline(bob: User) -> None:
    response = api_client_for(bob).post(
        reverse("api:cluster-list"), {"tenant": "acme", "name": "web"}, format="json"
    )

    assert response.status_code == 201, response.data
    body = response.data
    assert (body["version"], body["worker_version"], body["instance_type"]) == (
        "v1.35.4",
        "v1.35.4",
        "m1.medium",
    )
    assert (body["control_plane_replicas"], body["worker_count"], body["worker_disk_gib"]) == (
        2,
        2,
        20,
    )
    assert body["phase"] == "pending"
    assert body["addons"] == ["cilium", "portal-access"]
    assert [step["key"] for step in body["timeline"]][:4] == [
        "control-plane",
        "endpoint",
        "control-plane-ready",
        "kubeconfig",
    ]
    assert body["created_by"] == "bob"


def test_a_refused_request_names_the_field_and_the_preview_foresees_it(bob: User) -> None:
    client = api_client_for(bob)
    payload = {"tenant": "acme", "name": "huge", "worker_count": 11, "instance_type": "m1.small"}

    preview = client.post(reverse("api:cluster-preview"), payload, format="json")
    created = client.post(reverse("api:cluster-list"), payload, format="json")

    assert preview.status_code == 200
    assert preview.data["fits"] is False
    assert set(preview.data["field_errors"]) == {"worker_count"}
    resources = {line["resource"]: line for line in preview.data["resources"]}
    assert (resources["worker_nodes"]["requested"], resources["worker_nodes"]["available"]) == (
        11,
        10,
    )
    assert created.status_code == 400
    assert set(created.data) == {"worker_count"}
    assert created.data["worker_count"] == preview.data["field_errors"]["worker_count"]
    assert not Cluster.objects.exists()


def test_the_preview_is_404_for_a_tenant_out_of_reach(gina: User, acme: Tenant) -> None:
    response = api_client_for(gina).post(
        reverse("api:cluster-preview"), {"tenant": "acme"}, format="json"
    )

    assert response.status_code == 404


def test_unknown_catalog_entries_and_bad_names_are_400_on_their_field(bob: User) -> None:
    response = api_client_for(bob).post(
        reverse("api:cluster-list"),
        {"tenant": "acme", "name": "Bad_Name", "version": "v9.9.9", "instance_type": "huge"},
        format="json",
    )

    assert response.status_code == 400
    assert set(response.data) == {"name", "version", "instance_type"}


def test_the_list_filters_by_tenant_and_phase(oscar: User, acme: Tenant, globex: Tenant) -> None:
    make_ready(make_cluster_row(acme, name="ready"))
    make_cluster_row(acme, name="pending")
    make_cluster_row(globex, name="theirs")
    url = reverse("api:cluster-list")

    assert listed_names(oscar, url, tenant="acme") == ["pending", "ready"]
    assert listed_names(oscar, url, phase="ready") == ["ready"]
    assert listed_names(oscar, url, tenant="globex", phase="pending") == ["theirs"]


def test_deleting_needs_the_name_in_the_body_or_the_query(bob: User, acme: Tenant) -> None:
    cluster = make_cluster_row(acme, name="web")

    check_deleting_needs_the_typed_name(bob, cluster_url(cluster), "web")

    assert not Cluster.objects.filter(pk=cluster.pk).exists()


def test_a_protected_cluster_is_not_deleted(bob: User, acme: Tenant) -> None:
    cluster = make_cluster_row(acme, name="web", deletion_protection=True)

    response = api_client_for(bob).delete(
        cluster_url(cluster), {"confirm_name": "web"}, format="json"
    )

    assert response.status_code == 400
    assert response.data == {"non_field_errors": ["Deletion protection is on: turn it off first."]}
    assert Cluster.objects.filter(pk=cluster.pk).exists()


ACTIONS: list[tuple[str, dict[str, Any]]] = [
    ("scale", {"worker_count": 3}),
    ("upgrade", {"version": "v1.36.3"}),
    ("hibernate", {}),
    ("protection", {"deletion_protection": True}),
]


@pytest.mark.parametrize(("action", "payload"), ACTIONS, ids=[a for a, _ in ACTIONS])
def test_day_two_actions_are_for_members_admins_and_operators(
    personas: dict[str, User], acme: Tenant, action: str, payload: dict[str, Any]
) -> None:
    cluster = make_ready(make_cluster_row(acme, name="web"))

    outcomes = write_outcomes(personas, cluster_url(cluster, action), payload)

    assert outcomes == TENANT_WRITE_OUTCOMES


def test_actions_answer_with_the_changed_cluster(bob: User, acme: Tenant) -> None:
    cluster = make_ready(make_cluster_row(acme, name="web"))
    client = api_client_for(bob)

    scaled = client.post(cluster_url(cluster, "scale"), {"worker_count": 4}, format="json")
    assert (scaled.status_code, scaled.data["worker_count"], scaled.data["phase"]) == (
        200,
        4,
        "scaling",
    )
    assert len([s for s in scaled.data["timeline"] if s["key"].startswith("worker-")]) == 4

    too_far = client.post(cluster_url(cluster, "upgrade"), {"version": "v1.34.4"}, format="json")
    assert (too_far.status_code, set(too_far.data)) == (400, {"version"})

    asleep = client.post(cluster_url(cluster, "hibernate"))
    assert asleep.status_code == 400  # still scaling: not now
    assert "not changing" in asleep.data["non_field_errors"][0]

    protected = client.post(
        cluster_url(cluster, "protection"), {"deletion_protection": True}, format="json"
    )
    assert protected.data["deletion_protection"] is True
    retried = client.post(cluster_url(cluster, "retry"))
    assert retried.status_code == 400


def test_actions_on_a_failed_cluster(bob: User, acme: Tenant) -> None:
    from clusters.provisioning import cluster_fail

    cluster = make_cluster_row(acme, name="web")
    cluster_fail(cluster_id=cluster.pk, reason="Kubernetes rejected Cluster web: no")

    detail = api_client_for(bob).get(cluster_url(cluster))
    assert (detail.data["phase"], detail.data["phase_reason"]) == (
        "failed",
        "Kubernetes rejected Cluster web: no",
    )
    assert detail.data["allowed_actions"] == ["delete", "protection", "retry"]
    retried = api_client_for(bob).post(cluster_url(cluster, "retry"))
    assert (retried.status_code, retried.data["phase"]) == (200, "pending")
    assert quota_used(acme)["clusters"] == 1


# --- Catalog --------------------------------------------------------------------------------


class TestKubernetesVersionEndpoint(CatalogEndpointTests):
    basename = "kubernetes-version"
    lookup_field = "version"

    def make_object(self, tenant: Tenant) -> KubernetesVersion:
        return KubernetesVersion.objects.create(version=f"v2.{next(numbers)}.0")

    def create_payload(self) -> dict[str, Any]:
        return {"version": f"v3.{next(numbers)}.0", "status": "supported"}

    def update_payload(self) -> dict[str, Any]:
        return {"status": "deprecated"}


class TestInstanceTypeEndpoint(CatalogEndpointTests):
    basename = "instance-type"
    lookup_field = "name"

    def make_object(self, tenant: Tenant) -> InstanceType:
        return InstanceType.objects.create(name=f"t{next(numbers)}.small", vcpu=1, memory_mib=1024)

    def create_payload(self) -> dict[str, Any]:
        return {"name": f"n{next(numbers)}.large", "vcpu": 4, "memory_mib": 8192}

    def update_payload(self) -> dict[str, Any]:
        return {"description": "Retired soon", "active": False}


class TestClusterAddonEndpoint(CatalogEndpointTests):
    basename = "cluster-addon"
    lookup_field = "name"

    def make_object(self, tenant: Tenant) -> ClusterAddon:
        return ClusterAddon.objects.create(
            name=f"addon-{next(numbers)}",
            repository_url="https://charts.example.test/",
            chart="thing",
            version="1.x",
        )

    def create_payload(self) -> dict[str, Any]:
        return {
            "name": f"extra-{next(numbers)}",
            "repository_url": "oci://registry.example.test/charts",
            "chart": "extra",
            "version": "2.x",
            "values": "replicas: 2\n",
        }

    def update_payload(self) -> dict[str, Any]:
        return {"version": "3.x"}


def test_there_is_one_default_version_and_it_moves(oscar: User) -> None:
    client = api_client_for(oscar)
    url = reverse("api:kubernetes-version-detail", args=["v1.36.3"])

    promoted = client.patch(url, {"status": "default"}, format="json")
    demoted = client.patch(url, {"status": "supported"}, format="json")

    assert promoted.status_code == 200, promoted.data
    assert list(
        KubernetesVersion.objects.filter(status="default").values_list("version", flat=True)
    ) == ["v1.36.3"]
    assert version("v1.35.4").status == "supported"
    assert (demoted.status_code, demoted.data) == (
        400,
        {"status": ["Make another version the default first."]},
    )
    changes = [
        e.changes
        for e in AuditEvent.objects.filter(object_type="kubernetesversion", action="update")
    ]
    assert {"status": ["default", "supported"]} in changes
    assert {"status": ["supported", "default"]} in changes


def test_an_instance_type_in_use_keeps_its_size(oscar: User, acme: Tenant) -> None:
    make_cluster_row(acme, name="web")
    client = api_client_for(oscar)

    resized = client.patch(
        reverse("api:instance-type-detail", args=["m1.medium"]), {"vcpu": 3}, format="json"
    )
    retired = client.patch(
        reverse("api:instance-type-detail", args=["m1.medium"]), {"active": False}, format="json"
    )

    assert (resized.status_code, set(resized.data)) == (400, {"vcpu"})
    assert retired.status_code == 200
    assert InstanceType.objects.get(name="m1.medium").vcpu == 2


def test_add_on_values_must_be_a_yaml_mapping(oscar: User) -> None:
    response = api_client_for(oscar).post(
        reverse("api:cluster-addon-list"),
        {
            "name": "broken",
            "repository_url": "https://charts.example.test/",
            "chart": "broken",
            "version": "1.x",
            "values": "- just\n- a list\n",
        },
        format="json",
    )

    assert (response.status_code, set(response.data)) == (400, {"values"})


def test_catalog_writes_are_for_operators_even_on_unknown_rows(bob: User, nobody: User) -> None:
    # The tenant persona and the tenantless one both get 403 on writes, 404 on missing rows.
    for user in (bob, nobody):
        client = api_client_for(user)
        assert (
            client.patch(
                reverse("api:kubernetes-version-detail", args=["v1.35.4"]),
                {"status": "deprecated"},
                format="json",
            ).status_code
            == 403
        )
        assert (
            client.get(reverse("api:kubernetes-version-detail", args=["v9.9.9"])).status_code == 404
        )


def test_quota_of_another_tenant_is_untouched_by_requests(bob: User, acme: Tenant) -> None:
    other = make_tenant("initech", "Initech")
    api_client_for(bob).post(
        reverse("api:cluster-list"), {"tenant": "acme", "name": "web"}, format="json"
    )

    assert quota_used(acme)["clusters"] == 1
    assert quota_used(other)["clusters"] == 0
