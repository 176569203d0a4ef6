"""The operator console's catalogs page, and the dialog that adds or changes an entry."""

from __future__ import annotations

from functools import cached_property
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.db.models import Model
from django.http import Http404
from django.shortcuts import get_object_or_404
from django.urls import reverse

from tenants.audit import Actor
from tenants.catalogs import Catalog, CatalogForm, catalog_for, registered_catalogs
from tenants.views.base import ConfirmActionView, Confirmation
from tenants.views.operator import ConsoleView


def catalogs_url(catalog: Catalog | None = None) -> str:
    """The catalogs page, scrolled to ``catalog``.

    A query, not a fragment: after a save, htmx sends the browser to this URL, and a URL
    that differs from the current one only by its fragment would scroll, not reload.
    """
    url = reverse("operator-catalogs")
    return f"{url}?{urlencode({'catalog': catalog.key})}" if catalog else url


class OperatorCatalogsView(ConsoleView):
    """Every catalog tenants choose from, with what was made from each entry."""

    template_name = "operator/catalogs.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["catalogs"] = [(catalog, catalog.rows()) for catalog in registered_catalogs()]
        context["shown"] = self.request.GET.get("catalog", "")
        return context


class CatalogEntryView(ConsoleView, ConfirmActionView):
    """Add an entry (no ``pk``) or change one: a dialog for htmx, a page otherwise.

    The form runs the catalog's checks on its fields; the save service runs them again
    under its lock, and a refusal from there lands on the same fields.
    """

    operators_only = True
    template_name = "operator/catalog_entry_page.html"
    partial_templates = {"modal-body": "operator/catalog_entry_form.html"}

    @cached_property
    def catalog(self) -> Catalog:
        catalog = catalog_for(self.kwargs["catalog"])
        if catalog is None:
            raise Http404("No such catalog.")
        return catalog

    @cached_property
    def entry(self) -> Model | None:
        if "pk" not in self.kwargs:
            return None
        return get_object_or_404(self.catalog.model, pk=self.kwargs["pk"])

    @cached_property
    def form(self) -> CatalogForm:
        return self.catalog.form(self.submitted_data(), self.entry)

    def get_form(self) -> CatalogForm:
        return self.form

    def confirmation(self) -> Confirmation:
        noun = self.catalog.noun
        if self.entry is None:
            title, button = f"Add a {noun}", f"Add {noun}"
        else:
            title, button = f"Change the {noun} {self.catalog.name_of(self.entry)}", "Save"
        return Confirmation(
            title=title,
            message=self.catalog.description,
            button=button,
            cancel_url=catalogs_url(self.catalog),
            danger=False,
        )

    def perform(self) -> str:
        added = self.entry is None
        entry = self.form.instance  # filled in from the valid form
        self.catalog.save(Actor.from_request(self.request), entry)
        name = self.catalog.name_of(entry)
        noun = self.catalog.noun
        messages.success(
            self.request,
            f"{noun[0].upper()}{noun[1:]} {name} was {'added' if added else 'changed'}.",
        )
        return catalogs_url(self.catalog)
