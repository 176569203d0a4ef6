"""One generic test base for every REST resource (in the spirit of NetBox's APIViewTestCases).

A resource's test class inherits ``APIEndpointTests`` and declares, in the personas' words
(``tests/conftest.py``: alice admin / bob member / carol viewer of acme, gina admin of globex,
oscar operator, audrey auditor, nobody signed in without a tenant), who may do what::

    class TestMembershipEndpoint(APIEndpointTests):
        basename = "membership"                    # router basename: api:membership-list/-detail
        viewers = frozenset({"alice", "bob", "carol", "oscar", "audrey"})  # list and get it
        updaters = frozenset({"alice", "oscar"})   # None (the default): no such operation
        deleters = frozenset({"alice", "oscar"})

        def make_object(self, tenant):             # a new row belonging to `tenant`
            ...

        def update_payload(self):
            return {"role": "member"}

Before each test ``acme_object = make_object(acme)`` and ``globex_object = make_object(globex)``
exist. The generic tests then check every persona at once and compare whole tables, so a
failure shows exactly which persona got what:

- anonymous requests are 401;
- the list shows the acme object to ``viewers`` only and the globex object to
  ``globex_viewers`` only (never across tenants);
- getting either object is 200 for those who see it, 404 for everyone else (403 on
  ``platform_only`` endpoints such as user accounts, which non-readers are refused outright);
- create / update / delete succeed (201 / 200 / 204), take effect and write an audit event
  for ``creators`` / ``updaters`` / ``deleters``; everyone else gets 403 if they can see the
  object (or, for create, its tenant) and 404 if not, and nothing is audited; an operation the
  endpoint does not offer is 405 even for an operator;
- a read-only API token gets 403 on every write its user could otherwise make, and a write
  made through a read-write token is audited with the user and the token;
- listing runs a constant number of queries, whatever the number of rows.

Each persona's write runs in a savepoint that is rolled back, so all start from the same data.
Override the ``make_*`` / ``*_payload`` / ``took_effect`` hooks where a resource differs.

Two families of resources share more than that, and have a base of their own:
``TenantResourceEndpointTests`` (clusters, VMs: the tenant's members and admins create and
delete them, the name typed to confirm) and ``CatalogEndpointTests`` (everyone signed in
reads a catalog, operators write it). Their custom actions are checked persona by persona
with ``write_outcomes`` against ``TENANT_WRITE_OUTCOMES``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, ClassVar, Literal

import pytest
from django.db import connection, models, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from rest_framework.test import APIClient

from tenants.audit import Actor
from tenants.models import ApiToken, AuditEvent, Tenant, User
from tenants.services import token_create
from tests.conftest import api_client_for

PERSONAS = ("alice", "bob", "carol", "gina", "oscar", "audrey", "nobody")
#: Who can see the acme tenant itself (members of acme and the platform roles).
ACME_TENANT_VIEWERS = frozenset({"alice", "bob", "carol", "oscar", "audrey"})
#: Who may create, change and delete acme's clusters and VMs (its admin, its member, operators).
ACME_RESOURCE_WRITERS = frozenset({"alice", "bob", "oscar"})
#: What a write on one of acme's resources gives each persona: (status, audited). Viewers and
#: auditors see it but may not act (403); outsiders do not see it at all (404).
TENANT_WRITE_OUTCOMES = {
    "alice": (200, True),
    "bob": (200, True),
    "carol": (403, False),
    "gina": (404, False),
    "oscar": (200, True),
    "audrey": (403, False),
    "nobody": (404, False),
}

Operation = Literal["create", "update", "delete"]
SUCCESS_STATUS: dict[Operation, int] = {"create": 201, "update": 200, "delete": 204}


@contextmanager
def rolled_back() -> Iterator[None]:
    """Run a block in a savepoint and undo it, whatever it wrote."""
    with transaction.atomic():
        yield
        transaction.set_rollback(True)


def bearer_client(secret: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


def token_client_for(user: User, scope: str) -> tuple[APIClient, ApiToken]:
    """A client authenticated by a real API token of ``user`` (not a forced login)."""
    token, secret = token_create(actor=Actor(user), name=f"{scope} token", scope=scope)
    return bearer_client(secret), token


class APIEndpointTests:
    # --- What a resource's test class declares -----------------------------------------------
    basename: ClassVar[str]
    #: The field that identifies a row in responses and in its URL.
    lookup_field: ClassVar[str] = "id"
    #: Personas that list and get the acme object.
    viewers: ClassVar[frozenset[str]]
    #: Personas that list and get the globex object.
    globex_viewers: ClassVar[frozenset[str]] = frozenset({"gina", "oscar", "audrey"})
    #: Personas allowed each write; None when the endpoint does not offer it.
    creators: ClassVar[frozenset[str] | None] = None
    updaters: ClassVar[frozenset[str] | None] = None
    deleters: ClassVar[frozenset[str] | None] = None
    #: True for platform resources that non-readers are refused (403) rather than shown empty.
    platform_only: ClassVar[bool] = False
    #: Who lists in the query-count test (must see the rows make_rows creates).
    list_as: ClassVar[str] = "alice"
    #: An upper bound for one list request, whatever the number of rows.
    max_list_queries: ClassVar[int] = 6

    def make_object(self, tenant: Tenant) -> models.Model:
        """A new row belonging to ``tenant`` (called for acme and globex before each test)."""
        raise NotImplementedError

    def make_rows(self, count: int) -> None:
        """``count`` more rows that ``list_as`` sees (for the query-count test)."""
        for _ in range(count):
            self.make_object(self.acme)

    def create_payload(self) -> dict[str, Any]:
        raise NotImplementedError

    def update_payload(self) -> dict[str, Any]:
        raise NotImplementedError

    def create_denied_status(self, persona: str) -> int:
        """Creating in acme without the right: 403 if the tenant is visible, else 404."""
        return 403 if self.platform_only or persona in ACME_TENANT_VIEWERS else 404

    def denied_status(self, persona: str) -> int:
        """Touching the acme object without the right: 403 if it is visible, else 404."""
        return 403 if self.platform_only or persona in self.viewers else 404

    def took_effect(self, operation: Operation, response: Any) -> bool:
        """Whether a successful write really happened (checked before the rollback)."""
        model = type(self.acme_object)
        if operation == "create":
            key = response.data.get(self.lookup_field)
            return model._default_manager.filter(**{self.lookup_field: key}).exists()
        if operation == "update":
            payload = self.update_payload()
            return {field: response.data.get(field) for field in payload} == payload
        return not model._default_manager.filter(pk=self.acme_object.pk).exists()

    # --- Set-up and helpers --------------------------------------------------------------------
    personas: dict[str, User]
    acme: Tenant
    globex: Tenant
    acme_object: models.Model
    globex_object: models.Model

    @pytest.fixture(autouse=True)
    def _endpoint_world(self, personas: dict[str, User], acme: Tenant, globex: Tenant) -> None:
        self.personas, self.acme, self.globex = personas, acme, globex
        self.acme_object = self.make_object(acme)
        self.globex_object = self.make_object(globex)

    def client_as(self, persona: str | None) -> APIClient:
        return api_client_for(self.personas[persona] if persona else None)

    def list_url(self) -> str:
        return reverse(f"api:{self.basename}-list")

    def detail_url(self, obj: models.Model) -> str:
        return reverse(f"api:{self.basename}-detail", args=[getattr(obj, self.lookup_field)])

    def listed_keys(self, response: Any) -> set[Any]:
        return {row[self.lookup_field] for row in response.data["results"]}

    def allowed(self, operation: Operation) -> frozenset[str] | None:
        return {"create": self.creators, "update": self.updaters, "delete": self.deleters}[
            operation
        ]

    def offered_writes(self) -> list[tuple[Operation, str]]:
        """Each offered write with the first persona allowed to make it."""
        return [
            (operation, next(p for p in PERSONAS if p in allowed))
            for operation in SUCCESS_STATUS
            if (allowed := self.allowed(operation))
        ]

    def perform(self, client: APIClient, operation: Operation) -> Any:
        """Make one write; an operation the endpoint does not offer is sent with no body."""
        if operation == "create":
            payload = self.create_payload() if self.creators is not None else {}
            return client.post(self.list_url(), payload, format="json")
        if operation == "update":
            payload = self.update_payload() if self.updaters is not None else {}
            return client.patch(self.detail_url(self.acme_object), payload, format="json")
        return client.delete(self.detail_url(self.acme_object))

    def outcome(self, client: APIClient, operation: Operation) -> str:
        """The status of one write, annotated when it did not do what its status says."""
        with rolled_back():
            events_before = AuditEvent.objects.count()
            response = self.perform(client, operation)
            audited = AuditEvent.objects.count() > events_before
            outcome = str(response.status_code)
            if response.status_code < 300:
                if not self.took_effect(operation, response):
                    outcome += " without effect"
                if not audited:
                    outcome += " unaudited"
            elif audited:
                outcome += " but audited"
        return outcome

    def check_write_permissions(self, operation: Operation) -> None:
        allowed = self.allowed(operation)
        if allowed is None:
            assert self.outcome(self.client_as("oscar"), operation) == "405"
            return
        if operation == "create":
            expected = {
                p: str(SUCCESS_STATUS[operation] if p in allowed else self.create_denied_status(p))
                for p in PERSONAS
            }
        else:
            expected = {
                p: str(SUCCESS_STATUS[operation] if p in allowed else self.denied_status(p))
                for p in PERSONAS
            }
        actual = {p: self.outcome(self.client_as(p), operation) for p in PERSONAS}
        assert actual == expected

    # --- The generic tests -----------------------------------------------------------------------
    def test_anonymous_requests_are_401(self) -> None:
        anonymous = self.client_as(None)
        statuses = {
            "list": anonymous.get(self.list_url()).status_code,
            "get": anonymous.get(self.detail_url(self.acme_object)).status_code,
            "post": anonymous.post(self.list_url(), {}, format="json").status_code,
        }
        assert statuses == {"list": 401, "get": 401, "post": 401}

    def test_list_shows_each_persona_only_what_they_may_see(self) -> None:
        acme_key = getattr(self.acme_object, self.lookup_field)
        globex_key = getattr(self.globex_object, self.lookup_field)
        actual = {}
        for persona in PERSONAS:
            response = self.client_as(persona).get(self.list_url())
            keys = self.listed_keys(response) if response.status_code == 200 else set()
            actual[persona] = (response.status_code, acme_key in keys, globex_key in keys)
        expected = {
            p: (
                403 if self.platform_only and p not in self.viewers else 200,
                p in self.viewers,
                p in self.globex_viewers,
            )
            for p in PERSONAS
        }
        assert actual == expected

    def test_get_is_404_outside_the_callers_reach(self) -> None:
        outside = 403 if self.platform_only else 404
        actual = {
            p: (
                self.client_as(p).get(self.detail_url(self.acme_object)).status_code,
                self.client_as(p).get(self.detail_url(self.globex_object)).status_code,
            )
            for p in PERSONAS
        }
        expected = {
            p: (
                200 if p in self.viewers else self.denied_status(p),
                200 if p in self.globex_viewers else outside,
            )
            for p in PERSONAS
        }
        assert actual == expected

    def test_create_permissions(self) -> None:
        self.check_write_permissions("create")

    def test_update_permissions(self) -> None:
        self.check_write_permissions("update")

    def test_delete_permissions(self) -> None:
        self.check_write_permissions("delete")

    def test_read_only_token_cannot_write(self) -> None:
        # On a read-only endpoint the token scope still answers first (403, not 405).
        writes = self.offered_writes() or [("create", self.list_as)]
        actual, expected = {}, {}
        for operation, persona in writes:
            client, _ = token_client_for(self.personas[persona], ApiToken.Scope.READ)
            reads = client.get(self.list_url()).status_code
            actual[operation] = (reads, self.outcome(client, operation))
            expected[operation] = (200, "403")
        assert actual == expected

    def test_writes_through_a_token_are_audited_with_user_and_token(self) -> None:
        actual, expected = {}, {}
        for operation, persona in self.offered_writes():
            user = self.personas[persona]
            client, token = token_client_for(user, ApiToken.Scope.WRITE)
            with rolled_back():
                events_before = set(AuditEvent.objects.values_list("pk", flat=True))
                status = self.perform(client, operation).status_code
                new_events = AuditEvent.objects.exclude(pk__in=events_before)
                actual[operation] = (status, {(e.actor_id, e.token_id) for e in new_events})
            expected[operation] = (SUCCESS_STATUS[operation], {(user.pk, token.pk)})
        assert actual == expected

    def test_list_query_count_does_not_grow_with_rows(
        self, django_assert_max_num_queries: Any
    ) -> None:
        client = self.client_as(self.list_as)
        self.make_rows(3)
        with CaptureQueriesContext(connection) as few_rows:
            few = client.get(self.list_url())
        assert few.status_code == 200
        assert len(few_rows) <= self.max_list_queries

        self.make_rows(12)
        with django_assert_max_num_queries(len(few_rows)):
            many = client.get(self.list_url())
        assert many.data["count"] == few.data["count"] + 12


class TenantResourceEndpointTests(APIEndpointTests):
    """Clusters and VMs: acme's people and the platform roles see them, its admin and member
    (and operators) create and delete them; a deletion carries the name typed to confirm."""

    viewers = ACME_TENANT_VIEWERS
    creators = deleters = ACME_RESOURCE_WRITERS

    def perform(self, client: APIClient, operation: Operation) -> Any:
        if operation == "delete":
            name = self.acme_object.serializable_value("name")
            url = self.detail_url(self.acme_object)
            return client.delete(url, {"confirm_name": name}, format="json")
        return super().perform(client, operation)


class CatalogEndpointTests(APIEndpointTests):
    """Everyone signed in reads the catalog; only operators add to it or change it."""

    viewers = globex_viewers = frozenset(PERSONAS)
    creators = updaters = frozenset({"oscar"})

    def create_denied_status(self, persona: str) -> int:
        return 403


def write_outcomes(
    personas: dict[str, User], url: str, payload: dict[str, Any]
) -> dict[str, tuple[int, bool]]:
    """POST ``payload`` to ``url`` as each persona (each rolled back): (status, audited)."""
    outcomes = {}
    for name, user in personas.items():
        with rolled_back():
            before = AuditEvent.objects.count()
            response = api_client_for(user).post(url, payload, format="json")
            outcomes[name] = (response.status_code, AuditEvent.objects.count() > before)
    return outcomes


def listed_names(user: User, url: str, **filters: str) -> list[str]:
    """The names in a list endpoint's answer to ``user``, filtered by query parameters."""
    response = api_client_for(user).get(url, filters)
    return sorted(row["name"] for row in response.data["results"])


def check_deleting_needs_the_typed_name(user: User, url: str, name: str) -> None:
    """A wrong name in the body, or none at all, is a 400 on ``confirm_name``; the right name
    in the query string deletes (204)."""
    client = api_client_for(user)

    wrong = client.delete(url, {"confirm_name": "nope"}, format="json")
    missing = client.delete(url)
    by_query = client.delete(f"{url}?confirm_name={name}")

    assert (wrong.status_code, missing.status_code) == (400, 400)
    assert set(wrong.data) == set(missing.data) == {"confirm_name"}
    assert by_query.status_code == 204
