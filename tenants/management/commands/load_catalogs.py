"""Load the starting catalogs of a new installation: no accounts, no tenants, only offers."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from tenants.audit import Actor
from tenants.catalogs import load_starting_entries


class Command(BaseCommand):
    help = (
        "Add the starting catalog entries that are missing: Kubernetes versions, instance "
        "types, the cluster add-ons, VM images and storage classes. Creates no account and no "
        "tenant. Idempotent: an entry that exists (by name) is never changed, so running it "
        "again, on every release for instance, adds only what a new release brings and keeps "
        "every edit and retirement an operator made. Additions go through the catalogs' save "
        "services and are audited."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        added = load_starting_entries(Actor.system())
        for title, count in added.items():
            self.stdout.write(f"{title}: {count} added" if count else f"{title}: up to date")
        total = sum(added.values())
        self.stdout.write(
            self.style.SUCCESS(f"Catalogs loaded: {total} entries added.")
            if total
            else "Catalogs already loaded: nothing changed."
        )
