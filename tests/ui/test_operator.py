"""The operator console: tenants with usage, onboarding, quota, suspension, deletion, users."""

from __future__ import annotations

from django.db import transaction
from django.urls import reverse

from tenants import services
from tenants.audit import Actor
from tenants.models import ApiToken, AuditEvent, Quota, Tenant, User
from tests.conftest import DEFAULT_LIMITS, browser_client_for, make_tenant, make_user
from tests.ui.conftest import htmx, queries_for_get

TENANTS = reverse("operator-tenants")
USERS = reverse("operator-users")


def reserve(tenant: Tenant, subject: str, **amounts: int) -> None:
    with transaction.atomic():
        services.quota_reserve(tenant=tenant, subject=subject, amounts=amounts)


def quota_post(**changes: object) -> dict[str, object]:
    """A complete quota form (memory in GiB, as the form shows it) with some changes."""
    data: dict[str, object] = {**DEFAULT_LIMITS, "memory_mib": DEFAULT_LIMITS["memory_mib"] // 1024}
    data.update(changes)
    return data


def test_tenant_list_shows_state_and_usage(oscar: User, acme: Tenant, globex: Tenant) -> None:
    reserve(acme, "cluster:1", clusters=3, memory_mib=8192)
    globex.state = Tenant.State.SUSPENDED
    globex.save()
    text = browser_client_for(oscar).get(TENANTS).content.decode()
    assert "Acme Corp" in text
    assert "Globex Inc" in text
    assert "Suspended" in text
    assert 'aria-label="Clusters: 3 of 3 used"' in text
    assert "meter meter-critical" in text
    assert "8 GiB" in text
    assert "New tenant" in text


def test_auditors_see_the_list_without_controls(audrey: User, acme: Tenant) -> None:
    text = browser_client_for(audrey).get(TENANTS).content.decode()
    assert "Acme Corp" in text
    assert "New tenant" not in text
    assert "You have read-only access." in text
    detail = browser_client_for(audrey).get(reverse("operator-tenant", args=["acme"])).content
    assert b"Save quota" not in detail
    assert b"Delete tenant" not in detail
    assert b'<fieldset class="form-grid form-grid-3" disabled>' in detail


def test_tenant_list_query_count_is_constant(oscar: User) -> None:
    client = browser_client_for(oscar)
    for number in range(2):
        reserve(make_tenant(f"t{number}", f"Tenant {number}"), "vm:1", vms=1)
    few = queries_for_get(client, TENANTS)
    for number in range(2, 14):
        reserve(make_tenant(f"t{number}", f"Tenant {number}"), "vm:1", vms=1)
    assert queries_for_get(client, TENANTS) == few


def test_search_narrows_the_list_in_place(oscar: User, acme: Tenant, globex: Tenant) -> None:
    response = browser_client_for(oscar).get(TENANTS, {"q": "glob"}, headers=htmx("tenant-results"))
    text = response.content.decode()
    assert text.lstrip().startswith('<div id="tenant-results"')
    assert "Globex Inc" in text
    assert "Acme Corp" not in text


def test_creating_a_tenant(oscar: User) -> None:
    client = browser_client_for(oscar)
    form = client.get(reverse("operator-tenant-create")).content.decode()
    assert 'name="memory_mib" value="64"' in form  # suggested limits, memory in GiB
    response = client.post(
        reverse("operator-tenant-create"),
        # No load-balancer addresses: the test database has no MetalLB range to share.
        {
            "name": "Wayne Enterprises",
            "slug": "wayne",
            **quota_post(memory_mib="1.5", load_balancer_ips=0),
        },
    )
    assert response["Location"] == reverse("operator-tenant", args=["wayne"])
    quota = Quota.objects.get(tenant__slug="wayne")
    assert quota.memory_mib == 1536
    assert quota.clusters == DEFAULT_LIMITS["clusters"]
    assert AuditEvent.objects.filter(action="create", object_type="tenant").exists()


def test_tenant_slug_must_be_a_dns_label_and_nothing_is_lost(oscar: User) -> None:
    response = browser_client_for(oscar).post(
        reverse("operator-tenant-create"),
        {"name": "Wayne Enterprises", "slug": "Wayne_Ent", **quota_post(vcpu=99)},
    )
    text = response.content.decode()
    assert "Use 1–63 lowercase letters" in text
    assert 'id="id_slug_error"' in text
    assert 'value="Wayne Enterprises"' in text
    assert 'value="Wayne_Ent"' in text
    assert 'name="vcpu" value="99"' in text
    assert not Tenant.objects.exists()


def test_duplicate_slug_is_a_field_error_from_the_service(oscar: User, acme: Tenant) -> None:
    response = browser_client_for(oscar).post(
        reverse("operator-tenant-create"), {"name": "Another", "slug": "acme", **quota_post()}
    )
    assert "A tenant with this slug already exists." in response.content.decode()
    assert Tenant.objects.count() == 1


def test_lowering_quota_below_usage_needs_force(oscar: User, acme: Tenant) -> None:
    reserve(acme, "vm:1", vms=1, vcpu=20)
    client = browser_client_for(oscar)
    url = reverse("operator-quota", args=["acme"])
    assert b'name="force"' not in client.get(reverse("operator-tenant", args=["acme"])).content

    refused = client.post(url, quota_post(vcpu=8)).content.decode()
    assert "acme already uses 20; confirm with force to set a lower limit." in refused
    assert 'id="id_vcpu_error"' in refused
    assert 'name="vcpu" value="8"' in refused
    assert 'name="force"' in refused
    assert Quota.objects.get(tenant=acme).vcpu == DEFAULT_LIMITS["vcpu"]

    forced = client.post(url, quota_post(vcpu=8, force="on"))
    assert forced["Location"] == reverse("operator-tenant", args=["acme"])
    assert Quota.objects.get(tenant=acme).vcpu == 8
    event = AuditEvent.objects.get(object_type="quota")
    assert event.changes["forced"] is True


def test_form_errors_do_not_offer_force(oscar: User, acme: Tenant) -> None:
    text = (
        browser_client_for(oscar)
        .post(reverse("operator-quota", args=["acme"]), quota_post(vcpu=-1))
        .content.decode()
    )
    assert "Ensure this value is greater than or equal to 0." in text
    assert 'name="force"' not in text


def test_suspend_and_resume(oscar: User, carol: User, acme: Tenant) -> None:
    client = browser_client_for(oscar)
    suspend = reverse("operator-tenant-suspend", args=["acme"])
    assert b"Suspend Acme Corp?" in client.get(suspend, headers=htmx("modal-body")).content
    assert client.post(suspend)["Location"] == reverse("operator-tenant", args=["acme"])
    acme.refresh_from_db()
    assert acme.state == Tenant.State.SUSPENDED
    assert (
        b"is suspended"
        in browser_client_for(carol).get(reverse("tenant-dashboard", args=["acme"])).content
    )

    client.post(reverse("operator-tenant-resume", args=["acme"]))
    acme.refresh_from_db()
    assert acme.is_active


def test_delete_needs_the_slug_typed(oscar: User, acme: Tenant) -> None:
    url = reverse("operator-tenant-delete", args=["acme"])
    response = browser_client_for(oscar).post(
        url, {"confirmation": "acme-corp"}, headers=htmx("modal-body")
    )
    assert "Type “acme” exactly to confirm." in response.content.decode()
    assert 'value="acme-corp"' in response.content.decode()
    assert Tenant.objects.filter(slug="acme").exists()


def test_delete_is_refused_while_resources_remain(oscar: User, acme: Tenant) -> None:
    reserve(acme, "cluster:7", clusters=1)
    url = reverse("operator-tenant-delete", args=["acme"])
    response = browser_client_for(oscar).post(
        url, {"confirmation": "acme"}, headers=htmx("modal-body")
    )
    assert "still holding quota: cluster:7" in response.content.decode()
    assert Tenant.objects.filter(slug="acme").exists()


def test_deleting_an_empty_tenant(oscar: User, acme: Tenant) -> None:
    url = reverse("operator-tenant-delete", args=["acme"])
    response = browser_client_for(oscar).post(
        url, {"confirmation": "acme"}, headers=htmx("modal-body")
    )
    assert response["HX-Redirect"] == TENANTS
    assert not Tenant.objects.filter(slug="acme").exists()


def test_users_list_and_disable(oscar: User, bob: User) -> None:
    services.token_create(actor=Actor(user=bob), name="robot", scope="read")
    client = browser_client_for(oscar)
    text = client.get(USERS).content.decode()
    assert "bob" in text
    assert "oscar" in text
    assert reverse("operator-user-disable", args=[oscar.pk]) not in text  # not oneself

    response = client.post(
        reverse("operator-user-disable", args=[bob.pk]), headers=htmx("modal-body")
    )
    assert response["HX-Redirect"] == USERS
    bob.refresh_from_db()
    assert not bob.is_active
    assert ApiToken.objects.get(user=bob).status == "revoked"
    assert reverse("operator-user-enable", args=[bob.pk]) in client.get(USERS).content.decode()

    client.post(reverse("operator-user-enable", args=[bob.pk]))
    bob.refresh_from_db()
    assert bob.is_active


def test_operators_cannot_disable_themselves(oscar: User) -> None:
    response = browser_client_for(oscar).post(
        reverse("operator-user-disable", args=[oscar.pk]), headers=htmx("modal-body")
    )
    assert b"You cannot disable your own account." in response.content
    oscar.refresh_from_db()
    assert oscar.is_active


def test_users_list_query_count_is_constant(oscar: User, acme: Tenant) -> None:
    client = browser_client_for(oscar)
    make_user("one")
    few = queries_for_get(client, USERS)
    for number in range(12):
        make_user(f"user{number}")
    assert queries_for_get(client, USERS) == few


def test_user_search(oscar: User, bob: User, carol: User) -> None:
    text = browser_client_for(oscar).get(USERS, {"q": "car"}, headers=htmx("user-results")).content
    assert b"carol" in text
    assert b"bob@" not in text
