"""A starting VM catalog: a few cloud images and a LINSTOR default storage class.

Idempotent and polite: rows that exist (by name) are left as the operator set them.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction

from tenants.audit import Actor
from vms.models import StorageClass, VMImage
from vms.services import storage_class_save, vm_image_save

OS, Source = VMImage.OS, VMImage.SourceKind

IMAGES: list[dict[str, Any]] = [
    {
        "name": "ubuntu-24.04",
        "display_name": "Ubuntu 24.04 LTS",
        "os": OS.UBUNTU,
        "source_kind": Source.CONTAINER_DISK,
        "source": "quay.io/containerdisks/ubuntu:24.04",
        "default_login_user": "ubuntu",
        "min_disk_gib": 10,
    },
    {
        "name": "debian-12",
        "display_name": "Debian 12 (bookworm)",
        "os": OS.DEBIAN,
        "source_kind": Source.HTTP,
        "source": "https://cloud.debian.org/images/cloud/bookworm/latest/debian-12-generic-amd64.qcow2",
        "default_login_user": "debian",
        "min_disk_gib": 10,
    },
    {
        "name": "fedora-41",
        "display_name": "Fedora 41",
        "os": OS.FEDORA,
        "source_kind": Source.CONTAINER_DISK,
        "source": "quay.io/containerdisks/fedora:41",
        "default_login_user": "fedora",
        "min_disk_gib": 10,
    },
]

STORAGE_CLASSES: list[dict[str, Any]] = [
    {
        "name": "linstor",
        "kubernetes_name": "linstor-replicated",
        "description": "LINSTOR, replicated on two nodes: survives the loss of a node.",
        "is_default": True,
    },
]


@transaction.atomic
def seed_vm_catalog(actor: Actor | None = None) -> None:
    actor = actor or Actor.system()
    for fields in IMAGES:
        if not VMImage.objects.filter(name=fields["name"]).exists():
            vm_image_save(actor=actor, image=VMImage(**fields))
    for fields in STORAGE_CLASSES:
        if not StorageClass.objects.filter(name=fields["name"]).exists():
            is_default = (
                fields["is_default"] and not StorageClass.objects.filter(is_default=True).exists()
            )
            storage_class_save(
                actor=actor, storage_class=StorageClass(**{**fields, "is_default": is_default})
            )
