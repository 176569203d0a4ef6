"""The operators' catalogs: what tenants choose from (versions, sizes, images, storage...).

Each app describes its catalogs as ``Catalog`` entries and registers them from its
``AppConfig.ready()``; the operator console shows them all on one page, and the Django
admin uses the same forms. Entries are added and changed through the catalog's save
service, the very one the API calls (validation, one default, audit), and never deleted:
they are retired (end of life, inactive) so the clusters and VMs made from them keep their
history.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, cast

from django.db import transaction
from django.db.models import Count, Model, QuerySet
from django.forms import ModelForm, modelform_factory
from django.forms.models import construct_instance

from tenants.audit import Actor


class CatalogForm(ModelForm):  # type: ignore[type-arg]
    """Runs the service's checks while the form can still show them on its fields."""

    check: Callable[[Any], None]

    def clean(self) -> dict[str, Any] | None:
        cleaned = super().clean()
        if self.errors:
            return cleaned  # the field errors come first; the service needs valid fields
        # The row as it would be saved (the form fills the real instance only after clean).
        candidate = construct_instance(self, copy.copy(self.instance))
        type(self).check(candidate)
        return cleaned


def catalog_form(check: Callable[[Any], None]) -> type[CatalogForm]:
    return type("CatalogCheckedForm", (CatalogForm,), {"check": staticmethod(check)})


@dataclass(frozen=True)
class Column:
    """One column of a catalog's table: a heading and what each row shows under it."""

    label: str
    value: Callable[[Any], object]
    mono: bool = False  # names and references people copy: kept on one line...
    long: bool = False  # ...unless long (image references, URLs): those wrap anywhere


@dataclass(frozen=True)
class Badge:
    label: str
    tone: str  # a badge colour: green, blue, amber, red, grey


@dataclass(frozen=True)
class UsedBy:
    """A relation whose rows were made from a catalog entry (``vms``: "VM", "VMs")."""

    accessor: str
    singular: str
    plural: str


@dataclass(frozen=True)
class CatalogRow:
    entry: Model
    name: str
    cells: list[tuple[object, Column]]
    badge: Badge
    usage: str  # "3 clusters · 1 VM", or "" when nothing was made from it


@dataclass(frozen=True)
class Catalog:
    """One catalog as the operator console shows and edits it."""

    key: str  # the URL segment: /operator/catalogs/<key>/
    title: str  # "VM images"
    noun: str  # "VM image"
    description: str
    model: type[Model]
    fields: tuple[str, ...]  # what the form edits, in order
    labels: Mapping[str, str]  # the form's labels where the field's own name says too little
    check: Callable[[Any], None]  # the service's refusals, shown on the form's fields
    save: Callable[[Actor, Any], object]  # the save service
    name_of: Callable[[Any], str]
    columns: tuple[Column, ...]
    badge: Callable[[Any], Badge]
    used_by: tuple[UsedBy, ...] = ()
    fixed: tuple[str, ...] = ()  # fields an entry keeps once added (shown, not editable)
    order: int = 100

    def form_class(self) -> type[CatalogForm]:
        form = modelform_factory(
            self.model, form=catalog_form(self.check), fields=self.fields, labels=dict(self.labels)
        )
        return cast("type[CatalogForm]", form)

    def form(self, data: Any, entry: Model | None) -> CatalogForm:
        """The add form (no entry) or the change form of ``entry``."""
        form = self.form_class()(data, instance=entry)
        if entry is not None:
            for name in self.fixed:
                form.fields[name].disabled = True
                form.fields[name].help_text = "Fixed once added: add a new entry instead."
        return form

    def entries(self) -> QuerySet[Any]:
        # Spelled out: Django leaves the model's default ordering out of grouped queries.
        return self.model._default_manager.order_by(*(self.model._meta.ordering or ()))

    def rows(self) -> list[CatalogRow]:
        counts = {
            f"used_by_{use.accessor}": Count(use.accessor, distinct=True) for use in self.used_by
        }
        return [
            CatalogRow(
                entry=entry,
                name=self.name_of(entry),
                cells=[(column.value(entry), column) for column in self.columns],
                badge=self.badge(entry),
                usage=" · ".join(
                    f"{count} {use.singular if count == 1 else use.plural}"
                    for use in self.used_by
                    if (count := getattr(entry, f"used_by_{use.accessor}"))
                ),
            )
            for entry in self.entries().annotate(**counts)
        ]


def saved_by(service: Callable[..., object], keyword: str) -> Callable[[Actor, Any], object]:
    """A catalog's ``save`` from its save service, which takes the entry as ``keyword``."""
    return lambda actor, entry: service(actor=actor, **{keyword: entry})


_catalogs: dict[str, Catalog] = {}


def register_catalog(catalog: Catalog) -> None:
    _catalogs[catalog.key] = catalog


def registered_catalogs() -> list[Catalog]:
    return sorted(_catalogs.values(), key=lambda catalog: (catalog.order, catalog.title))


def catalog_for(key: str) -> Catalog | None:
    return _catalogs.get(key)


def retired_badge(retired: bool, *, offered: str = "Offered") -> Badge:
    return Badge("Retired", "grey") if retired else Badge(offered, "green")


# --- Starting entries ---------------------------------------------------------------------
# What a new installation offers before an operator has curated anything. Each app registers
# a loader from AppConfig.ready(), beside its catalogs, so whoever loads them (``manage.py
# load_catalogs``, the demo seed) needs to know no app. A loader adds the entries that are
# missing, by name, through the catalog's save service (checks, one default, audit), and
# leaves every existing entry exactly as it stands: an operator's edits and retirements win.

StartingEntries = Callable[[Actor], object]

_starting_entries: list[StartingEntries] = []


def register_starting_entries(load: StartingEntries) -> None:
    if load not in _starting_entries:  # ready() may run more than once (tests, reloads)
        _starting_entries.append(load)


def load_starting_entries(actor: Actor) -> dict[str, int]:
    """Run every app's loader in one transaction; the entries each catalog gained, by title."""
    catalogs = registered_catalogs()
    before = {catalog.key: catalog.entries().count() for catalog in catalogs}
    with transaction.atomic():
        for load in _starting_entries:
            load(actor)
    return {catalog.title: catalog.entries().count() - before[catalog.key] for catalog in catalogs}
