"""The operator console's fleet: every tenant's clusters and VMs, filtered on the server.

Each app describes its kind of object as a ``FleetKind`` and registers it from its
``AppConfig.ready()``, as it registers its tenant pages and catalogs. The page shows one kind
at a time: counts by state across the platform, then the table, searched by name and
narrowed by state and tenant, and paginated. Both reload live from the platform's channel
(``/ws/platform/``), which carries every tenant's events to operators and auditors.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from django import forms
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import QueryDict

from tenants.access import Action
from tenants.forms import ObjectFilterForm
from tenants.models import Tenant, User
from tenants.views.base import current_user, htmx_target
from tenants.views.objects import ObjectKind, ObjectRow
from tenants.views.operator import ConsoleView

RESULTS = "fleet-results"
SUMMARY = "fleet-summary"
PER_PAGE = 25


@dataclass(frozen=True)
class FleetKind:
    """One kind of tenant object as the fleet lists it."""

    key: str  # the ?kind= value: "clusters", "vms"
    kind: ObjectKind  # its noun, icon and how its states look
    objects: Callable[[User], QuerySet[Any]]  # what the user may see (the app's scoping selector)
    rows: Callable[[Iterable[Any]], list[ObjectRow]]
    filter_form: type[ObjectFilterForm]
    describe: Callable[[Any], str]  # its shape in a few words: version, size, image...
    order: int = 100

    @property
    def detail_url_name(self) -> str:
        return self.kind.named("detail")


_fleet: dict[str, FleetKind] = {}


def register_fleet_kind(fleet_kind: FleetKind) -> None:
    _fleet[fleet_kind.key] = fleet_kind


def fleet_kinds() -> list[FleetKind]:
    return sorted(_fleet.values(), key=lambda fleet_kind: (fleet_kind.order, fleet_kind.key))


class TenantFilterForm(forms.Form):
    """The fleet's tenant filter: every tenant (``?tenant=``, empty) or one, by slug."""

    tenant = forms.ChoiceField(required=False, label="Tenant")

    def __init__(self, data: QueryDict | None, tenants: Iterable[Tenant]) -> None:
        super().__init__(data)
        field = self.fields["tenant"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = [("", "All tenants"), *((t.slug, t.name) for t in tenants)]

    def slug(self) -> str:
        return str(self.cleaned_data["tenant"]) if self.is_valid() else ""


class OperatorFleetView(ConsoleView):
    template_name = "operator/fleet.html"
    partial_templates = {
        RESULTS: "operator/_fleet_results.html",
        SUMMARY: "operator/_fleet_summary.html",
    }

    def fleet_kind(self) -> FleetKind:
        kinds = fleet_kinds()
        chosen = self.request.GET.get("kind", "")
        return next((k for k in kinds if k.key == chosen), kinds[0])

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        fleet_kind = self.fleet_kind()
        objects = fleet_kind.objects(current_user(self.request))
        target = htmx_target(self.request)
        context.update(fleet_kind=fleet_kind, kind=fleet_kind.kind, fleet_kinds=fleet_kinds())
        if target != RESULTS:
            context["summary"] = self.summary(fleet_kind, objects)
        if target != SUMMARY:
            context.update(self.results(fleet_kind, objects))
        return context

    def summary(self, fleet_kind: FleetKind, objects: QuerySet[Any]) -> list[tuple[Any, int]]:
        """How many there are in each group of states, across the platform."""
        return fleet_kind.kind.states.tally(objects)[1]

    def results(self, fleet_kind: FleetKind, objects: QuerySet[Any]) -> dict[str, Any]:
        params = self.request.GET
        filters = fleet_kind.filter_form(params)
        tenants = Tenant.objects.for_user(current_user(self.request), Action.VIEW).order_by("name")
        tenant_filter = TenantFilterForm(params, tenants)
        objects = filters.narrow(objects)
        if slug := tenant_filter.slug():
            objects = objects.filter(tenant__slug=slug)
        ordered = objects.order_by("tenant__name", "name", "id")
        page = Paginator(ordered, PER_PAGE).get_page(params.get("page"))
        return {
            "filter_form": filters,
            "tenant_filter": tenant_filter,
            "page": page,
            "rows": [
                (row, fleet_kind.describe(row.object)) for row in fleet_kind.rows(page.object_list)
            ],
            "filtered": filters.narrows or bool(slug),
        }
