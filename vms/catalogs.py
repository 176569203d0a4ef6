"""The VMs' catalogs in the operator console: images and storage classes."""

from __future__ import annotations

from tenants.catalogs import (
    Badge,
    Catalog,
    Column,
    UsedBy,
    register_catalog,
    register_starting_entries,
    retired_badge,
    saved_by,
)
from vms.models import StorageClass, VMImage
from vms.seed import seed_vm_catalog
from vms.services import (
    STORAGE_CLASS_FIELDS,
    VM_IMAGE_FIELDS,
    storage_class_check,
    storage_class_save,
    vm_image_check,
    vm_image_save,
)

VMS = UsedBy("vms", "VM", "VMs")


VM_IMAGES = Catalog(
    key="vm-images",
    title="VM images",
    noun="VM image",
    description=(
        "Root disks for new virtual machines; CDI imports one into each VM's disk. VMs "
        "made from an image keep their disk when it changes."
    ),
    model=VMImage,
    fields=VM_IMAGE_FIELDS,
    labels={
        "os": "Operating system",
        "source_kind": "Source kind",
        "default_login_user": "Login user",
        "min_disk_gib": "Smallest disk (GiB)",
        "active": "Offered",
    },
    check=vm_image_check,
    save=saved_by(vm_image_save, "image"),
    name_of=lambda image: image.name,
    columns=(
        Column("Image", lambda image: image.display_name),
        Column("Source", lambda image: image.source, mono=True, long=True),
        Column("Kind", lambda image: image.get_source_kind_display()),
        Column("Login", lambda image: image.default_login_user or "—", mono=True),
    ),
    badge=lambda image: retired_badge(not image.active),
    used_by=(VMS,),
    order=40,
)

STORAGE_CLASSES = Catalog(
    key="storage-classes",
    title="Storage classes",
    noun="storage class",
    description=(
        "Where VM disks are provisioned. The default is used when a VM names none; making "
        "another one the default demotes it."
    ),
    model=StorageClass,
    fields=STORAGE_CLASS_FIELDS,
    labels={"kubernetes_name": "Kubernetes StorageClass", "is_default": "Default for new VMs"},
    check=storage_class_check,
    save=saved_by(storage_class_save, "storage_class"),
    name_of=lambda storage_class: storage_class.name,
    columns=(
        Column("Name", lambda storage_class: storage_class.name, mono=True),
        Column(
            "Kubernetes StorageClass",
            lambda storage_class: storage_class.kubernetes_name,
            mono=True,
        ),
        Column("Description", lambda storage_class: storage_class.description),
    ),
    badge=lambda storage_class: (
        Badge("Default", "blue") if storage_class.is_default else Badge("Offered", "green")
    ),
    used_by=(VMS,),
    order=50,
)


def register_vm_catalogs() -> None:
    for catalog in (VM_IMAGES, STORAGE_CLASSES):
        register_catalog(catalog)
    register_starting_entries(seed_vm_catalog)  # manage.py load_catalogs
