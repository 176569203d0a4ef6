"""Networks in the API: a tenant's network; subnet pools and load-balancer ranges.

The pool and range endpoints run the generic permission, audit, token and query-count tests
of ``tests/api_mixin.py``; the rules of the address plan (IPv4, no overlap, nothing shrinks
under a tenant) are checked here through the API, which hands them to the services.
"""

from __future__ import annotations

import itertools
from typing import Any

from django.db import transaction
from django.urls import reverse

from tenants import services
from tenants.audit import Actor
from tenants.models import (
    ApiToken,
    AuditEvent,
    LoadBalancerRange,
    SubnetPool,
    Tenant,
    TenantNetwork,
    User,
)
from tenants.network import network_allocate
from tests.api_mixin import PERSONAS, APIEndpointTests, token_client_for, write_outcomes
from tests.conftest import api_client_for

numbers = itertools.count(1)
POOLS = reverse("api:subnet-pool-list")
RANGES = reverse("api:load-balancer-range-list")


def network_url(slug: str) -> str:
    return reverse("api:tenant-network", args=[slug])


def pool_url(pool: SubnetPool) -> str:
    return reverse("api:subnet-pool-detail", args=[pool.pk])


def range_url(address_range: LoadBalancerRange) -> str:
    return reverse("api:load-balancer-range-detail", args=[address_range.pk])


class TestSubnetPoolEndpoint(APIEndpointTests):
    basename = "subnet-pool"
    viewers = globex_viewers = frozenset({"oscar", "audrey"})
    creators = updaters = deleters = frozenset({"oscar"})
    platform_only = True
    list_as = "oscar"

    def make_object(self, tenant: Tenant) -> SubnetPool:
        number = next(numbers)
        return SubnetPool.objects.create(name=f"pool-{number}", cidr=f"10.{number}.0.0/16")

    def create_payload(self) -> dict[str, Any]:
        return {"name": "new-pool", "cidr": "172.16.0.0/16", "subnet_prefix_length": 25}

    def update_payload(self) -> dict[str, Any]:
        return {"name": "renamed"}


class TestLoadBalancerRangeEndpoint(APIEndpointTests):
    basename = "load-balancer-range"
    viewers = globex_viewers = frozenset({"oscar", "audrey"})
    creators = deleters = frozenset({"oscar"})
    platform_only = True
    list_as = "oscar"

    def make_object(self, tenant: Tenant) -> LoadBalancerRange:
        number = next(numbers)
        return LoadBalancerRange.objects.create(
            name=f"range-{number}",
            first_address=f"198.18.{number}.1",
            last_address=f"198.18.{number}.20",
        )

    def create_payload(self) -> dict[str, Any]:
        return {"name": "new-range", "first_address": "203.0.113.1", "last_address": "203.0.113.9"}


def onboard(oscar: User, slug: str, load_balancer_ips: int = 2) -> Tenant:
    return services.tenant_create(
        actor=Actor(oscar),
        slug=slug,
        name=slug.title(),
        limits={"load_balancer_ips": load_balancer_ips},
    )


# --- A tenant's network ---------------------------------------------------------------------


def test_a_tenants_network_is_for_the_viewers_of_the_tenant(
    personas: dict[str, User], acme: Tenant, address_space: LoadBalancerRange
) -> None:
    with transaction.atomic():
        network_allocate(tenant=acme)
    statuses = {
        p: api_client_for(personas[p]).get(network_url("acme")).status_code for p in PERSONAS
    }
    assert statuses == {
        "alice": 200,
        "bob": 200,
        "carol": 200,
        "oscar": 200,
        "audrey": 200,
        "gina": 404,
        "nobody": 404,
    }
    assert api_client_for(None).get(network_url("acme")).status_code == 401
    read_only, _ = token_client_for(personas["carol"], ApiToken.Scope.READ)
    assert read_only.get(network_url("acme")).status_code == 200
    assert api_client_for(personas["oscar"]).post(network_url("acme")).status_code == 405


def test_a_tenants_network_as_reported(
    carol: User, acme: Tenant, address_space: LoadBalancerRange
) -> None:
    with transaction.atomic():
        network_allocate(tenant=acme)
    TenantNetwork.objects.filter(tenant=acme).update(
        state=TenantNetwork.State.PROVISIONING,
        vpc_ready=True,
        subnet_used_ips=4,
        subnet_available_ips=239,
    )
    data = api_client_for(carol).get(network_url("acme")).json()
    data.pop("updated_at")
    assert data == {
        "tenant": "acme",
        "namespace": "tenant-acme",
        "state": "provisioning",
        "message": "Waiting for the subnet and the load-balancer address pool to be ready.",
        "subnet_cidr": "10.200.0.0/24",
        "gateway": "10.200.0.1",
        "vpc_ready": True,
        "subnet_ready": False,
        "address_pool_ready": False,
        "subnet_addresses": {"used": 4, "free": 239, "total": 243},
        "load_balancer_ranges": ["192.0.2.10-192.0.2.14"],
        "load_balancer_addresses": 5,
        "load_balancer_quota": 5,
        "load_balancer_usage": None,
    }


def test_a_tenant_without_a_network_is_404_with_a_reason(carol: User, acme: Tenant) -> None:
    response = api_client_for(carol).get(network_url("acme"))
    assert response.status_code == 404
    assert response.data["detail"] == "No network has been allocated to this tenant."


# --- Retrying a failed network -------------------------------------------------------------

REFUSAL = "Kubernetes rejected the network: Vpc.kubeovn.io tenant-acme: spec.namespaces: bad"


def retry_url(slug: str) -> str:
    return reverse("api:tenant-network-retry", args=[slug])


def failed_network(tenant: Tenant) -> TenantNetwork:
    with transaction.atomic():
        network_allocate(tenant=tenant)
    TenantNetwork.objects.filter(tenant=tenant).update(
        state=TenantNetwork.State.FAILED, message=REFUSAL
    )
    return TenantNetwork.objects.get(tenant=tenant)


def test_only_operators_may_retry_a_tenants_network(
    personas: dict[str, User], acme: Tenant, address_space: LoadBalancerRange
) -> None:
    failed_network(acme)

    # Those who can see the tenant are refused (403); the rest do not find it (404).
    assert write_outcomes(personas, retry_url("acme"), {}) == {
        "alice": (403, False),
        "bob": (403, False),
        "carol": (403, False),
        "gina": (404, False),
        "oscar": (200, True),
        "audrey": (403, False),
        "nobody": (404, False),
    }
    assert api_client_for(None).post(retry_url("acme")).status_code == 401
    read_only, _ = token_client_for(personas["oscar"], ApiToken.Scope.READ)
    refused = read_only.post(retry_url("acme"))
    assert (refused.status_code, str(refused.data["detail"])) == (
        403,
        "This API token is read-only.",
    )
    assert TenantNetwork.objects.get(tenant=acme).state == TenantNetwork.State.FAILED
    writer, _ = token_client_for(personas["oscar"], ApiToken.Scope.WRITE)
    assert writer.post(retry_url("acme")).status_code == 200


def test_a_retry_answers_with_the_network_on_its_way_and_applies_it_again(
    oscar: User,
    acme: Tenant,
    address_space: LoadBalancerRange,
    django_capture_on_commit_callbacks: Any,
) -> None:
    network = failed_network(acme)
    client = api_client_for(oscar)
    assert client.get(network_url("acme")).data["message"] == REFUSAL

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(retry_url("acme"))

    assert (response.status_code, response.data["state"], response.data["tenant"]) == (
        200,
        "provisioning",
        "acme",
    )
    event = AuditEvent.objects.get(action="retry", object_type="tenantnetwork")
    assert (event.actor, event.object_id, event.changes) == (
        oscar,
        str(network.pk),
        {"previous_error": REFUSAL},
    )
    # The apply task ran once the retry committed; without Kubernetes it says so.
    after = client.get(network_url("acme")).data
    assert (after["state"], after["message"]) == ("pending", "No Kubernetes cluster is configured.")
    again = client.post(retry_url("acme"))
    assert (again.status_code, again.data) == (
        400,
        {
            "non_field_errors": [
                "Only a failed network can be retried; the network of acme is pending."
            ]
        },
    )


def test_retrying_the_network_of_a_tenant_without_one_is_a_400(oscar: User, acme: Tenant) -> None:
    response = api_client_for(oscar).post(retry_url("acme"))

    assert (response.status_code, response.data) == (
        400,
        {"non_field_errors": ["acme has no network to retry."]},
    )


# --- Usage ----------------------------------------------------------------------------------


def test_pools_and_ranges_show_their_usage(oscar: User, address_space: LoadBalancerRange) -> None:
    onboard(oscar, "acme", load_balancer_ips=5)
    onboard(oscar, "globex", load_balancer_ips=2)
    TenantNetwork.objects.filter(tenant__slug="acme").update(subnet_used_ips=7)
    client = api_client_for(oscar)
    pools = client.get(POOLS).json()["results"]
    ranges = client.get(RANGES).json()["results"]
    assert [(pool["name"], pool["cidr"], pool["usage"]) for pool in pools] == [
        (
            "default",
            "10.200.0.0/16",
            {
                "tenants": 2,
                "capacity": 256,
                "total_addresses": 65536,
                "allocated_addresses": 512,
                "free_addresses": 65024,
                "addresses_in_use": 7,
            },
        )
    ]
    assert ranges[0]["usage"] == {
        "size": 90,
        "allocated": 7,
        "free": 83,
        "holders": [
            {"tenant": "acme", "ranges": ["192.0.2.10-192.0.2.14"], "addresses": 5},
            {"tenant": "globex", "ranges": ["192.0.2.15-192.0.2.16"], "addresses": 2},
        ],
    }
    one = client.get(range_url(address_space)).json()
    assert one["usage"] == ranges[0]["usage"]


# --- The rules of the address plan ----------------------------------------------------------


def test_pools_must_be_ipv4_networks_that_overlap_nothing(
    oscar: User, address_space: LoadBalancerRange
) -> None:
    SubnetPool.objects.create(name="default", cidr="10.200.0.0/16")
    client = api_client_for(oscar)

    def refusal(**payload: Any) -> dict[str, Any]:
        response = client.post(
            POOLS, {"name": "more", "cidr": "10.201.0.0/16", **payload}, format="json"
        )
        assert response.status_code == 400, response.data
        return dict(response.data)

    assert refusal(cidr="10.200.4.0/22") == {
        "cidr": ["Overlaps the subnet pool default (10.200.0.0/16)."]
    }
    assert refusal(cidr="10.0.0.0/8") == {
        "cidr": ["Overlaps the subnet pool default (10.200.0.0/16)."]
    }
    assert refusal(cidr="192.0.0.0/16") == {
        "cidr": ["Overlaps the load-balancer range test-public (192.0.2.10-192.0.2.99)."]
    }
    assert refusal(cidr="fd00::/64") == {
        "cidr": ["Enter an IPv4 network in CIDR notation, e.g. 10.200.0.0/16."]
    }
    assert refusal(subnet_prefix_length=12) == {
        "subnet_prefix_length": ["Choose a size from /16 (the whole pool) to /28."]
    }
    assert refusal(subnet_prefix_length=30) == {
        "subnet_prefix_length": ["Choose a size from /16 (the whole pool) to /28."]
    }
    assert refusal(name="Not A Label", cidr="bad") == {
        "name": [
            "Use 1–63 lowercase letters, digits or hyphens, starting with a letter and not "
            "ending with a hyphen."
        ],
        "cidr": ["Enter an IPv4 network in CIDR notation, e.g. 10.200.0.0/16."],
    }
    assert SubnetPool.objects.count() == 1


def test_ranges_must_be_usable_ipv4_addresses_that_overlap_nothing(
    oscar: User, address_space: LoadBalancerRange
) -> None:
    SubnetPool.objects.create(name="default", cidr="10.200.0.0/16")
    client = api_client_for(oscar)

    def refusal(first: str, last: str) -> dict[str, Any]:
        payload = {"name": "more", "first_address": first, "last_address": last}
        response = client.post(RANGES, payload, format="json")
        assert response.status_code == 400, response.data
        return dict(response.data)

    assert refusal("192.0.2.99", "192.0.2.120") == {
        "first_address": ["Overlaps the load-balancer range test-public (192.0.2.10-192.0.2.99)."]
    }
    assert refusal("10.199.255.250", "10.200.0.5") == {
        "last_address": ["Overlaps the subnet pool default (10.200.0.0/16)."]
    }
    assert refusal("224.0.0.1", "224.0.0.9") == {
        "first_address": ["224.0.0.1 cannot be given to a load balancer."],
        "last_address": ["224.0.0.9 cannot be given to a load balancer."],
    }
    assert refusal("203.0.113.9", "203.0.113.1") == {
        "last_address": ["Must not come before the first address."]
    }
    assert refusal("203.0.113", "203.0.113.300") == {
        "first_address": ["Enter an IPv4 address, e.g. 192.0.2.10."],
        "last_address": ["Enter an IPv4 address, e.g. 192.0.2.10."],
    }
    assert LoadBalancerRange.objects.count() == 1


def test_a_pool_cannot_shrink_below_its_tenants_subnets(oscar: User) -> None:
    onboard(oscar, "acme", load_balancer_ips=0)  # gets 10.200.0.0/24 from the default pool
    pool = SubnetPool.objects.get()
    client = api_client_for(oscar)

    refused = client.patch(pool_url(pool), {"cidr": "10.200.128.0/17"}, format="json")
    assert refused.status_code == 400
    assert refused.data == {
        "cidr": [
            "10.200.128.0/17 would leave out the subnets of acme: a pool cannot shrink below "
            "what tenants hold."
        ]
    }
    shrunk = client.patch(pool_url(pool), {"cidr": "10.200.0.0/17"}, format="json")
    assert shrunk.status_code == 200
    assert shrunk.data["usage"]["capacity"] == 128


def test_a_new_subnet_size_applies_to_new_tenants_only(oscar: User) -> None:
    onboard(oscar, "acme", load_balancer_ips=0)
    pool = SubnetPool.objects.get()
    changed = api_client_for(oscar).patch(
        pool_url(pool), {"subnet_prefix_length": 26}, format="json"
    )
    assert changed.status_code == 200
    onboard(oscar, "globex", load_balancer_ips=0)
    subnets = dict(TenantNetwork.objects.values_list("tenant__slug", "subnet_cidr"))
    assert subnets == {"acme": "10.200.0.0/24", "globex": "10.200.1.0/26"}


def test_pools_and_ranges_held_by_tenants_cannot_be_deleted(
    oscar: User, address_space: LoadBalancerRange
) -> None:
    onboard(oscar, "acme", load_balancer_ips=1)
    pool = SubnetPool.objects.get()
    SubnetPool.objects.create(name="spare", cidr="10.99.0.0/16")
    client = api_client_for(oscar)
    answers = {
        "pool": client.delete(pool_url(pool)),
        "range": client.delete(range_url(address_space)),
    }
    assert {name: (r.status_code, r.data) for name, r in answers.items()} == {
        "pool": (
            400,
            {
                "non_field_errors": [
                    "Tenants hold subnets in default (acme): it can be deleted once they are gone."
                ]
            },
        ),
        "range": (
            400,
            {
                "non_field_errors": [
                    "Tenants hold addresses in test-public (acme): it can be deleted once they "
                    "have none there."
                ]
            },
        ),
    }
    # Once the tenant's quota frees its addresses, the range can go.
    services.quota_update(
        actor=Actor(oscar), tenant=Tenant.objects.get(slug="acme"), limits={"load_balancer_ips": 0}
    )
    assert client.delete(range_url(address_space)).status_code == 204
