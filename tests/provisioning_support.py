"""What the provisioning tests of clusters and VMs share, against the real API server.

A tenant onboarded for real (its namespace, quota and network exist in Kubernetes);
admission policies of the management cluster: Kubernetes itself then refuses what breaks
them with a 422, as it would for any policy or schema rule the portal's own checks do not
know about; and stray objects, portal-labelled but owned by nothing the portal has, for the
drift reconcile to report.
"""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from ipaddress import IPv4Address
from typing import Any

from butler_portal.kube.adapter import KubeClient, Manifest
from butler_portal.kube.errors import Invalid
from tenants.audit import Actor
from tenants.models import LoadBalancerRange, Tenant, User
from tenants.services import tenant_create


def unused_public_range(name: str) -> LoadBalancerRange:
    """Fourteen public addresses no earlier test is likely to have handed out: the API server
    outlives each test's database, and the Services of earlier tests keep theirs (MetalLB
    never hands an address out twice), so a range every test reuses runs dry late in a run."""
    block = IPv4Address("198.18.0.0") + 16 * secrets.randbelow(8192)
    return LoadBalancerRange.objects.create(
        name=name, first_address=str(block + 1), last_address=str(block + 14)
    )


def onboarded_tenant(operator: User, prefix: str, limits: Mapping[str, int]) -> Tenant:
    """A new tenant, onboarded by ``operator``; the caller has the catalog seeded."""
    slug = f"{prefix}-{uuid.uuid4().hex[:6]}"
    return tenant_create(actor=Actor(operator), slug=slug, name=slug, limits=dict(limits))


@contextmanager
def admission_policy(
    client: KubeClient, tenant: Tenant, *, resource: str, expression: str, message: str
) -> Iterator[Manifest]:
    """A policy on ``resource`` ("group/plural") in the tenant's namespace while the block runs.

    Yields the policy's binding: deleting it lifts the policy early.
    """
    group, _, plural = resource.rpartition("/")
    name = f"{plural}-{tenant.slug}"
    policy = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": name},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {
                "resourceRules": [
                    {
                        "apiGroups": [group],
                        "apiVersions": ["*"],
                        "operations": ["CREATE", "UPDATE"],
                        "resources": [plural],
                    }
                ]
            },
            "validations": [{"expression": expression, "message": message}],
        },
    }
    binding = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": name},
        "spec": {
            "policyName": name,
            "validationActions": ["Deny"],
            "matchResources": {
                "namespaceSelector": {"matchLabels": {"butler.io/tenant": tenant.slug}}
            },
        },
    }
    client.apply(policy)
    client.apply(binding)
    try:
        yield binding
    finally:
        client.delete_manifest(binding)
        client.delete_manifest(policy)


def wait_until_policy(client: KubeClient, probe: dict[str, Any], *, enforced: bool) -> None:
    """Policies take effect a moment after they are written (or deleted): apply ``probe``,
    which breaks the policy, until it is refused (``enforced``) or accepted again."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            client.apply(probe)
        except Invalid:
            if enforced:
                return
        else:
            client.delete_manifest(probe)
            if not enforced:
                return
        time.sleep(0.2)
    raise AssertionError(f"the admission policy did not {'start' if enforced else 'stop'} biting")


def stray_object(
    api_version: str, kind: str, name: str, tenant: Tenant, owner: Mapping[str, str], **body: Any
) -> Manifest:
    """An object in the tenant's namespace, labelled as the portal labels what it applies,
    for an ``owner`` (its label, e.g. {"butler.io/vm": "forgotten"}) the portal does not have."""
    return {
        "apiVersion": api_version,
        "kind": kind,
        "metadata": {
            "name": name,
            "namespace": f"tenant-{tenant.slug}",
            "labels": {
                "app.kubernetes.io/managed-by": "butler-portal",
                "butler.io/tenant": tenant.slug,
                **owner,
            },
        },
        **body,
    }
