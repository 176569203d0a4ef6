"""manage.py load_catalogs: the starting catalogs of a production install, without accounts."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.forms.models import model_to_dict

from clusters.models import ClusterAddon, InstanceType, KubernetesVersion
from tenants.audit import Actor
from tenants.models import AuditEvent, LoadBalancerRange, Tenant, User
from vms.models import StorageClass, VMImage
from vms.services import storage_class_save

pytestmark = pytest.mark.django_db

CATALOG_MODELS = (KubernetesVersion, InstanceType, ClusterAddon, VMImage, StorageClass)


def load() -> str:
    out = StringIO()
    call_command("load_catalogs", stdout=out)
    return out.getvalue()


def snapshot() -> dict[str, list[dict[str, object]]]:
    return {
        model.__name__: [model_to_dict(row) for row in model.objects.order_by("pk")]
        for model in CATALOG_MODELS
    }


def test_loads_every_catalog_and_no_account() -> None:
    output = load()

    assert KubernetesVersion.objects.filter(status=KubernetesVersion.Status.DEFAULT).count() == 1
    assert InstanceType.objects.filter(name="m1.medium").exists()
    required = set(ClusterAddon.objects.filter(required=True).values_list("name", flat=True))
    assert {"cilium", "portal-access"} <= required
    assert VMImage.objects.filter(name="ubuntu-24.04").exists()
    assert StorageClass.objects.get(is_default=True).name == "linstor"
    # Nothing that belongs to the demo: no account, no tenant, no demo address range.
    assert not User.objects.exists()
    assert not Tenant.objects.exists()
    assert not LoadBalancerRange.objects.exists()
    # Every addition went through the save services, which audit it.
    added = sum(model.objects.count() for model in CATALOG_MODELS)
    assert AuditEvent.objects.filter(action="create").count() == added
    assert "Kubernetes versions: 5 added" in output
    assert f"{added} entries added" in output


def test_running_twice_changes_nothing() -> None:
    load()
    before, events = snapshot(), AuditEvent.objects.count()

    output = load()

    assert snapshot() == before
    assert AuditEvent.objects.count() == events
    assert "nothing changed" in output


def test_keeps_an_operators_edits_and_choices() -> None:
    load()
    actor = Actor.system()
    # An operator rewords an instance type, retires an image, makes their own storage class
    # the default and picks another default Kubernetes version.
    InstanceType.objects.filter(name="m1.small").update(description="Our smallest size")
    VMImage.objects.filter(name="fedora-41").update(active=False)
    storage_class_save(
        actor=actor,
        storage_class=StorageClass(name="ceph", kubernetes_name="ceph-rbd", is_default=True),
    )
    KubernetesVersion.objects.filter(version="v1.35.4").update(
        status=KubernetesVersion.Status.SUPPORTED
    )
    KubernetesVersion.objects.filter(version="v1.34.4").update(
        status=KubernetesVersion.Status.DEFAULT
    )
    before = snapshot()

    load()

    assert snapshot() == before
    assert InstanceType.objects.get(name="m1.small").description == "Our smallest size"
    assert not VMImage.objects.get(name="fedora-41").active
    assert StorageClass.objects.get(is_default=True).name == "ceph"
    assert KubernetesVersion.objects.get(status=KubernetesVersion.Status.DEFAULT).version == (
        "v1.34.4"
    )


def test_adds_only_what_is_missing() -> None:
    load()
    InstanceType.objects.filter(name="r1.large").delete()  # as if a new release brought it
    count = InstanceType.objects.count()

    output = load()

    assert InstanceType.objects.count() == count + 1
    assert "Instance types: 1 added" in output


def test_the_demo_seed_loads_the_same_catalogs() -> None:
    call_command("seed_demo", force=True, quiet_credentials=True, stdout=StringIO())
    seeded = snapshot()

    load()

    assert snapshot() == seeded
    assert all(seeded.values())
