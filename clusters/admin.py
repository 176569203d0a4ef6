"""Django admin: operators curate the catalog here; clusters are shown, never edited.

Saves go through the same services as the API (validation, one default version, audit);
catalog entries are retired (end of life, inactive) rather than deleted.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from django.contrib import admin
from django.forms import ModelForm
from django.forms.models import construct_instance
from django.http import HttpRequest

from clusters.models import Cluster, ClusterAddon, ClusterStep, InstanceType, KubernetesVersion
from clusters.services import (
    cluster_addon_check,
    cluster_addon_save,
    instance_type_check,
    instance_type_save,
    kubernetes_version_check,
    kubernetes_version_save,
)
from tenants.access import is_operator
from tenants.audit import Actor


class CatalogForm(ModelForm):  # type: ignore[type-arg]
    """Runs the service's checks while the form can still show them on its fields."""

    check: Callable[[Any], None]

    def clean(self) -> dict[str, Any] | None:
        cleaned = super().clean()
        # The row as it would be saved (the form fills the real instance only after clean).
        candidate = construct_instance(self, copy.copy(self.instance))
        type(self).check(candidate)
        return cleaned


def catalog_form(check: Callable[[Any], None]) -> type[CatalogForm]:
    return type("CatalogCheckedForm", (CatalogForm,), {"check": staticmethod(check)})


class CatalogAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    def has_module_permission(self, request: HttpRequest) -> bool:
        return is_operator(request.user)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return is_operator(request.user)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return is_operator(request.user)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return is_operator(request.user)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: Any, form: ModelForm, change: bool) -> None:  # type: ignore[type-arg]
        self.save_with_service(Actor.from_request(request), obj)

    def save_with_service(self, actor: Actor, obj: Any) -> None:
        raise NotImplementedError


@admin.register(KubernetesVersion)
class KubernetesVersionAdmin(CatalogAdmin):
    form = catalog_form(kubernetes_version_check)
    list_display = ["version", "status", "node_image", "created_at"]
    list_filter = ["status"]

    def save_with_service(self, actor: Actor, obj: Any) -> None:
        kubernetes_version_save(actor=actor, version=obj)


@admin.register(InstanceType)
class InstanceTypeAdmin(CatalogAdmin):
    form = catalog_form(instance_type_check)
    list_display = ["name", "vcpu", "memory_mib", "active", "description"]
    list_filter = ["active"]

    def save_with_service(self, actor: Actor, obj: Any) -> None:
        instance_type_save(actor=actor, instance_type=obj)


@admin.register(ClusterAddon)
class ClusterAddonAdmin(CatalogAdmin):
    form = catalog_form(cluster_addon_check)
    list_display = ["name", "chart", "version", "required", "active"]
    list_filter = ["required", "active"]

    def save_with_service(self, actor: Actor, obj: Any) -> None:
        cluster_addon_save(actor=actor, addon=obj)


class ClusterStepInline(admin.TabularInline):  # type: ignore[type-arg]
    model = ClusterStep
    fields = ("label", "state", "message", "started_at", "finished_at")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Cluster)
class ClusterAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Read-only: changes go through the portal, where they are checked and audited."""

    list_display = [
        "name",
        "tenant",
        "phase",
        "version",
        "worker_count",
        "instance_type",
        "created_at",
    ]
    list_filter = ["phase", "tenant"]
    search_fields = ["name", "tenant__slug"]
    inlines = [ClusterStepInline]

    def has_module_permission(self, request: HttpRequest) -> bool:
        return is_operator(request.user)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return is_operator(request.user)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
