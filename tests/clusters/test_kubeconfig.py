"""Personal kubeconfigs: signed by the cluster's CA, role-scoped, short-lived, audited.

The end-to-end test hands the portal the local API server's own CA as the "tenant cluster"
CA, so kube-apiserver itself says who the kubeconfig authenticates as and what RBAC lets
that identity do.
"""

from __future__ import annotations

import base64
import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from django.core.exceptions import ValidationError
from django.urls import reverse

from butler_portal.kube.adapter import KubeClient
from butler_portal.kube.errors import Forbidden
from butler_portal.kube.localcp import LocalControlPlane
from butler_portal.kube.pki import private_key_pem
from clusters.kubeconfig import cluster_kubeconfig
from clusters.models import Cluster
from tenants.audit import Actor
from tenants.models import ApiToken, AuditEvent, Tenant, User
from tests.api_mixin import token_client_for
from tests.clusters.conftest import (
    kamaji_control_plane,
    make_cluster_row,
    observe,
    tenant_control_plane,
)
from tests.conftest import api_client_for

pytestmark = [pytest.mark.k8s, pytest.mark.usefixtures("catalog")]

NAMESPACE = "tenant-acme"


def kubeadm_style_ca() -> tuple[bytes, bytes]:
    """An RSA CA like the ones kubeadm (and so Kamaji) generates."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kubernetes")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return (
        certificate.public_bytes(serialization.Encoding.PEM),
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        ),
    )


def store_ca(
    client: KubeClient, cluster: str, certificate: bytes, key: bytes, *, kamaji_keys: bool = False
) -> None:
    """The ``<cluster>-ca`` Secret as CACPPK (tls.*) or Kamaji itself (ca.*) writes it."""
    prefix = "ca" if kamaji_keys else "tls"
    client.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})
    client.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": f"{cluster}-ca", "namespace": NAMESPACE},
            "data": {
                f"{prefix}.crt": base64.b64encode(certificate).decode(),
                f"{prefix}.key": base64.b64encode(key).decode(),
            },
        }
    )


def running_cluster(tenant: Tenant, name: str, endpoint: str = "192.0.2.10:6443") -> Cluster:
    """A cluster whose control plane Kamaji reports up, at ``endpoint``."""
    from django.utils import timezone

    cluster = make_cluster_row(tenant, name=name, applied_at=timezone.now())
    return observe(
        cluster,
        [
            kamaji_control_plane(name),
            tenant_control_plane(name, endpoint=endpoint, namespace=NAMESPACE),
        ],
    )


def client_certificate(kubeconfig: str) -> x509.Certificate:
    user = yaml.safe_load(kubeconfig)["users"][0]["user"]
    return x509.load_pem_x509_certificate(base64.b64decode(user["client-certificate-data"]))


def subject_of(certificate: x509.Certificate) -> tuple[str, list[str]]:
    common_name = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    groups = [
        a.value for a in certificate.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    ]
    return str(common_name), [str(group) for group in groups]


@pytest.fixture
def ca(portal_k8s: KubeClient) -> tuple[bytes, bytes]:
    certificate, key = kubeadm_style_ca()
    store_ca(portal_k8s, "web", certificate, key)
    return certificate, key


def test_members_get_the_admin_group_and_viewers_the_read_only_one(
    acme: Tenant,
    bob: User,
    carol: User,
    alice: User,
    oscar: User,
    audrey: User,
    ca: tuple[bytes, bytes],
) -> None:
    cluster = running_cluster(acme, "web")
    ca_certificate = x509.load_pem_x509_certificate(ca[0])

    subjects = {}
    for user in (alice, bob, carol, oscar, audrey):
        certificate = client_certificate(cluster_kubeconfig(actor=Actor(user), cluster=cluster))
        certificate.verify_directly_issued_by(ca_certificate)
        subjects[user.username] = subject_of(certificate)

    assert subjects == {
        "alice": ("alice", ["butler:cluster-admins"]),
        "bob": ("bob", ["butler:cluster-admins"]),
        "carol": ("carol", ["butler:viewers"]),
        "oscar": ("oscar", ["butler:cluster-admins"]),
        "audrey": ("audrey", ["butler:viewers"]),
    }


def test_the_kubeconfig_points_at_the_endpoint_and_lives_as_configured(
    acme: Tenant, bob: User, ca: tuple[bytes, bytes], settings: Any
) -> None:
    settings.CLUSTER_KUBECONFIG_LIFETIME_HOURS = 2
    cluster = running_cluster(acme, "web")

    document = yaml.safe_load(cluster_kubeconfig(actor=Actor(bob), cluster=cluster))

    assert document["current-context"] == "acme-web"
    assert document["clusters"][0]["cluster"]["server"] == "https://192.0.2.10:6443"
    assert (
        base64.b64decode(document["clusters"][0]["cluster"]["certificate-authority-data"]) == ca[0]
    )
    certificate = client_certificate(yaml.safe_dump(document))
    lifetime = certificate.not_valid_after_utc - datetime.datetime.now(datetime.UTC)
    assert datetime.timedelta(hours=1, minutes=58) < lifetime <= datetime.timedelta(hours=2)
    event = AuditEvent.objects.get(action="download_kubeconfig")
    assert (event.actor, event.tenant, event.object_id) == (bob, acme, str(cluster.pk))
    assert event.changes == {
        "group": "butler:cluster-admins",
        "expires_at": certificate.not_valid_after_utc.isoformat(),
    }


def test_kamajis_own_key_names_work_too(acme: Tenant, bob: User, portal_k8s: KubeClient) -> None:
    certificate, key = kubeadm_style_ca()
    store_ca(portal_k8s, "kamaji", certificate, key, kamaji_keys=True)
    cluster = running_cluster(acme, "kamaji")

    issued = client_certificate(cluster_kubeconfig(actor=Actor(bob), cluster=cluster))

    issued.verify_directly_issued_by(x509.load_pem_x509_certificate(certificate))


def test_no_kubeconfig_before_the_control_plane_runs_or_its_ca_exists(
    acme: Tenant, bob: User, portal_k8s: KubeClient
) -> None:
    provisioning = make_cluster_row(acme, name="early")
    with pytest.raises(ValidationError) as raised:
        cluster_kubeconfig(actor=Actor(bob), cluster=provisioning)
    assert "once the control plane runs" in raised.value.messages[0]

    without_ca = running_cluster(acme, "no-ca-yet")
    with pytest.raises(ValidationError) as raised:
        cluster_kubeconfig(actor=Actor(bob), cluster=without_ca)
    assert raised.value.messages == ["The cluster's certificate authority is not issued yet."]
    assert not AuditEvent.objects.filter(action="download_kubeconfig").exists()


def test_the_api_serves_it_as_a_download_scoped_by_role_and_token(
    acme: Tenant, personas: dict[str, User], ca: tuple[bytes, bytes]
) -> None:
    cluster = running_cluster(acme, "web")
    url = reverse("api:cluster-kubeconfig", args=[cluster.pk])

    statuses = {name: api_client_for(user).get(url).status_code for name, user in personas.items()}
    assert statuses == {
        "alice": 200,
        "bob": 200,
        "carol": 200,
        "gina": 404,
        "oscar": 200,
        "audrey": 200,
        "nobody": 404,
    }

    response = api_client_for(personas["bob"]).get(url, HTTP_ACCEPT="application/yaml")
    assert response["Content-Type"] == "application/yaml"
    assert response["Content-Disposition"] == 'attachment; filename="acme-web.kubeconfig"'
    assert response["Cache-Control"] == "no-store"
    # A read-only token is a read-only credential, whatever its owner's role.
    read_only, _ = token_client_for(personas["bob"], ApiToken.Scope.READ)
    downloaded = read_only.get(url)
    assert subject_of(client_certificate(downloaded.content.decode())) == (
        "bob",
        ["butler:viewers"],
    )

    early = make_cluster_row(acme, name="early")
    refused = api_client_for(personas["bob"]).get(
        reverse("api:cluster-kubeconfig", args=[early.pk])
    )
    assert refused.status_code == 400
    assert "control plane" in refused.json()["non_field_errors"][0]


def test_kube_apiserver_authenticates_it_and_rbac_keeps_viewers_read_only(
    local_k8s: LocalControlPlane,
    portal_k8s: KubeClient,
    acme: Tenant,
    bob: User,
    carol: User,
    tmp_path: Path,
) -> None:
    # The local API server plays the tenant cluster: its CA signs the portal's certificates,
    # and the groups are bound as the portal-access add-on binds them in a tenant cluster.
    authority = local_k8s._certificate_authority  # the test's own control plane
    store_ca(portal_k8s, "real", authority.certificate_pem, private_key_pem(authority._key))
    from clusters.seed import access_rules_values

    for binding in yaml.safe_load(access_rules_values())["resources"]:
        portal_k8s.apply(binding)
    # kube-controller-manager fills the aggregated "view" role in a real cluster; do its job.
    aggregated = portal_k8s.get(
        "rbac.authorization.k8s.io/v1", "ClusterRole", "system:aggregate-to-view"
    )
    portal_k8s.apply(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": "view"},
            "rules": aggregated["rules"],
        },
        field_manager="clusterrole-aggregation-controller",
    )
    cluster = running_cluster(acme, "real", endpoint=local_k8s.server_url.removeprefix("https://"))

    identities = {}
    for user in (bob, carol):
        path = tmp_path / f"{user.username}.kubeconfig"
        path.write_text(cluster_kubeconfig(actor=Actor(user), cluster=cluster))
        with KubeClient.from_kubeconfig(path) as client:
            review = client.create(
                {
                    "apiVersion": "authentication.k8s.io/v1",
                    "kind": "SelfSubjectReview",
                    "metadata": {"name": "whoami"},
                }
            )
            info = review["status"]["userInfo"]
            identities[user.username] = (info["username"], sorted(info["groups"]))
            client.list("v1", "ConfigMap", NAMESPACE)  # both may read
            scratch = {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": f"by-{user.username}", "namespace": NAMESPACE},
            }
            if user == carol:
                with pytest.raises(Forbidden):
                    client.apply(scratch)
            else:
                client.apply(scratch)

    assert identities == {
        "bob": ("bob", ["butler:cluster-admins", "system:authenticated"]),
        "carol": ("carol", ["butler:viewers", "system:authenticated"]),
    }
