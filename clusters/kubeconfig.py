"""Personal, short-lived kubeconfigs for tenant clusters.

Nobody gets the cluster's shared admin kubeconfig. Each download carries a fresh client
certificate signed by the tenant cluster's CA (the ``<cluster>-ca`` Secret the Kamaji
provider keeps, STATUS.md §10.3) for the portal user (CN) in one group (O) that the tenant
cluster binds to a role: members and admins get the cluster-admin group, viewers (and
read-only API tokens) the read-only group. The bindings are installed into every cluster
by the required ``portal-access`` add-on (``clusters.seed``). Downloads are audited.
"""

from __future__ import annotations

import base64
import datetime
from dataclasses import dataclass

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed448, ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction

from butler_portal.kube import kube_client
from butler_portal.kube.errors import KubeError, NotFound, Transient
from butler_portal.kube.pki import BACKDATE, KeyPair, new_private_key, private_key_pem
from clusters.models import Cluster
from clusters.provisioning import cluster_plan
from clusters.selectors import cluster_action_refusal
from tenants.access import Action, user_can
from tenants.audit import Actor, audit_record
from tenants.models import Tenant


@dataclass(frozen=True)
class ClusterCA:
    certificate_pem: bytes
    private_key_pem: bytes


def access_group(actor: Actor, tenant: Tenant) -> str:
    """The tenant-cluster group for this actor: admins only for those who may change things.

    A read-only API token gets the read-only group whatever its user's role.
    """
    user = actor.user
    writes = actor.token is None or actor.token.allows_writes
    if user is not None and writes and user_can(user, tenant, Action.OPERATE):
        return str(settings.CLUSTER_ADMIN_GROUP)
    return str(settings.CLUSTER_VIEWER_GROUP)


def ca_secret_name(cluster_name: str) -> str:
    return f"{cluster_name}-ca"


def ca_from_secret(secret: dict[str, object]) -> ClusterCA:
    """The CA in a ``<cluster>-ca`` Secret: CAPI's ``tls.*`` keys, or Kamaji's ``ca.*``."""
    data = secret.get("data") or {}
    assert isinstance(data, dict)
    for certificate_key, key_key in (("tls.crt", "tls.key"), ("ca.crt", "ca.key")):
        if data.get(certificate_key) and data.get(key_key):
            return ClusterCA(
                certificate_pem=base64.b64decode(data[certificate_key]),
                private_key_pem=base64.b64decode(data[key_key]),
            )
    raise ValueError("the Secret holds no certificate authority")


def sign_client_certificate(
    ca: ClusterCA, *, user: str, groups: list[str], lifetime: datetime.timedelta
) -> KeyPair:
    """A client certificate for ``user`` in ``groups`` (CN and O, as kube-apiserver reads them)."""
    ca_certificate = x509.load_pem_x509_certificate(ca.certificate_pem)
    ca_key = serialization.load_pem_private_key(ca.private_key_pem, password=None)
    key = new_private_key()
    now = datetime.datetime.now(datetime.UTC)
    subject = x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, user)]
        + [x509.NameAttribute(NameOID.ORGANIZATION_NAME, group) for group in groups]
    )
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + lifetime)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
    )
    # Ed25519/Ed448 keys sign without a separate hash; RSA and ECDSA (kubeadm's) with SHA-256.
    algorithm = (
        None
        if isinstance(ca_key, ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey)
        else hashes.SHA256()
    )
    certificate = builder.sign(ca_key, algorithm)  # type: ignore[arg-type]
    return KeyPair(
        certificate_pem=certificate.public_bytes(serialization.Encoding.PEM),
        private_key_pem=private_key_pem(key),
    )


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def kubeconfig_document(
    *, context: str, server: str, ca_pem: bytes, user: str, credentials: KeyPair
) -> str:
    user_entry = f"{user}@{context}"
    document = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": context,
                "cluster": {"server": server, "certificate-authority-data": _b64(ca_pem)},
            }
        ],
        "users": [
            {
                "name": user_entry,
                "user": {
                    "client-certificate-data": _b64(credentials.certificate_pem),
                    "client-key-data": _b64(credentials.private_key_pem),
                },
            }
        ],
        "contexts": [{"name": context, "context": {"cluster": context, "user": user_entry}}],
        "current-context": context,
    }
    return yaml.safe_dump(document, sort_keys=False)


def kubeconfig_filename(cluster: Cluster) -> str:
    return f"{cluster.tenant.slug}-{cluster.name}.kubeconfig"


def cluster_kubeconfig(*, actor: Actor, cluster: Cluster) -> str:
    """A kubeconfig for the acting user, valid ``CLUSTER_KUBECONFIG_LIFETIME_HOURS``; audited."""
    user = actor.user
    if user is None:
        raise ValidationError({"__all__": "Only a signed-in user can download a kubeconfig."})
    refusal = cluster_action_refusal(cluster, "kubeconfig")
    if refusal:
        raise ValidationError({"__all__": refusal}, code="invalid_state")
    client = kube_client()
    if client is None:
        raise ValidationError({"__all__": "No Kubernetes cluster is configured."})
    plan = cluster_plan(cluster)
    try:
        secret = client.get("v1", "Secret", ca_secret_name(cluster.name), plan.namespace)
        ca = ca_from_secret(secret)
    except NotFound as error:
        raise ValidationError(
            {"__all__": "The cluster's certificate authority is not issued yet."}
        ) from error
    except Transient as error:
        raise ValidationError(
            {"__all__": "Kubernetes did not answer; try again in a moment."}
        ) from error
    except (KubeError, ValueError) as error:
        raise ValidationError(
            {"__all__": f"The cluster's certificate authority is unusable: {error}"}
        ) from error
    group = access_group(actor, cluster.tenant)
    lifetime = datetime.timedelta(hours=settings.CLUSTER_KUBECONFIG_LIFETIME_HOURS)
    credentials = sign_client_certificate(
        ca, user=user.get_username(), groups=[group], lifetime=lifetime
    )
    expires_at = x509.load_pem_x509_certificate(credentials.certificate_pem).not_valid_after_utc
    with transaction.atomic():
        audit_record(
            actor=actor,
            action="download_kubeconfig",
            tenant=cluster.tenant,
            target=cluster,
            object_repr=f"{cluster.tenant.slug}/{cluster.name}",
            changes={"group": group, "expires_at": expires_at.isoformat()},
        )
    return kubeconfig_document(
        context=f"{cluster.tenant.slug}-{cluster.name}",
        server=cluster.server_url,
        ca_pem=ca.certificate_pem,
        user=user.get_username(),
        credentials=credentials,
    )
