"""Day-2 actions on a cluster from the browser portal, the kubeconfig download, CSRF, and the
toasts the live channel carries when a cluster becomes Ready or fails.

acme: alice admin, bob member, carol viewer; globex: gina admin; oscar operator, audrey
auditor. Every action is a dialog (GET asks) and a POST (the service does it, or says why not
on the field to change).
"""

from __future__ import annotations

import base64
import re
from typing import Any

import pytest
import yaml
from cryptography import x509
from cryptography.x509.oid import NameOID
from django.urls import reverse
from django.utils import timezone

from butler_portal import realtime
from butler_portal.kube.adapter import KubeClient
from clusters.models import Cluster, KubernetesVersion
from clusters.provisioning import cluster_fail
from tenants.models import AuditEvent, Tenant, User
from tests.clusters.conftest import (
    kamaji_control_plane,
    make_cluster_row,
    make_ready,
    observe,
    request,
)
from tests.clusters.test_kubeconfig import kubeadm_style_ca, running_cluster, store_ca
from tests.conftest import browser_client_for
from tests.ui.conftest import check_dialog_and_page, csrf_checking_client, errors_of, htmx

pytestmark = pytest.mark.usefixtures("catalog")


def acme_url(name: str, cluster: Cluster) -> str:
    return reverse(name, args=["acme", cluster.pk])


def ready(tenant: Tenant, user: User, name: str = "web", **fields: Any) -> Cluster:
    """A cluster requested through the service (its quota reserved) and reported Ready."""
    return make_ready(request(tenant, user, name, **fields))


# --- Who may act ------------------------------------------------------------------------------


def test_only_members_admins_and_operators_may_post_an_action(
    personas: dict[str, User], acme: Tenant, globex: Tenant
) -> None:
    outcomes = {}
    for name in ("carol", "audrey", "gina", "nobody", "bob", "alice", "oscar"):
        cluster = make_cluster_row(acme, name=f"for-{name}")
        response = browser_client_for(personas[name]).post(acme_url("cluster-protect", cluster))
        cluster.refresh_from_db()
        outcomes[name] = (response.status_code, cluster.deletion_protection)
    assert outcomes == {
        "carol": (403, False),
        "audrey": (403, False),
        "gina": (404, False),
        "nobody": (404, False),
        "bob": (302, True),
        "alice": (302, True),
        "oscar": (302, True),
    }


def test_a_viewer_posting_to_delete_is_refused_and_the_cluster_stays(
    bob: User, carol: User, acme: Tenant
) -> None:
    cluster = ready(acme, bob)
    response = browser_client_for(carol).post(
        acme_url("cluster-delete", cluster), {"confirm_name": "web"}
    )
    assert response.status_code == 403
    assert "Your role in this tenant is read-only." in response.content.decode()
    assert Cluster.objects.filter(pk=cluster.pk).exists()


def test_csrf_is_enforced_on_actions_and_on_creating(bob: User, acme: Tenant) -> None:
    cluster = ready(acme, bob)
    client, token = csrf_checking_client(bob, acme_url("cluster-detail", cluster))

    assert client.post(acme_url("cluster-hibernate", cluster)).status_code == 403
    assert client.post(reverse("cluster-create", args=["acme"]), {"name": "x"}).status_code == 403
    cluster.refresh_from_db()
    assert not cluster.hibernated

    accepted = client.post(
        acme_url("cluster-hibernate", cluster),
        headers={**htmx("modal-body"), "X-CSRFToken": token},
    )
    assert accepted["HX-Redirect"] == acme_url("cluster-detail", cluster)
    cluster.refresh_from_db()
    assert cluster.hibernated


# --- Dialogs ----------------------------------------------------------------------------------


def test_actions_open_as_dialogs_for_htmx_and_as_pages_without_it(bob: User, acme: Tenant) -> None:
    cluster = ready(acme, bob)
    url = acme_url("cluster-hibernate", cluster)
    check_dialog_and_page(browser_client_for(bob), url, "Hibernate web?")


def test_hibernate_wake_and_protection_change_the_cluster_and_the_log(
    bob: User, acme: Tenant
) -> None:
    cluster = ready(acme, bob)
    client = browser_client_for(bob)
    for action in ("hibernate", "protect"):
        response = client.post(acme_url(f"cluster-{action}", cluster))
        assert response["Location"] == acme_url("cluster-detail", cluster), action
    cluster.refresh_from_db()
    assert (cluster.hibernated, cluster.deletion_protection) == (True, True)
    detail = client.get(acme_url("cluster-detail", cluster)).content.decode()
    assert "Deletion protection of web is on." in detail  # the last action's toast
    assert '<li class="action-item" data-action="wake">' in detail
    assert '<li class="action-item" data-action="hibernate">' not in detail

    client.post(acme_url("cluster-wake", cluster))
    client.post(acme_url("cluster-unprotect", cluster))
    cluster.refresh_from_db()
    assert (cluster.hibernated, cluster.deletion_protection) == (False, False)
    assert list(
        AuditEvent.objects.filter(object_type="cluster", object_id=str(cluster.pk))
        .order_by("occurred_at", "id")
        .values_list("action", flat=True)
    ) == ["create", "hibernate", "protect", "wake", "unprotect"]


def test_a_refusal_of_the_service_shows_in_the_dialog(bob: User, acme: Tenant) -> None:
    cluster = request(acme, bob, "web")  # pending: it cannot hibernate yet
    response = browser_client_for(bob).post(
        acme_url("cluster-hibernate", cluster), headers=htmx("modal-body")
    )
    assert errors_of(response.content.decode()) == {
        "__all__": ["Only a running cluster that is not changing can hibernate."]
    }
    cluster.refresh_from_db()
    assert not cluster.hibernated


def test_retry_applies_a_failed_cluster_again(bob: User, acme: Tenant) -> None:
    cluster = request(acme, bob, "web")
    cluster_fail(cluster_id=cluster.pk, reason="It broke")
    response = browser_client_for(bob).post(acme_url("cluster-retry", cluster))
    assert response.status_code == 302
    cluster.refresh_from_db()
    assert (cluster.apply_error, cluster.phase) == ("", Cluster.Phase.PENDING)


# --- Deleting ---------------------------------------------------------------------------------


def test_deleting_asks_for_the_name_typed_and_refuses_anything_else(
    bob: User, acme: Tenant
) -> None:
    cluster = ready(acme, bob)
    client = browser_client_for(bob)
    dialog = client.get(acme_url("cluster-delete", cluster), headers=htmx("modal-body"))
    assert '<label class="field-label" for="id_confirm_name">Type “web” to confirm</label>' in (
        dialog.content.decode()
    )
    wrong = client.post(
        acme_url("cluster-delete", cluster), {"confirm_name": "wbe"}, headers=htmx("modal-body")
    )
    assert errors_of(wrong.content.decode()) == {
        "confirm_name": ["Type the cluster's name, web, to confirm."]
    }
    assert 'name="confirm_name" value="wbe"' in wrong.content.decode()
    assert Cluster.objects.filter(pk=cluster.pk).exists()

    done = client.post(
        acme_url("cluster-delete", cluster), {"confirm_name": "web"}, headers=htmx("modal-body")
    )
    assert done["HX-Redirect"] == reverse("cluster-list", args=["acme"])
    assert not Cluster.objects.filter(pk=cluster.pk).exists()  # no Kubernetes: gone at once
    listing = client.get(reverse("cluster-list", args=["acme"])).content.decode()
    assert "Cluster web was deleted." in listing


def test_deletion_protection_refuses_the_delete_even_with_the_name_typed(
    bob: User, acme: Tenant
) -> None:
    cluster = ready(acme, bob, deletion_protection=True)
    response = browser_client_for(bob).post(
        acme_url("cluster-delete", cluster), {"confirm_name": "web"}, headers=htmx("modal-body")
    )
    assert errors_of(response.content.decode()) == {
        "__all__": ["Deletion protection is on: turn it off first."]
    }
    assert Cluster.objects.filter(pk=cluster.pk).exists()


# --- Scaling and upgrading --------------------------------------------------------------------


def test_the_scale_dialog_previews_what_more_workers_take(bob: User, acme: Tenant) -> None:
    cluster = ready(acme, bob, worker_count=2)
    client = browser_client_for(bob)
    dialog = client.get(acme_url("cluster-scale", cluster), headers=htmx("modal-body"))
    text = dialog.content.decode()
    assert 'name="worker_count" value="2"' in text
    assert f'hx-get="{acme_url("cluster-scale", cluster)}"' in text
    assert 'hx-target="#scale-preview"' in text
    assert "The same number of workers: nothing changes." in text

    more = client.get(
        acme_url("cluster-scale", cluster), {"worker_count": 5}, headers=htmx("scale-preview")
    ).content.decode()
    assert "<html" not in more
    assert "<form" not in more
    assert re.findall(r'data-resource="(\w+)"', more) == [
        "worker_nodes",
        "vcpu",
        "memory_mib",
        "storage_gib",
    ]  # a new cluster and its endpoint address are not needed again
    assert '<span class="quota-row-amount">+3</span>' in more
    fewer = client.get(
        acme_url("cluster-scale", cluster), {"worker_count": 1}, headers=htmx("scale-preview")
    ).content.decode()
    assert "Fewer workers: what the removed ones hold goes back to the quota." in fewer


def test_scaling_beyond_the_quota_is_refused_on_the_worker_count(bob: User, acme: Tenant) -> None:
    cluster = ready(acme, bob, worker_count=2)
    client = browser_client_for(bob)
    refused = client.post(
        acme_url("cluster-scale", cluster), {"worker_count": 12}, headers=htmx("modal-body")
    )
    text = refused.content.decode()
    assert errors_of(text) == {
        "worker_count": ["Needs 10 more worker nodes but only 8 of 10 is left in the quota."]
    }
    assert 'name="worker_count" value="12"' in text
    assert 'data-resource="worker_nodes"' in text  # the preview of what was typed, too
    cluster.refresh_from_db()
    assert cluster.worker_count == 2

    client.post(acme_url("cluster-scale", cluster), {"worker_count": 4})
    cluster.refresh_from_db()
    assert cluster.worker_count == 4


def test_the_upgrade_dialog_offers_only_the_next_step(bob: User, acme: Tenant) -> None:
    older = KubernetesVersion.objects.get(version="v1.34.4")
    cluster = make_ready(make_cluster_row(acme, name="web", version=older, worker_count=1))
    client = browser_client_for(bob)
    dialog = client.get(acme_url("cluster-upgrade", cluster), headers=htmx("modal-body"))
    offered = re.findall(
        r'<input type="radio" name="version" value="\d+"[^>]*>\s*([^<]+)</label>',
        dialog.content.decode(),
    )
    assert [label.strip() for label in offered] == ["v1.35.4 · default"]  # not v1.36.3

    skipping = KubernetesVersion.objects.get(version="v1.36.3")
    refused = client.post(
        acme_url("cluster-upgrade", cluster),
        {"version": skipping.pk},
        headers=htmx("modal-body"),
    )
    assert "version" in errors_of(refused.content.decode())
    client.post(
        acme_url("cluster-upgrade", cluster),
        {"version": KubernetesVersion.objects.get(version="v1.35.4").pk},
    )
    cluster.refresh_from_db()
    assert cluster.version.version == "v1.35.4"


# --- Kubeconfig -------------------------------------------------------------------------------


def test_a_kubeconfig_not_available_yet_sends_back_to_the_page_with_the_reason(
    bob: User, acme: Tenant
) -> None:
    cluster = request(acme, bob, "web")
    client = browser_client_for(bob)
    response = client.get(acme_url("cluster-kubeconfig", cluster))
    assert response["Location"] == acme_url("cluster-detail", cluster)
    page = client.get(response["Location"]).content.decode()
    assert "A kubeconfig is available once the control plane runs" in page
    assert not AuditEvent.objects.filter(action="download_kubeconfig").exists()


def subject_groups(document: str) -> tuple[str, list[str]]:
    user = yaml.safe_load(document)["users"][0]["user"]
    certificate = x509.load_pem_x509_certificate(base64.b64decode(user["client-certificate-data"]))
    common_name = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    groups = certificate.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    return str(common_name), [str(group.value) for group in groups]


@pytest.mark.k8s
def test_the_download_is_a_private_file_scoped_to_the_role(
    bob: User, carol: User, gina: User, acme: Tenant, portal_k8s: KubeClient
) -> None:
    certificate, key = kubeadm_style_ca()
    store_ca(portal_k8s, "ui-web", certificate, key)
    cluster = running_cluster(acme, "ui-web")
    url = acme_url("cluster-kubeconfig", cluster)

    response = browser_client_for(bob).get(url)
    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="acme-ui-web.kubeconfig"'
    assert "no-store" in response["Cache-Control"]
    assert response["Content-Type"].startswith("application/yaml")
    document = response.content.decode()
    assert yaml.safe_load(document)["current-context"] == "acme-ui-web"
    assert subject_groups(document) == ("bob", ["butler:cluster-admins"])

    for_carol = browser_client_for(carol).get(url)
    assert subject_groups(for_carol.content.decode()) == ("carol", ["butler:viewers"])
    assert browser_client_for(gina).get(url).status_code == 404
    assert list(
        AuditEvent.objects.filter(action="download_kubeconfig")
        .order_by("occurred_at", "id")
        .values_list("actor_username", "changes__group")
    ) == [("bob", "butler:cluster-admins"), ("carol", "butler:viewers")]


# --- Toasts on the live channel ---------------------------------------------------------------


def test_the_live_channel_toasts_when_a_cluster_becomes_ready_or_fails(
    bob: User,
    acme: Tenant,
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Any,
) -> None:
    sent: list[dict[str, Any]] = []
    monkeypatch.setattr(
        realtime,
        "send_tenant_event",
        lambda tenant_id, kind, object_id=None, **data: sent.append(
            {"kind": kind, "id": object_id, **data}
        ),
    )
    cluster = make_cluster_row(acme, name="web", worker_count=1)
    with django_capture_on_commit_callbacks(execute=True):
        Cluster.objects.filter(pk=cluster.pk).update(applied_at=timezone.now())
        cluster.refresh_from_db()
        observe(cluster, [kamaji_control_plane("web", done_until="TenantControlPlaneCreated")])
        make_ready(cluster)
    toasts = [(event["phase"], event.get("toast"), event.get("level")) for event in sent]
    assert toasts[-1] == ("ready", "Cluster acme/web is ready.", "success")
    assert all(toast is None for _, toast, _ in toasts[:-1])  # the steps in between are quiet

    sent.clear()
    with django_capture_on_commit_callbacks(execute=True):
        cluster_fail(cluster_id=cluster.pk, reason="Kubernetes rejected it")
    assert [(e["phase"], e.get("toast"), e.get("level")) for e in sent] == [
        ("failed", "Cluster acme/web failed: Kubernetes rejected it", "error")
    ]
