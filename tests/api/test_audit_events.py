"""/api/v1/audit-events/: the trail of every mutation, its filters and the CSV export."""

from __future__ import annotations

import csv
import io
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone

from tenants.access import TenantRole
from tenants.audit import Actor, audit_record
from tenants.models import ApiToken, AuditEvent, Membership, Tenant, User
from tenants.services import invitation_create, token_create, user_set_active
from tests.api_mixin import APIEndpointTests, token_client_for
from tests.conftest import api_client_for, make_tenant, make_user

LIST_URL = "/api/v1/audit-events/"
EXPORT_URL = "/api/v1/audit-events/export/"
event_numbers = itertools.count()


def record(
    tenant: Tenant | None,
    *,
    actor: User | None = None,
    action: str = "update",
    object_type: str = "widget",
    object_repr: str = "a widget",
    occurred_at: datetime | None = None,
    token: ApiToken | None = None,
) -> AuditEvent:
    event = audit_record(
        actor=Actor(actor, token=token),
        action=action,
        tenant=tenant,
        object_type=object_type,
        object_repr=object_repr,
    )
    if occurred_at is not None:
        AuditEvent.objects.filter(pk=event.pk).update(occurred_at=occurred_at)
    return event


def csv_rows(response: Any) -> list[dict[str, str]]:
    body = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(body)))


class TestAuditEventEndpoint(APIEndpointTests):
    basename = "audit-event"
    # Tenant admins read their tenant's trail; platform readers read everything.
    viewers = frozenset({"alice", "oscar", "audrey"})

    def make_object(self, tenant: Tenant) -> AuditEvent:
        return record(tenant, object_repr=f"widget {next(event_numbers)}")


@pytest.fixture
def trail(personas: dict[str, User], acme: Tenant, globex: Tenant) -> dict[str, AuditEvent]:
    now = timezone.now()
    return {
        "old acme": record(
            acme, actor=personas["alice"], action="create", occurred_at=now - timedelta(days=3)
        ),
        "acme by bob": record(
            acme, actor=personas["bob"], object_type="cluster", occurred_at=now - timedelta(days=1)
        ),
        "globex": record(globex, actor=personas["gina"], action="delete"),
        "platform": record(None, actor=personas["oscar"], object_type="user", action="disable"),
    }


def test_filters(oscar: User, trail: dict[str, AuditEvent]) -> None:
    client = api_client_for(oscar)
    names = {event.pk: name for name, event in trail.items()}

    def listed(**filters: str) -> set[str]:
        rows = client.get(LIST_URL, filters).data["results"]
        return {names[row["id"]] for row in rows if row["id"] in names}

    two_days_ago = (timezone.now() - timedelta(days=2)).isoformat()
    assert listed(tenant="acme") == {"old acme", "acme by bob"}
    assert listed(actor="gina") == {"globex"}
    assert listed(object_type="cluster") == {"acme by bob"}
    assert listed(action="disable") == {"platform"}
    assert listed(since=two_days_ago) == {"acme by bob", "globex", "platform"}
    assert listed(until=two_days_ago) == {"old acme"}
    assert listed(tenant="acme", since=two_days_ago) == {"acme by bob"}


def test_token_filter_and_field(alice: User, acme: Tenant) -> None:
    token, _ = token_create(actor=Actor(alice), name="ci", scope="write")
    through_token = record(acme, actor=alice, token=token)
    record(acme, actor=alice)

    rows = api_client_for(alice).get(LIST_URL, {"token": token.prefix}).data["results"]

    assert [(row["id"], row["token"], row["actor"]) for row in rows] == [
        (through_token.pk, token.prefix, "alice")
    ]


def test_export_is_csv_of_the_callers_filtered_events(
    alice: User, trail: dict[str, AuditEvent]
) -> None:
    client = api_client_for(alice)

    response = client.get(EXPORT_URL, {"object_type": "cluster"})

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv"
    assert "attachment" in response["Content-Disposition"]
    rows = csv_rows(response)
    assert [(row["actor"], row["tenant"], row["object_type"], row["action"]) for row in rows] == [
        ("bob", "acme", "cluster", "update")
    ]
    everything_alice_sees = csv_rows(client.get(EXPORT_URL))
    # acme's two events; neither globex's nor the platform's
    assert sorted(row["actor"] for row in everything_alice_sees) == ["alice", "bob"]


def test_format_csv_on_the_list_is_the_export(oscar: User, trail: dict[str, AuditEvent]) -> None:
    client = api_client_for(oscar)

    as_list = client.get(LIST_URL, {"format": "csv", "tenant": "acme"})
    as_export = client.get(EXPORT_URL, {"tenant": "acme"})

    assert as_list["Content-Type"] == "text/csv"
    exported = csv_rows(as_export)
    assert csv_rows(as_list) == exported
    assert len(exported) == 2


def test_export_defuses_spreadsheet_formulas(oscar: User, acme: Tenant) -> None:
    record(acme, object_repr='=HYPERLINK("http://evil.example")')

    rows = csv_rows(api_client_for(oscar).get(EXPORT_URL, {"tenant": "acme"}))

    assert rows[0]["object_repr"] == '\'=HYPERLINK("http://evil.example")'


def test_export_needs_a_signed_in_reader(acme: Tenant, carol: User) -> None:
    record(acme)

    anonymous = api_client_for(None).get(EXPORT_URL)
    viewer = api_client_for(carol).get(EXPORT_URL)

    assert anonymous.status_code == 401
    assert csv_rows(viewer) == []  # viewers do not read the trail


# --- Every mutation through the API is audited with the user and the token ------------------


@dataclass(frozen=True)
class Mutation:
    persona: str
    method: str
    path: Callable[[dict[str, Any]], str]
    payload: dict[str, Any]
    audited_as: tuple[str, str]  # (action, object_type)


MUTATIONS = {
    "onboard tenant": Mutation(
        "oscar",
        "post",
        lambda w: reverse("api:tenant-list"),
        {"slug": "initech", "name": "Initech"},
        ("create", "tenant"),
    ),
    "rename tenant": Mutation(
        "oscar",
        "patch",
        lambda w: reverse("api:tenant-detail", args=["acme"]),
        {"name": "Acme 2"},
        ("update", "tenant"),
    ),
    "suspend tenant": Mutation(
        "oscar",
        "post",
        lambda w: reverse("api:tenant-suspend", args=["acme"]),
        {},
        ("suspend", "tenant"),
    ),
    "resume tenant": Mutation(
        "oscar",
        "post",
        lambda w: reverse("api:tenant-resume", args=["suspended"]),
        {},
        ("resume", "tenant"),
    ),
    "delete tenant": Mutation(
        "oscar",
        "delete",
        lambda w: reverse("api:tenant-detail", args=["globex"]),
        {},
        ("delete", "tenant"),
    ),
    "change quota": Mutation(
        "oscar",
        "patch",
        lambda w: reverse("api:tenant-quota", args=["acme"]),
        {"vms": 4},
        ("update", "quota"),
    ),
    "change role": Mutation(
        "alice",
        "patch",
        lambda w: reverse("api:membership-detail", args=[w["carol's membership"].pk]),
        {"role": "member"},
        ("change_role", "membership"),
    ),
    "remove member": Mutation(
        "alice",
        "delete",
        lambda w: reverse("api:membership-detail", args=[w["carol's membership"].pk]),
        {},
        ("remove_member", "membership"),
    ),
    "invite": Mutation(
        "alice",
        "post",
        lambda w: reverse("api:invitation-list"),
        {"tenant": "acme", "role": "viewer"},
        ("invite", "invitation"),
    ),
    "revoke invitation": Mutation(
        "alice",
        "post",
        lambda w: reverse("api:invitation-revoke", args=[w["invitation"].pk]),
        {},
        ("revoke_invitation", "invitation"),
    ),
    "accept invitation": Mutation(
        "nobody",
        "post",
        lambda w: reverse("api:invitation-accept"),
        {"token": "<invitation secret>"},
        ("accept_invitation", "membership"),
    ),
    "create token": Mutation(
        "alice",
        "post",
        lambda w: reverse("api:token-list"),
        {"name": "another"},
        ("create", "apitoken"),
    ),
    "revoke token": Mutation(
        "alice",
        "post",
        lambda w: reverse("api:token-revoke", args=[w["alice's old token"].pk]),
        {},
        ("revoke", "apitoken"),
    ),
    "disable user": Mutation(
        "oscar",
        "post",
        lambda w: reverse("api:user-disable", args=[w["carol's membership"].user_id]),
        {},
        ("disable", "user"),
    ),
    "enable user": Mutation(
        "oscar",
        "post",
        lambda w: reverse("api:user-enable", args=[w["disabled user"].pk]),
        {},
        ("enable", "user"),
    ),
}


@pytest.fixture
def world(personas: dict[str, User], acme: Tenant, globex: Tenant) -> dict[str, Any]:
    suspended = make_tenant("suspended", "Suspended")
    Tenant.objects.filter(pk=suspended.pk).update(state=Tenant.State.SUSPENDED)
    invitation, secret = invitation_create(
        actor=Actor(personas["alice"]), tenant=acme, role=TenantRole.VIEWER
    )
    disabled = make_user("dora")
    user_set_active(actor=Actor(personas["oscar"]), user=disabled, active=False)
    old_token, _ = token_create(actor=Actor(personas["alice"]), name="old", scope="read")
    return {
        "suspended tenant": suspended,
        "invitation": invitation,
        "<invitation secret>": secret,
        "carol's membership": Membership.objects.get(user=personas["carol"]),
        "alice's old token": old_token,
        "disabled user": disabled,
    }


@pytest.mark.parametrize("name", MUTATIONS)
def test_each_mutation_is_audited_with_the_user_and_the_token(
    name: str, personas: dict[str, User], world: dict[str, Any]
) -> None:
    mutation = MUTATIONS[name]
    user = personas[mutation.persona]
    client, token = token_client_for(user, ApiToken.Scope.WRITE)
    payload = {key: world.get(value, value) for key, value in mutation.payload.items()}
    events_before = set(AuditEvent.objects.values_list("pk", flat=True))

    response = getattr(client, mutation.method)(mutation.path(world), payload, format="json")

    assert response.status_code < 300, response.data
    new_events = AuditEvent.objects.exclude(pk__in=events_before)
    assert [
        (event.action, event.object_type, event.actor, event.token, event.source_ip)
        for event in new_events
    ] == [(*mutation.audited_as, user, token, "127.0.0.1")]
