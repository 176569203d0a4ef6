"""The Django admin's two kinds of pages, for every app: catalogs and tenant-owned rows.

Operators curate catalogs (Kubernetes versions, instance types, add-ons, VM images, storage
classes) here. Saves go through the same services as the API (validation, one default,
audit); catalog entries are retired (end of life, inactive) rather than deleted. Tenant-owned
rows (clusters, VMs) are shown, never edited: changes go through the portal, where they are
checked and audited.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.forms import ModelForm
from django.http import HttpRequest

from tenants.access import is_operator
from tenants.audit import Actor


class OperatorAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Only platform operators see these pages; nothing is deleted through them."""

    def has_module_permission(self, request: HttpRequest) -> bool:
        return is_operator(request.user)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return is_operator(request.user)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class CatalogAdmin(OperatorAdmin):
    """Operators add and change entries; ``save_with_service`` saves through the service."""

    readonly_fields = ["created_at"]  # set once, when the entry is added

    def has_add_permission(self, request: HttpRequest) -> bool:
        return is_operator(request.user)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return is_operator(request.user)

    def save_model(self, request: HttpRequest, obj: Any, form: ModelForm, change: bool) -> None:  # type: ignore[type-arg]
        self.save_with_service(Actor.from_request(request), obj)

    def save_with_service(self, actor: Actor, obj: Any) -> None:
        raise NotImplementedError


class TenantOwnedAdmin(OperatorAdmin):
    """Read-only: changes go through the portal, where they are checked and audited."""

    search_fields = ["name", "tenant__slug"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
