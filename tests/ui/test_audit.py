"""The audit log page and its CSV export: scope, filters, pagination, query counts."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone

from tenants import services
from tenants.audit import Actor, audit_record
from tenants.models import AuditEvent, Tenant, User
from tests.conftest import browser_client_for
from tests.ui.conftest import htmx, queries_for_get

AUDIT = reverse("audit")
EXPORT = reverse("audit-export")


@pytest.fixture
def events(alice: User, gina: User, acme: Tenant, globex: Tenant) -> None:
    services.invitation_create(
        actor=Actor(user=alice, source_ip="10.1.1.1"), tenant=acme, role="viewer"
    )
    services.invitation_create(actor=Actor(user=gina), tenant=globex, role="member")
    services.tenant_update(actor=Actor(user=alice), tenant=acme, name="Acme Corporation")


def rows(response) -> list[dict[str, str]]:
    body = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(body)))


def test_tenant_admins_read_only_their_tenants(events: None, alice: User) -> None:
    text = browser_client_for(alice).get(AUDIT).content.decode()
    assert "3 events" not in text
    assert "2 events" in text
    assert "globex" not in text.split('id="audit-results"')[1]
    assert "10.1.1.1" in text
    assert "Changes in the tenants you administer" in text


@pytest.mark.parametrize("username", ["oscar", "audrey"])
def test_platform_staff_read_everything(events: None, username: str, personas) -> None:
    text = browser_client_for(personas[username]).get(AUDIT).content.decode()
    assert "3 events" in text
    assert "Every change on the platform" in text


def test_filters_narrow_the_list(events: None, oscar: User) -> None:
    client = browser_client_for(oscar)
    by_tenant = client.get(AUDIT, {"tenant": "globex"}).content.decode()
    assert "1 event<" in by_tenant
    by_actor = client.get(AUDIT, {"actor": "ALICE"}).content.decode()
    assert "2 events" in by_actor
    by_action = client.get(AUDIT, {"action": "update"}).content.decode()
    assert "1 event<" in by_action
    assert "Acme Corp → Acme Corporation" in by_action
    by_object = client.get(AUDIT, {"object_type": "invitation"}).content.decode()
    assert "2 events" in by_object
    tomorrow = (timezone.now() + timedelta(days=1)).date().isoformat()
    assert "0 events" in client.get(AUDIT, {"since": tomorrow}).content.decode()


def test_bad_filters_show_an_error_and_keep_the_rest(events: None, oscar: User) -> None:
    text = (
        browser_client_for(oscar)
        .get(AUDIT, {"since": "2030-01-02", "until": "2030-01-01", "actor": "gina"})
        .content.decode()
    )
    assert "The end date is before the start date." in text
    assert 'value="gina"' in text
    assert "0 events" in text  # since applies, the contradictory until is ignored


def test_filtering_with_htmx_swaps_only_the_results(events: None, oscar: User) -> None:
    response = browser_client_for(oscar).get(
        AUDIT, {"tenant": "acme"}, headers=htmx("audit-results")
    )
    text = response.content.decode()
    assert text.lstrip().startswith('<section id="audit-results"')
    assert "2 events" in text
    assert f'href="{EXPORT}?tenant=acme"' in text  # the export follows the filters


def poke_events(actor: User, tenant: Tenant, count: int) -> None:
    """``count`` events, ``#0`` the oldest, one a second apart (so the order is certain)."""
    start = timezone.now() - timedelta(hours=1)
    for number in range(count):
        event = audit_record(
            actor=Actor(user=actor),
            action="poke",
            tenant=tenant,
            object_type="thing",
            object_repr=f"thing-{number:03}",
        )
        AuditEvent.objects.filter(pk=event.pk).update(occurred_at=start + timedelta(seconds=number))


def shown_objects(text: str) -> list[str]:
    return re.findall(r"thing-\d{3}", text.split('id="audit-results"')[1])


def test_page_two_shows_the_next_events_and_keeps_the_filters(oscar: User, acme: Tenant) -> None:
    poke_events(oscar, acme, 60)
    audit_record(actor=Actor(user=oscar), action="other", tenant=acme, object_repr="thing-999")
    client = browser_client_for(oscar)
    first = client.get(AUDIT, {"action": "poke"}).content.decode()
    assert "60 events" in first
    assert "1–50 of 60" in first
    assert shown_objects(first) == [f"thing-{number:03}" for number in range(59, 9, -1)]
    assert "?action=poke&amp;page=2" in first
    second = client.get(AUDIT, {"action": "poke", "page": "2"}).content.decode()
    assert "51–60 of 60" in second
    assert shown_objects(second) == [f"thing-{number:03}" for number in range(9, -1, -1)]


def test_the_page_size_is_one_of_those_offered(oscar: User, acme: Tenant) -> None:
    poke_events(oscar, acme, 120)
    client = browser_client_for(oscar)
    smaller = client.get(AUDIT, {"action": "poke", "per_page": "25"}).content.decode()
    assert "1–25 of 120" in smaller
    assert len(shown_objects(smaller)) == 25
    assert "?action=poke&amp;per_page=25&amp;page=2" in smaller  # the next page keeps both
    assert '<option value="25" selected>' in smaller
    # The CSV is every matching event, whatever the page shows.
    assert f'href="{EXPORT}?action=poke"' in smaller
    for unbounded in ("100000", "0", "-1", "all"):
        text = client.get(AUDIT, {"action": "poke", "per_page": unbounded}).content.decode()
        assert "1–50 of 120" in text, unbounded
        assert len(shown_objects(text)) == 50


def test_the_page_size_follows_htmx_filtering(oscar: User, acme: Tenant) -> None:
    poke_events(oscar, acme, 30)
    text = (
        browser_client_for(oscar)
        .get(
            AUDIT, {"action": "poke", "per_page": "25", "page": "2"}, headers=htmx("audit-results")
        )
        .content.decode()
    )
    assert text.lstrip().startswith('<section id="audit-results"')
    assert "26–30 of 30" in text
    # The size control belongs to the filter form, so filtering keeps it.
    assert 'name="per_page" form="audit-filters"' in text


def test_audit_page_query_count_is_constant(oscar: User, acme: Tenant) -> None:
    client = browser_client_for(oscar)
    token, _ = services.token_create(actor=Actor(user=oscar), name="robot", scope="write")
    for _ in range(3):
        audit_record(actor=Actor(user=oscar, token=token), action="poke", tenant=acme, target=acme)
    few = queries_for_get(client, AUDIT)
    for _ in range(40):
        audit_record(actor=Actor(user=oscar, token=token), action="poke", tenant=acme, target=acme)
    assert queries_for_get(client, AUDIT) == few


def test_csv_export_follows_the_filters(events: None, oscar: User) -> None:
    response = browser_client_for(oscar).get(EXPORT, {"tenant": "acme"})
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="audit-')
    exported = rows(response)
    assert {row["tenant"] for row in exported} == {"acme"}
    assert {row["action"] for row in exported} == {"invite", "update"}
    assert len(exported) == AuditEvent.objects.filter(tenant_slug="acme").count()


def test_csv_export_is_scoped_like_the_page(events: None, alice: User) -> None:
    exported = rows(browser_client_for(alice).get(EXPORT, {"tenant": "globex"}))
    # globex is not one of alice's choices: the filter is refused and her scope applies.
    assert {row["tenant"] for row in exported} == {"acme"}


def test_csv_cells_cannot_smuggle_formulas(oscar: User, acme: Tenant) -> None:
    audit_record(
        actor=Actor(user=oscar),
        action="poke",
        tenant=acme,
        object_type="thing",
        object_repr="=HYPERLINK(1)",
    )
    exported = rows(browser_client_for(oscar).get(EXPORT))
    assert exported[0]["object"] == "'=HYPERLINK(1)"


# --- How changes read -------------------------------------------------------------------------


def row_of(text: str, object_repr: str) -> str:
    """The table row of the event on ``object_repr`` (its HTML)."""
    rows = text.split('<tr class="audit-row">')[1:]
    return next(row for row in rows if f">{object_repr}<" in row)


def record(oscar: User, acme: Tenant, action: str, name: str, changes: dict[str, Any]) -> None:
    audit_record(
        actor=Actor(user=oscar),
        action=action,
        tenant=acme,
        object_type="cluster",
        object_repr=name,
        changes=changes,
    )


def test_lists_show_what_was_added_and_removed(oscar: User, acme: Tenant) -> None:
    # The shapes the services record: a new cluster's add-ons, a VM's ports before and after.
    record(oscar, acme, "create", "acme/new", {"addons": ["cilium", "portal-access"]})
    record(oscar, acme, "expose", "acme/web", {"ports": [["22/TCP"], ["22/TCP", "80/TCP"]]})
    record(oscar, acme, "unexpose", "acme/db", {"ports": [["22/TCP", "5432/TCP"], ["5432/TCP"]]})
    record(oscar, acme, "change_role", "bob in acme", {"role": ["member", "admin"]})
    record(oscar, acme, "repair_drift", "drift", {"applied_again": ["tenant a", "tenant b"]})
    text = browser_client_for(oscar).get(AUDIT).content.decode()

    created = row_of(text, "acme/new")
    assert "add-ons" in created
    assert '<span class="change-added">added cilium, portal-access</span>' in created
    assert "cilium → portal-access" not in text
    exposed = row_of(text, "acme/web")
    assert '<span class="change-added">added 80/TCP</span>' in exposed
    assert "removed" not in exposed
    assert '<span class="change-removed">removed 22/TCP</span>' in row_of(text, "acme/db")
    assert "member → admin" in row_of(text, "bob in acme")
    assert "tenant a, tenant b" in row_of(text, "drift")


def test_long_values_fold_into_the_events_details(oscar: User, acme: Tenant) -> None:
    long_error = "admission webhook denied the request: " + "spec.template." * 400
    record(oscar, acme, "retry", "acme/failing", {"previous_error": long_error})
    record(oscar, acme, "scale", "acme/short", {"worker_count": [2, 3]})
    text = browser_client_for(oscar).get(AUDIT).content.decode()

    failing = row_of(text, "acme/failing")
    inline = re.search(r'<span class="change-value">(.*?)</span>', failing, re.S)
    assert inline is not None
    assert len(inline.group(1).strip()) <= 60
    assert inline.group(1).strip().endswith("…")
    details = failing.split("<details>")[1]
    assert "<summary>Full value</summary>" in details
    assert long_error in details
    assert "<details>" not in row_of(text, "acme/short")  # nothing to unfold


def test_many_fields_show_the_first_few_and_fold_the_rest(oscar: User, acme: Tenant) -> None:
    audit_record(
        actor=Actor(user=oscar),
        action="create",
        tenant=acme,
        object_type="virtualmachine",
        object_repr="acme/web-1",
        changes={
            "image": "debian-12",
            "instance_type": "standard-2",
            "disk_gib": 20,
            "storage_class": "replicated",
            "ssh_keys": ["SHA256:abc"],
            "user_data": True,
            "run_strategy": "Always",
        },
    )
    row = row_of(browser_client_for(oscar).get(AUDIT).content.decode(), "acme/web-1")
    # Alphabetical: disk GiB, image and instance type first; the other four on a wide screen
    # or in the details.
    assert row.count('<li class="change-extra">') == 4
    assert "4 more fields" in row
    assert "disk GiB" in row
    assert "user data" in row
    assert "yes" in row
    assert "virtual machine ·" in row  # the model's name, not "virtualmachine"
