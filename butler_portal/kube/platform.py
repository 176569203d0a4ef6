"""What a real management cluster already has before the portal arrives.

A production cluster runs MetalLB, Kamaji, Cluster API and KubeVirt, whose installs create
their namespaces. The local control plane has only their CRDs, so the embedded mode and the
tests create those namespaces here, once.
"""

from __future__ import annotations

from django.conf import settings

from butler_portal.kube.adapter import KubeClient


def platform_namespaces() -> list[str]:
    return [
        settings.METALLB_NAMESPACE,
        "kamaji-system",
        "capi-system",
        "kubevirt",
        "cdi",
        "flux-system",
    ]


def prepare_local_platform(client: KubeClient) -> None:
    for name in platform_namespaces():
        client.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
