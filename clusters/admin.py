"""Django admin: operators curate the cluster catalog here; clusters are shown, never edited.

Saves go through the same services as the API (validation, one default version, audit);
catalog entries are retired (end of life, inactive) rather than deleted.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
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
from tenants.admin_base import CatalogAdmin, TenantOwnedAdmin
from tenants.audit import Actor
from tenants.catalogs import catalog_form


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
class ClusterAdmin(TenantOwnedAdmin):
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
    inlines = [ClusterStepInline]
