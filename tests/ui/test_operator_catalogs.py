"""The operator console's catalogs: versions, instance types, add-ons, images, storage classes."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib import admin
from django.test import RequestFactory
from django.urls import reverse

from clusters.models import InstanceType, KubernetesVersion
from tenants.models import AuditEvent, Tenant, User
from tests.conftest import browser_client_for
from tests.ui.conftest import (
    check_dialog_and_page,
    errors_of,
    htmx,
    queries_for_get,
    row_of,
    toasts,
)
from tests.vms.conftest import image, instance_type, make_vm_row, storage_class
from vms.models import StorageClass, VMImage

pytestmark = pytest.mark.usefixtures("vm_catalog")

CATALOGS = reverse("operator-catalogs")
IMAGES = f"{CATALOGS}?catalog=vm-images"


def add_url(catalog: str) -> str:
    return reverse("operator-catalog-add", args=[catalog])


def change_url(catalog: str, pk: int) -> str:
    return reverse("operator-catalog-change", args=[catalog, pk])


def image_form(**changes: object) -> dict[str, object]:
    data: dict[str, object] = {
        "name": "rocky-9",
        "display_name": "Rocky Linux 9",
        "os": "rocky",
        "source_kind": "container-disk",
        "source": "quay.io/containerdisks/rockylinux:9",
        "default_login_user": "rocky",
        "min_disk_gib": 10,
        "description": "",
        "active": "on",
    }
    data.update(changes)
    return {key: value for key, value in data.items() if value is not None}


def cells(row: str) -> list[str]:
    return [
        re.sub(r"<[^>]+>", "", cell).strip()
        for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
    ]


def test_operators_see_every_catalog_and_what_was_made_from_each_entry(
    oscar: User, acme: Tenant
) -> None:
    make_vm_row(acme, name="web")
    make_vm_row(acme, name="db")
    text = browser_client_for(oscar).get(CATALOGS).content.decode()

    headings = re.findall(r'<h2 id="([\w-]+)-heading">', text)
    assert headings == [
        "kubernetes-versions",
        "instance-types",
        "cluster-addons",
        "vm-images",
        "storage-classes",
    ]
    ubuntu = cells(row_of(text, f"vm-images-{image().pk}"))
    assert ubuntu[:4] == [
        "Ubuntu 24.04 LTS",
        "quay.io/containerdisks/ubuntu:24.04",
        "Container disk",
        "ubuntu",
    ]
    assert ubuntu[4:6] == ["Offered", "2 VMs"]
    debian = cells(row_of(text, f"vm-images-{image('debian-12').pk}"))
    assert debian[5] == "Nothing yet"
    assert cells(row_of(text, f"instance-types-{instance_type().pk}"))[4] == "2 VMs"
    default = KubernetesVersion.objects.get(version="v1.35.4")
    assert cells(row_of(text, f"kubernetes-versions-{default.pk}"))[2] == "Default"
    end_of_life = KubernetesVersion.objects.get(version="v1.32.9")
    assert cells(row_of(text, f"kubernetes-versions-{end_of_life.pk}"))[2] == "End of life"
    assert cells(row_of(text, f"storage-classes-{storage_class().pk}"))[3] == "Default"
    assert f'hx-get="{add_url("vm-images")}" hx-target="#modal-body"' in text
    assert f'href="{change_url("vm-images", image().pk)}"' in text
    assert 'href="/operator/catalogs/" aria-current="page"' in text


def test_the_page_costs_the_same_queries_however_long_the_catalogs(oscar: User) -> None:
    client = browser_client_for(oscar)
    few = queries_for_get(client, CATALOGS)
    for number in range(8):
        VMImage.objects.create(
            name=f"extra-{number}",
            display_name=f"Extra {number}",
            source_kind="container-disk",
            source="quay.io/containerdisks/fedora:41",
        )
        InstanceType.objects.create(name=f"x{number}.large", vcpu=2, memory_mib=4096)
    assert queries_for_get(client, CATALOGS) == few


def test_auditors_read_the_catalogs_and_change_nothing(audrey: User) -> None:
    client = browser_client_for(audrey)
    text = client.get(CATALOGS).content.decode()

    assert "You have read-only access." in text
    assert "Ubuntu 24.04 LTS" in text
    assert "Add VM image" not in text
    assert "/operator/catalogs/vm-images/" not in text
    assert client.get(add_url("vm-images")).status_code == 403
    assert client.post(add_url("vm-images"), image_form()).status_code == 403
    assert client.post(change_url("vm-images", image().pk), image_form()).status_code == 403
    assert not VMImage.objects.filter(name="rocky-9").exists()


@pytest.mark.parametrize("persona", ["alice", "bob", "carol"])
def test_tenant_users_get_no_catalog_pages(persona: str, personas: dict[str, User]) -> None:
    client = browser_client_for(personas[persona])

    assert client.get(CATALOGS).status_code == 403
    assert client.post(add_url("vm-images"), image_form()).status_code == 403
    assert b"Catalogs" not in client.get(reverse("home"), follow=True).content
    assert not VMImage.objects.filter(name="rocky-9").exists()


def test_signed_out_visitors_are_sent_to_sign_in(client: Any) -> None:
    response = client.get(CATALOGS)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_an_operator_adds_an_image_in_a_dialog_and_it_is_audited(oscar: User) -> None:
    client = browser_client_for(oscar)
    check_dialog_and_page(client, add_url("vm-images"), "Add a VM image")

    response = client.post(add_url("vm-images"), image_form(), headers=htmx("modal-body"))

    assert response.status_code == 200
    assert response["HX-Redirect"] == IMAGES
    added = VMImage.objects.get(name="rocky-9")
    assert (added.source_kind, added.default_login_user, added.active) == (
        "container-disk",
        "rocky",
        True,
    )
    event = AuditEvent.objects.get(action="create", object_id=str(added.pk))
    assert (event.actor_id, event.changes["source"]) == (
        oscar.pk,
        "quay.io/containerdisks/rockylinux:9",
    )
    assert toasts(client.get(CATALOGS).content.decode()) == ["VM image rocky-9 was added."]


def test_bad_input_stays_in_the_dialog_on_its_field_and_saves_nothing(oscar: User) -> None:
    client = browser_client_for(oscar)
    url = add_url("vm-images")

    bad_name = client.post(url, image_form(name="Rocky 9"), headers=htmx("modal-body"))
    # The image's own check: an HTTP source must be a URL.
    bad_source = client.post(url, image_form(source_kind="http"), headers=htmx("modal-body"))
    taken = client.post(url, image_form(name="ubuntu-24.04"), headers=htmx("modal-body"))

    for response in (bad_name, bad_source, taken):
        assert response.status_code == 200
        assert "HX-Redirect" not in response
        assert "<html" not in response.content.decode()
    assert set(errors_of(bad_name.content.decode())) == {"name"}
    assert errors_of(bad_source.content.decode()) == {
        "source": ["Use an http:// or https:// URL of a disk image."]
    }
    assert set(errors_of(taken.content.decode())) == {"name"}
    # What was typed is still there to correct.
    assert 'value="Rocky Linux 9"' in bad_source.content.decode()
    assert not VMImage.objects.filter(display_name="Rocky Linux 9").exists()


def test_making_another_storage_class_the_default_demotes_the_old_one(oscar: User) -> None:
    client = browser_client_for(oscar)
    old = storage_class()

    response = client.post(
        add_url("storage-classes"),
        {"name": "fast", "kubernetes_name": "linstor-nvme", "description": "", "is_default": "on"},
    )

    assert response.status_code == 302, errors_of(response.content.decode())
    assert response["Location"] == f"{CATALOGS}?catalog=storage-classes"
    assert list(StorageClass.objects.filter(is_default=True).values_list("name", flat=True)) == [
        "fast"
    ]
    old.refresh_from_db()
    assert not old.is_default
    # The default leads its catalog.
    page = client.get(CATALOGS).content.decode()
    assert re.findall(r'<tr id="storage-classes-(\d+)"', page) == [
        str(StorageClass.objects.get(name="fast").pk),
        str(old.pk),
    ]


def test_the_django_admin_takes_a_new_default_too(oscar: User) -> None:
    request = RequestFactory().get("/")
    request.user = oscar
    form_class = admin.site._registry[StorageClass].get_form(request)

    form = form_class(
        data={
            "name": "fast",
            "kubernetes_name": "linstor-nvme",
            "description": "",
            "is_default": "on",
        }
    )

    # It used to refuse with the database's "one default" constraint before the save
    # service could demote the old default.
    assert form.is_valid(), form.errors


def test_the_default_version_stays_until_another_takes_its_place(oscar: User) -> None:
    client = browser_client_for(oscar)
    default = KubernetesVersion.objects.get(version="v1.35.4")
    url = change_url("kubernetes-versions", default.pk)

    form = client.get(url).content.decode()
    demoted = client.post(url, {"version": "v9.9.9", "status": "supported", "node_image": ""})
    promoted = client.post(
        change_url("kubernetes-versions", KubernetesVersion.objects.get(version="v1.36.3").pk),
        {"status": "default", "node_image": ""},
    )

    # The version string is shown but fixed once added.
    assert re.search(r'<input[^>]*name="version"[^>]*disabled', form)
    assert errors_of(demoted.content.decode()) == {
        "status": ["Make another version the default first."]
    }
    assert promoted.status_code == 302
    statuses = dict(KubernetesVersion.objects.values_list("version", "status"))
    assert (statuses["v1.35.4"], statuses["v1.36.3"]) == ("supported", "default")


def test_an_instance_type_in_use_keeps_its_size_and_may_retire(oscar: User, acme: Tenant) -> None:
    make_vm_row(acme, name="web")
    client = browser_client_for(oscar)
    size = instance_type()
    url = change_url("instance-types", size.pk)
    fields = {
        "name": size.name,
        "vcpu": size.vcpu,
        "memory_mib": size.memory_mib,
        "description": "",
    }

    resized = client.post(url, {**fields, "vcpu": size.vcpu * 2, "active": "on"})
    retired = client.post(url, fields)  # "active" unticked

    assert errors_of(resized.content.decode()) == {
        "vcpu": ["In use: add a new instance type instead of resizing this one."]
    }
    assert retired.status_code == 302
    size.refresh_from_db()
    assert (size.vcpu, size.active) == (fields["vcpu"], False)
    row = row_of(
        browser_client_for(oscar).get(CATALOGS).content.decode(), f"instance-types-{size.pk}"
    )
    assert cells(row)[3:5] == ["Retired", "1 VM"]


def test_unknown_catalogs_and_entries_are_not_found(oscar: User) -> None:
    client = browser_client_for(oscar)
    assert client.get(add_url("flavours")).status_code == 404
    assert client.get(change_url("vm-images", 999999)).status_code == 404
