"""Tenant networks in the browser portal: the tenant's panel and the operator's address plan.

acme: alice admin, bob member, carol viewer; globex: gina admin; oscar operator, audrey
auditor, nobody without a tenant.
"""

from __future__ import annotations

import html
from typing import Any

import pytest
from django.db import transaction
from django.urls import reverse

from tenants import services
from tenants.audit import Actor
from tenants.models import (
    AuditEvent,
    LoadBalancerRange,
    Quota,
    SubnetPool,
    Tenant,
    TenantNetwork,
    User,
)
from tenants.network import network_allocate, network_observe
from tests.conftest import browser_client_for
from tests.ui.conftest import check_dialog_and_page, errors_of, htmx, queries_for_get

EVERYONE = ("alice", "bob", "carol", "gina", "oscar", "audrey", "nobody")
NETWORKS = reverse("operator-networks")
POOL_CREATE = reverse("operator-network-pool-create")
RANGE_CREATE = reverse("operator-network-range-create")


def network_of(tenant: Tenant, **reported: Any) -> TenantNetwork:
    """Allocate the tenant's subnet and load-balancer share, then set what controllers said."""
    with transaction.atomic():
        network_allocate(tenant=tenant)
    TenantNetwork.objects.filter(tenant=tenant).update(**reported)
    return TenantNetwork.objects.get(tenant=tenant)


def panel(user: User, slug: str = "acme") -> Any:
    return browser_client_for(user).get(
        reverse("tenant-network", args=[slug]), headers=htmx("network-panel")
    )


# --- The tenant's panel ---------------------------------------------------------------------


def test_every_viewer_of_the_tenant_sees_its_network(
    personas: dict[str, User], acme: Tenant, address_space: LoadBalancerRange
) -> None:
    network_of(acme)
    outcomes = {}
    for name in EVERYONE:
        response = panel(personas[name])
        outcomes[name] = (response.status_code, b"10.200.0.0/24" in response.content)
    assert outcomes == {
        "alice": (200, True),
        "bob": (200, True),
        "carol": (200, True),
        "oscar": (200, True),
        "audrey": (200, True),
        "gina": (404, False),
        "nobody": (404, False),
    }
    anonymous = browser_client_for(None).get(reverse("tenant-network", args=["acme"]))
    assert anonymous.status_code == 302
    assert anonymous["Location"].startswith(reverse("login"))


def test_the_panel_shows_addresses_and_what_is_still_missing(
    carol: User, acme: Tenant, address_space: LoadBalancerRange
) -> None:
    network_of(acme, state=TenantNetwork.State.PROVISIONING, vpc_ready=True)
    text = panel(carol).content.decode()
    assert text.lstrip().startswith('<div class="network-body" data-state="provisioning"')
    assert "<html" not in text
    assert '<dd class="mono">tenant-acme</dd>' in text
    assert '<dd class="mono">10.200.0.1</dd>' in text  # the gateway
    assert "Waiting for the subnet and the load-balancer address pool to be ready." in text
    assert text.count('class="is-ready"') == 1  # the VPC
    assert text.count('class="is-waiting"') == 2
    assert '<span class="spinner"' in text
    assert "192.0.2.10-192.0.2.14" in text  # acme's quota allows 5 addresses
    assert "5 reserved for Acme Corp · quota 5" in text
    assert "Address usage shows once Kube-OVN reports it." in text


def test_a_ready_network_shows_usage_bars_and_no_spinner(
    carol: User, acme: Tenant, address_space: LoadBalancerRange
) -> None:
    network_of(
        acme,
        state=TenantNetwork.State.READY,
        vpc_ready=True,
        subnet_ready=True,
        address_pool_ready=True,
        subnet_used_ips=3,
        subnet_available_ips=240,
        lb_assigned_ips=2,
        lb_available_ips=3,
    )
    text = panel(carol).content.decode()
    assert '<span class="badge badge-green network-state">Ready</span>' in text
    assert "spinner" not in text
    assert 'aria-label="Subnet addresses: 3 of 243 used"' in text
    assert 'aria-label="Load-balancer addresses: 2 of 5 used"' in text


def test_a_failed_network_says_why_in_plain_words(
    bob: User, acme: Tenant, address_space: LoadBalancerRange
) -> None:
    network_of(
        acme,
        state=TenantNetwork.State.FAILED,
        vpc_ready=True,
        message="Subnet error: the CIDR overlaps another subnet",
    )
    text = panel(bob).content.decode()
    assert '<span class="badge badge-red network-state">Failed</span>' in text
    assert "Subnet error: the CIDR overlaps another subnet" in text
    assert text.count('class="is-failed"') == 2  # the subnet and the address pool
    assert "spinner" not in text


def test_a_subnet_error_from_kube_ovn_reads_in_plain_words(
    bob: User, acme: Tenant, address_space: LoadBalancerRange
) -> None:
    network = network_of(acme, state=TenantNetwork.State.PROVISIONING, vpc_ready=True)
    network_observe(
        kind="Subnet",
        obj={
            "metadata": {"name": network.namespace},
            "status": {
                "conditions": [
                    {"type": "Ready", "status": "False", "reason": "ValidateLogicalSwitchFailed"},
                    {
                        "type": "Error",
                        "status": "True",
                        "reason": "ValidateLogicalSwitchFailed",
                        "message": "cidr 10.200.0.0/24 conflicts with subnet ovn-default",
                    },
                ]
            },
        },
    )

    text = html.unescape(panel(bob).content.decode())

    assert (
        "The subnet's address range overlaps another network. The platform operators need to "
        "look at it."
    ) in text
    assert "conflicts with subnet" not in text
    assert "ovn-default" not in text


def test_a_failed_network_tells_tenants_it_is_in_the_operators_hands(
    personas: dict[str, User], acme: Tenant, address_space: LoadBalancerRange
) -> None:
    network_of(acme, state=TenantNetwork.State.FAILED, message="Kubernetes refused the network")
    for name in ("alice", "bob", "carol"):
        text = panel(personas[name]).content.decode()
        assert "This is in the platform operators' hands" in text, name
        assert "Nothing in Acme Corp can fix it" in text, name
        assert reverse("operator-tenant", args=["acme"]) not in text, name
    # Operators are pointed to where they retry it.
    text = panel(personas["oscar"]).content.decode()
    assert "platform operators' hands" not in text
    assert f'<a href="{reverse("operator-tenant", args=["acme"])}">retry the network' in text


def test_a_network_that_has_not_failed_says_nothing_of_operators(
    alice: User, acme: Tenant, address_space: LoadBalancerRange
) -> None:
    network_of(acme, state=TenantNetwork.State.PROVISIONING)
    text = panel(alice).content.decode()
    assert "network-failure-note" not in text
    assert "operators" not in text


def test_a_tenant_without_load_balancer_addresses_needs_no_address_pool(
    carol: User, acme: Tenant
) -> None:
    Quota.objects.filter(tenant=acme).update(load_balancer_ips=0)
    network_of(acme)
    text = panel(carol).content.decode()
    assert "Not needed" in text
    assert "the quota includes no load-balancer addresses" in text
    assert "Waiting to be set up in Kubernetes." in text


def test_a_tenant_without_a_network_gets_an_explanation(carol: User, acme: Tenant) -> None:
    assert "No network yet" in panel(carol).content.decode()


def test_dashboard_and_operator_page_load_the_panel_and_refresh_it_on_events(
    alice: User, oscar: User, acme: Tenant, address_space: LoadBalancerRange
) -> None:
    network_of(acme)
    url = reverse("tenant-network", args=["acme"])
    dashboard = browser_client_for(alice).get(reverse("tenant-dashboard", args=["acme"]))
    operator_page = browser_client_for(oscar).get(reverse("operator-tenant", args=["acme"]))
    for page in (dashboard.content.decode(), operator_page.content.decode()):
        assert f'<div id="network-panel" class="card-body network-panel" hx-get="{url}"' in page
        assert (
            'hx-trigger="load, portal:network.changed from:body, portal:resync from:body"' in page
        )
        assert 'hx-sync="this:queue last"' in page
        assert "10.200.0.0/24" not in page  # the panel loads after the page


def test_the_network_page_is_in_the_tenant_navigation(
    carol: User, acme: Tenant, address_space: LoadBalancerRange
) -> None:
    network_of(acme)
    url = reverse("tenant-network", args=["acme"])
    page = browser_client_for(carol).get(url).content.decode()
    assert f'<a class="nav-link" href="{url}" aria-current="page">' in page
    assert "How the network works" in page
    assert "10.200.0.0/24" in page  # rendered in place: works without JavaScript
    assert 'hx-trigger="portal:network.changed from:body, portal:resync from:body"' in page


# --- The operator's address plan ------------------------------------------------------------


def test_only_platform_staff_reach_the_networks_page(personas: dict[str, User]) -> None:
    statuses = {
        name: browser_client_for(personas[name]).get(NETWORKS).status_code for name in EVERYONE
    }
    assert statuses == {name: 200 if name in {"oscar", "audrey"} else 403 for name in EVERYONE}


def test_the_sidenav_offers_networks_to_platform_staff_only(
    personas: dict[str, User], acme: Tenant
) -> None:
    link = f'href="{NETWORKS}"'
    shown = {
        name: link in browser_client_for(personas[name]).get(reverse("tokens")).content.decode()
        for name in EVERYONE
    }
    assert shown == {name: name in {"oscar", "audrey"} for name in EVERYONE}


def test_pools_and_ranges_show_what_tenants_hold(
    oscar: User, address_space: LoadBalancerRange
) -> None:
    actor = Actor(oscar)
    services.tenant_create(
        actor=actor, slug="acme", name="Acme Corp", limits={"load_balancer_ips": 5}
    )
    services.tenant_create(
        actor=actor, slug="globex", name="Globex", limits={"load_balancer_ips": 2}
    )
    text = browser_client_for(oscar).get(NETWORKS).content.decode()
    assert '<span class="cell-main mono">10.200.0.0/16</span>' in text
    assert 'aria-label="Tenant subnets: 2 of 256 used"' in text
    assert "65,024" in text  # free addresses: 65,536 less two /24s
    assert 'aria-label="Allocated addresses: 7 of 90 used"' in text
    assert "192.0.2.10-192.0.2.14" in text
    assert "192.0.2.15-192.0.2.16" in text
    assert ">Acme Corp</a>" in text
    assert ">Globex</a>" in text
    # Held pools and ranges offer no delete button.
    assert reverse("operator-network-range-delete", args=[address_space.pk]) not in text
    assert "Add a subnet pool" in text


def test_auditors_read_without_controls_and_cannot_post(
    audrey: User, address_space: LoadBalancerRange
) -> None:
    client = browser_client_for(audrey)
    text = client.get(NETWORKS).content.decode()
    assert "192.0.2.10 – 192.0.2.99" in text
    assert "You have read-only access." in text
    assert "Add a subnet pool" not in text
    assert "Add a load-balancer range" not in text
    assert reverse("operator-network-range-delete", args=[address_space.pk]) not in text
    attempts = {
        "pool": client.post(POOL_CREATE, {"name": "x", "cidr": "10.9.0.0/16"}).status_code,
        "range": client.post(
            RANGE_CREATE,
            {"name": "x", "first_address": "198.51.100.1", "last_address": "198.51.100.9"},
        ).status_code,
        "delete": client.post(
            reverse("operator-network-range-delete", args=[address_space.pk])
        ).status_code,
    }
    assert attempts == {"pool": 403, "range": 403, "delete": 403}
    assert LoadBalancerRange.objects.count() == 1
    assert not SubnetPool.objects.exists()


def test_adding_a_pool(oscar: User) -> None:
    client = browser_client_for(oscar)
    response = client.post(
        POOL_CREATE, {"name": "dc2", "cidr": "10.201.0.0/16", "subnet_prefix_length": "26"}
    )
    assert response.status_code == 302
    assert response["Location"] == NETWORKS
    pool = SubnetPool.objects.get(name="dc2")
    assert (pool.cidr, pool.subnet_prefix_length) == ("10.201.0.0/16", 26)
    event = AuditEvent.objects.get(object_type="subnet_pool")
    assert (event.action, event.actor_username, event.changes["cidr"]) == (
        "create",
        "oscar",
        "10.201.0.0/16",
    )
    assert "Subnet pool dc2 (10.201.0.0/16) was added." in client.get(NETWORKS).content.decode()


@pytest.mark.parametrize(
    ("cidr", "error"),
    [
        ("10.200.128.0/17", "Overlaps the subnet pool default (10.200.0.0/16)."),
        ("10.300.0.0/16", "Enter an IPv4 network in CIDR notation, e.g. 10.200.0.0/16."),
        ("10.201.0.1/16", "10.201.0.1/16 has host bits set: did you mean 10.201.0.0/16?"),
        ("192.0.2.0/24", "Overlaps the load-balancer range test-public (192.0.2.10-192.0.2.99)."),
    ],
)
def test_a_refused_pool_shows_the_reason_on_the_field_and_keeps_the_input(
    cidr: str, error: str, oscar: User, address_space: LoadBalancerRange
) -> None:
    SubnetPool.objects.create(name="default", cidr="10.200.0.0/16")
    response = browser_client_for(oscar).post(
        POOL_CREATE,
        {"name": "second", "cidr": cidr, "subnet_prefix_length": "25"},
        headers=htmx("pool-form-card"),
    )
    text = response.content.decode()
    assert text.lstrip().startswith('<section id="pool-form-card"')  # only the form, in place
    assert 'id="pool-cidr_error"' in text
    assert error in text
    assert 'value="second"' in text
    assert f'value="{cidr}"' in text
    assert '<option value="25" selected>' in text
    assert SubnetPool.objects.count() == 1
    assert not AuditEvent.objects.exists()


def test_every_field_error_of_a_pool_shows_at_once(oscar: User) -> None:
    SubnetPool.objects.create(name="default", cidr="10.200.0.0/16")
    text = (
        browser_client_for(oscar)
        .post(POOL_CREATE, {"name": "default", "cidr": "nonsense", "subnet_prefix_length": "24"})
        .content.decode()
    )
    assert "There is already one named default." in text
    assert "Enter an IPv4 network in CIDR notation" in text
    assert "<h1>Networks</h1>" in text  # without htmx: the whole page, form errors included


def test_the_subnet_size_must_fit_in_the_pool(oscar: User) -> None:
    text = (
        browser_client_for(oscar)
        .post(POOL_CREATE, {"name": "tiny", "cidr": "10.9.0.0/29", "subnet_prefix_length": "28"})
        .content.decode()
    )
    assert 'id="pool-subnet_prefix_length_error"' in text
    assert "Choose a size from /29 (the whole pool) to /28." in text


def test_adding_a_range_and_its_refusals(oscar: User, address_space: LoadBalancerRange) -> None:
    client = browser_client_for(oscar)

    def refusal(first: str, last: str) -> str:
        response = client.post(
            RANGE_CREATE,
            {"name": "more", "first_address": first, "last_address": last},
            headers=htmx("range-form-card"),
        )
        text = response.content.decode()
        assert text.lstrip().startswith('<section id="range-form-card"')
        assert f'value="{first}"' in text
        assert f'value="{last}"' in text
        return text

    assert "Must not come before the first address." in refusal("198.51.100.9", "198.51.100.1")
    assert "Enter an IPv4 address, e.g. 192.0.2.10." in refusal("198.51.100.1", "198.51.100.300")
    inside = refusal("192.0.2.50", "192.0.2.120")
    assert 'id="range-first_address_error"' in inside
    assert "Overlaps the load-balancer range test-public (192.0.2.10-192.0.2.99)." in inside
    swallowing = refusal("192.0.2.1", "192.0.2.200")
    assert 'id="range-last_address_error"' in swallowing
    assert LoadBalancerRange.objects.count() == 1

    added = client.post(
        RANGE_CREATE,
        {"name": "more", "first_address": "198.51.100.1", "last_address": "198.51.100.9"},
        headers=htmx("range-form-card"),
    )
    assert added["HX-Redirect"] == NETWORKS
    assert LoadBalancerRange.objects.filter(name="more", last_address="198.51.100.9").exists()


def test_deleting_is_refused_while_tenants_hold_addresses(
    oscar: User, address_space: LoadBalancerRange
) -> None:
    services.tenant_create(
        actor=Actor(oscar), slug="acme", name="Acme", limits={"load_balancer_ips": 1}
    )
    default = SubnetPool.objects.get()
    SubnetPool.objects.create(name="spare", cidr="10.99.0.0/16")
    client = browser_client_for(oscar)

    pool_delete = reverse("operator-network-pool-delete", args=[default.pk])
    range_delete = reverse("operator-network-range-delete", args=[address_space.pk])
    pool_text = client.post(pool_delete, headers=htmx("modal-body")).content.decode()
    range_text = client.post(range_delete, headers=htmx("modal-body")).content.decode()

    assert (
        "Tenants hold subnets in default (acme): it can be deleted once they are gone." in pool_text
    )
    assert (
        "Tenants hold addresses in test-public (acme): it can be deleted once they have none there."
        in range_text
    )
    assert SubnetPool.objects.filter(pk=default.pk).exists()
    assert LoadBalancerRange.objects.filter(pk=address_space.pk).exists()
    assert not AuditEvent.objects.filter(action="delete").exists()


def test_deleting_free_pools_and_ranges_but_never_the_last_pool(
    oscar: User, address_space: LoadBalancerRange
) -> None:
    first = SubnetPool.objects.create(name="first", cidr="10.98.0.0/16")
    second = SubnetPool.objects.create(name="second", cidr="10.99.0.0/16")
    client = browser_client_for(oscar)

    dialog = client.get(
        reverse("operator-network-pool-delete", args=[first.pk]), headers=htmx("modal-body")
    ).content.decode()
    assert "Delete the subnet pool first?" in dialog
    gone = client.post(reverse("operator-network-pool-delete", args=[first.pk]))
    assert gone["Location"] == NETWORKS
    last = client.post(reverse("operator-network-pool-delete", args=[second.pk]))
    assert (
        "This is the last subnet pool: add another one before deleting it." in last.content.decode()
    )
    assert list(SubnetPool.objects.values_list("name", flat=True)) == ["second"]

    client.post(reverse("operator-network-range-delete", args=[address_space.pk]))
    assert not LoadBalancerRange.objects.exists()
    deletions = AuditEvent.objects.filter(action="delete").values_list("object_type", flat=True)
    assert sorted(deletions) == ["load_balancer_range", "subnet_pool"]


def test_networks_page_query_count_is_constant(oscar: User) -> None:
    actor = Actor(oscar)

    def grow(first: int, last: int) -> None:
        for number in range(first, last):
            SubnetPool.objects.create(name=f"pool-{number}", cidr=f"10.{100 + number}.0.0/16")
            LoadBalancerRange.objects.create(
                name=f"range-{number}",
                first_address=f"198.51.{number}.1",
                last_address=f"198.51.{number}.50",
            )
            services.tenant_create(
                actor=actor, slug=f"t{number}", name=f"T{number}", limits={"load_balancer_ips": 2}
            )

    client = browser_client_for(oscar)
    grow(0, 2)
    few = queries_for_get(client, NETWORKS)
    grow(2, 12)
    assert queries_for_get(client, NETWORKS) == few


# --- Retrying a failed network from the operator's tenant page ------------------------------

NETWORK_RETRY = reverse("operator-tenant-network-retry", args=["acme"])
OPERATOR_TENANT = reverse("operator-tenant", args=["acme"])
REFUSAL = "Kubernetes refused the network: admission webhook denied the Subnet"


def test_the_operators_tenant_page_shows_a_failed_network_and_offers_the_retry(
    oscar: User, audrey: User, acme: Tenant, address_space: LoadBalancerRange
) -> None:
    network_of(acme, state=TenantNetwork.State.FAILED, message=REFUSAL)

    page = browser_client_for(oscar).get(OPERATOR_TENANT).content.decode()
    assert "data-network-failure" in page
    assert f'<p class="card-subtitle network-failure-message">{REFUSAL}</p>' in page
    assert f'hx-get="{NETWORK_RETRY}"' in page
    assert "Retry the network" in page
    # Never applied: the tenant's clusters and VMs wait for it, and the page says so.
    assert "wait for its namespace until then" in page

    # Auditors read why, with no control.
    read_only = browser_client_for(audrey).get(OPERATOR_TENANT).content.decode()
    assert REFUSAL in read_only
    assert NETWORK_RETRY not in read_only


@pytest.mark.parametrize(
    "state",
    [TenantNetwork.State.PENDING, TenantNetwork.State.PROVISIONING, TenantNetwork.State.READY],
)
def test_no_retry_is_offered_for_a_network_that_has_not_failed(
    oscar: User, acme: Tenant, address_space: LoadBalancerRange, state: str
) -> None:
    network_of(acme, state=state)

    page = browser_client_for(oscar).get(OPERATOR_TENANT).content.decode()

    assert "data-network-failure" not in page
    assert NETWORK_RETRY not in page


def test_only_operators_may_retry_a_network(
    personas: dict[str, User], acme: Tenant, address_space: LoadBalancerRange
) -> None:
    network_of(acme, state=TenantNetwork.State.FAILED, message=REFUSAL)
    outcomes = {}
    for name in ("alice", "bob", "carol", "gina", "audrey", "nobody"):
        client = browser_client_for(personas[name])
        outcomes[name] = (
            client.get(NETWORK_RETRY).status_code,
            client.post(NETWORK_RETRY).status_code,
        )
    assert outcomes == {name: (403, 403) for name in outcomes}
    assert TenantNetwork.objects.get(tenant=acme).state == TenantNetwork.State.FAILED
    assert not AuditEvent.objects.filter(action="retry").exists()
    anonymous = browser_client_for(None).post(NETWORK_RETRY)
    assert anonymous["Location"].startswith(reverse("login"))


def test_retrying_the_network_asks_first_then_applies_it_again(
    oscar: User,
    acme: Tenant,
    address_space: LoadBalancerRange,
    django_capture_on_commit_callbacks: Any,
) -> None:
    network = network_of(acme, state=TenantNetwork.State.FAILED, message=REFUSAL)
    client = browser_client_for(oscar)
    check_dialog_and_page(client, NETWORK_RETRY, "Retry the network of Acme Corp?")

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(NETWORK_RETRY, headers=htmx("modal-body"))

    assert response["HX-Redirect"] == OPERATOR_TENANT
    network.refresh_from_db()
    # The apply task ran after the retry committed; without Kubernetes it says so.
    assert (network.state, network.message) == (
        TenantNetwork.State.PENDING,
        "No Kubernetes cluster is configured.",
    )
    event = AuditEvent.objects.get(action="retry", object_type="tenantnetwork")
    assert (event.actor, event.changes) == (oscar, {"previous_error": REFUSAL})
    page = client.get(OPERATOR_TENANT).content.decode()
    assert "The network of Acme Corp is being applied again." in page
    assert "data-network-failure" not in page
    assert "retried the tenant&#x27;s network" in page  # its recent activity


def test_a_retry_of_a_network_no_longer_failed_is_refused_in_the_dialog(
    oscar: User, acme: Tenant, address_space: LoadBalancerRange
) -> None:
    network_of(acme, state=TenantNetwork.State.READY)

    response = browser_client_for(oscar).post(NETWORK_RETRY, headers=htmx("modal-body"))

    assert errors_of(response.content.decode()) == {
        "__all__": ["Only a failed network can be retried; the network of acme is ready."]
    }
    assert not AuditEvent.objects.filter(action="retry").exists()
