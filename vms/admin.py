"""Django admin: operators curate the VM catalog here; VMs are shown, never edited.

Saves go through the same services as the API (validation, one default storage class,
audit); images are retired (inactive) rather than deleted.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin

from tenants.admin_base import CatalogAdmin, TenantOwnedAdmin
from tenants.audit import Actor
from tenants.catalogs import catalog_form
from vms.models import StorageClass, VirtualMachine, VMImage
from vms.services import storage_class_check, storage_class_save, vm_image_check, vm_image_save


@admin.register(VMImage)
class VMImageAdmin(CatalogAdmin):
    form = catalog_form(vm_image_check)
    list_display = ["name", "display_name", "os", "source_kind", "source", "active"]
    list_filter = ["os", "source_kind", "active"]

    def save_with_service(self, actor: Actor, obj: Any) -> None:
        vm_image_save(actor=actor, image=obj)


@admin.register(StorageClass)
class StorageClassAdmin(CatalogAdmin):
    form = catalog_form(storage_class_check)
    list_display = ["name", "kubernetes_name", "is_default", "description"]

    def save_with_service(self, actor: Actor, obj: Any) -> None:
        storage_class_save(actor=actor, storage_class=obj)


@admin.register(VirtualMachine)
class VirtualMachineAdmin(TenantOwnedAdmin):
    list_display = ["name", "tenant", "state", "image", "instance_type", "disk_gib", "created_at"]
    list_filter = ["state", "tenant"]
    exclude = ["user_data_encrypted"]
