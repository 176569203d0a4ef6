"""The audit log page and its CSV export: scope, filters, pagination, query counts."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

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


def test_pagination_keeps_the_filters(oscar: User, acme: Tenant) -> None:
    for number in range(60):
        audit_record(
            actor=Actor(user=oscar),
            action="poke",
            tenant=acme,
            object_type="thing",
            object_repr=f"#{number}",
        )
    client = browser_client_for(oscar)
    first = client.get(AUDIT, {"action": "poke"}).content.decode()
    assert "1–50 of 60" in first
    assert "?action=poke&amp;page=2" in first
    second = client.get(AUDIT, {"action": "poke", "page": "2"}).content.decode()
    assert second.count('<td class="nowrap">') == 10


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
