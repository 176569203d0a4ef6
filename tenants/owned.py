"""Tenant-owned resources in Kubernetes (clusters, VMs): where they live, and back.

A tenant's objects live in its namespace: the ``TenantNetwork``'s, or, for tenants onboarded
before networks existed (no network row), the conventional ``<prefix><slug>``. They are
applied once that namespace is there, and a refusal is told in Kubernetes' own words. The
watcher goes the other way: from an object's namespace and labels to the portal row it
belongs to, and to the managed objects whose row is gone (orphans, for the drift report).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from django.conf import settings
from django.db.models import Q

from butler_portal.kube import kube_client
from butler_portal.kube.errors import Invalid, KubeError
from butler_portal.labels import TENANT_KEY
from butler_portal.tasks import NamespaceNotReady
from tenants.models import TenantNetwork
from tenants.network import namespace_for

if TYPE_CHECKING:
    from django.db import models
    from django.db.models.options import Options

    from butler_portal.kube.adapter import KubeClient, Manifest
    from tenants.models import Tenant


class TenantOwnedRow(Protocol):
    """A row of a model with a ``tenant`` foreign key (a cluster, a VM)."""

    @property
    def pk(self) -> Any: ...

    @property
    def tenant_id(self) -> int: ...

    @property
    def tenant(self) -> Tenant: ...

    @property
    def _meta(self) -> Options[Any]: ...


def namespace_of(owned: TenantOwnedRow) -> str:
    """The namespace of ``owned``'s tenant (also the name of its MetalLB address pool)."""
    network = TenantNetwork.objects.filter(tenant_id=owned.tenant_id).only("namespace").first()
    return network.namespace if network else namespace_for(owned.tenant.slug)


def owned_in_namespace(namespace: str) -> Q:
    """A filter for tenant-owned rows whose tenant lives in ``namespace``."""
    in_namespace = Q(tenant__network__namespace=namespace)
    prefix = settings.TENANT_NAMESPACE_PREFIX
    if namespace.startswith(prefix):
        # Tenants onboarded before networks existed have no TenantNetwork row.
        in_namespace |= Q(tenant__network__isnull=True, tenant__slug=namespace.removeprefix(prefix))
    return in_namespace


def apply_client(owned: TenantOwnedRow, *, note: Callable[[str], None]) -> KubeClient | None:
    """The client to apply ``owned``'s objects with, once its tenant's namespace is there.

    None, after ``note`` says why, when no Kubernetes is configured; ``NamespaceNotReady``
    (the task tries again shortly) while the tenant's namespace and network are on their way.
    """
    client = kube_client()
    if client is None:
        note("No Kubernetes cluster is configured: nothing was applied.")
        return None
    network = TenantNetwork.objects.filter(tenant_id=owned.tenant_id).first()
    if network is not None and network.applied_at is None:
        note("Waiting for the tenant's namespace and network.")
        raise NamespaceNotReady(owned.pk)
    return client


def waiting_for_namespace(model: type[models.Model], *, tenant_id: int) -> list[int]:
    """Ids of the tenant's ``model`` rows (clusters, VMs) asked for but never applied: they
    waited for the tenant's namespace, and may go ahead once it is there."""
    return list(
        model._default_manager.filter(
            tenant_id=tenant_id,
            applied_at__isnull=True,
            apply_error="",
            deletion_requested_at__isnull=True,
        ).values_list("pk", flat=True)
    )


def object_name(manifest: Mapping[str, Any]) -> str:
    """How people read an object in a message: "VirtualMachine web"."""
    return f"{manifest.get('kind', 'an object')} {manifest.get('metadata', {}).get('name', '')}".strip()


def refusal_reason(manifest: Mapping[str, Any], error: KubeError) -> str:
    """Why Kubernetes did not take ``manifest``, in its own words (a failed state's reason)."""
    if isinstance(error, Invalid):
        return f"Kubernetes rejected {object_name(manifest)}: {error.summary}"
    return f"Kubernetes refused {object_name(manifest)}: {error.message}"


def orphans_by_owner_label(
    objects: Sequence[Manifest],
    *,
    model: type[models.Model],
    owner_label: str,
    owner_kind: str,
) -> list[tuple[Manifest, str]]:
    """Managed objects labelled with a tenant and an owner (``owner_label``: its name) of
    which ``model`` has no row, and why each is an orphan ("cluster acme/web no longer
    exists", with ``owner_kind`` "cluster")."""

    def owner(obj: Manifest) -> tuple[str, str]:
        labels = (obj.get("metadata") or {}).get("labels") or {}
        return str(labels.get(TENANT_KEY, "")), str(labels.get(owner_label, ""))

    labelled = {owner(obj) for obj in objects if all(owner(obj))}
    slugs = {slug for slug, _ in labelled}
    known = set(
        model._default_manager.filter(tenant__slug__in=slugs).values_list("tenant__slug", "name")
    )
    return [
        (obj, f"{owner_kind} {owner(obj)[0]}/{owner(obj)[1]} no longer exists")
        for obj in objects
        if all(owner(obj)) and owner(obj) not in known
    ]
