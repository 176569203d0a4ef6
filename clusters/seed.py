"""A starting catalog: Kubernetes versions, instance types and the add-ons every cluster needs.

Idempotent and polite: rows that exist (by version, name) are left as the operator set them.
"""

from __future__ import annotations

import yaml
from django.conf import settings
from django.db import transaction

from clusters.models import ClusterAddon, InstanceType, KubernetesVersion
from clusters.selectors import default_version
from clusters.services import cluster_addon_save, instance_type_save, kubernetes_version_save
from tenants.audit import Actor

Status = KubernetesVersion.Status

# Kamaji's webhook accepts tenant versions up to v1.36 at the tag the fixtures come from.
VERSIONS: list[tuple[str, str]] = [
    ("v1.32.9", Status.END_OF_LIFE),
    ("v1.33.4", Status.DEPRECATED),
    ("v1.34.4", Status.SUPPORTED),
    ("v1.35.4", Status.DEFAULT),
    ("v1.36.3", Status.SUPPORTED),
]

INSTANCE_TYPES: list[tuple[str, int, int, str]] = [
    ("m1.small", 1, 2048, "1 vCPU, 2 GiB: tests and tiny services"),
    ("m1.medium", 2, 4096, "2 vCPU, 4 GiB: general purpose"),
    ("m1.large", 4, 8192, "4 vCPU, 8 GiB: general purpose"),
    ("m1.xlarge", 8, 16384, "8 vCPU, 16 GiB: general purpose"),
    ("c1.large", 8, 8192, "8 vCPU, 8 GiB: compute heavy"),
    ("r1.large", 4, 32768, "4 vCPU, 32 GiB: memory heavy"),
]


def access_rules_values() -> str:
    """RBAC for the groups in personal kubeconfigs (``clusters.kubeconfig``), as raw manifests."""

    def binding(name: str, role: str, group: str) -> dict[str, object]:
        return {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": name},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": role,
            },
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": group}],
        }

    return yaml.safe_dump(
        {
            "resources": [
                binding("butler-cluster-admins", "cluster-admin", settings.CLUSTER_ADMIN_GROUP),
                binding("butler-viewers", "view", settings.CLUSTER_VIEWER_GROUP),
            ]
        },
        sort_keys=False,
    )


def addons() -> list[dict[str, object]]:
    return [
        {
            "name": "cilium",
            "description": "Cilium CNI: pod networking (nodes stay NotReady without a CNI).",
            "repository_url": "https://helm.cilium.io/",
            "chart": "cilium",
            "version": "1.17.x",
            # Kamaji runs kube-proxy; pod CIDRs come from the control plane's node IPAM.
            "values": "kubeProxyReplacement: false\nipam:\n  mode: kubernetes\n",
            "target_namespace": "kube-system",
            "required": True,
        },
        {
            "name": "portal-access",
            "description": "Binds the portal's kubeconfig groups to cluster-admin and view.",
            "repository_url": "https://bedag.github.io/helm-charts/",
            "chart": "raw",
            "version": "2.0.x",
            "values": access_rules_values(),
            "target_namespace": "kube-system",
            "required": True,
        },
        {
            "name": "metrics-server",
            "description": "Resource metrics for kubectl top and autoscaling.",
            "repository_url": "https://kubernetes-sigs.github.io/metrics-server/",
            "chart": "metrics-server",
            "version": "3.12.x",
            # Kubelets serve self-signed certificates unless serving-cert approval is set up.
            "values": "args:\n  - --kubelet-insecure-tls\n",
            "target_namespace": "kube-system",
            "required": False,
        },
    ]


@transaction.atomic
def seed_catalog(actor: Actor | None = None) -> None:
    actor = actor or Actor.system()
    for version, status in VERSIONS:
        if KubernetesVersion.objects.filter(version=version).exists():
            continue
        if status == Status.DEFAULT and default_version() is not None:
            status = Status.SUPPORTED  # the operator chose a default already
        kubernetes_version_save(
            actor=actor, version=KubernetesVersion(version=version, status=status)
        )
    for name, vcpu, memory_mib, description in INSTANCE_TYPES:
        if not InstanceType.objects.filter(name=name).exists():
            instance_type_save(
                actor=actor,
                instance_type=InstanceType(
                    name=name, vcpu=vcpu, memory_mib=memory_mib, description=description
                ),
            )
    for fields in addons():
        if not ClusterAddon.objects.filter(name=fields["name"]).exists():
            cluster_addon_save(actor=actor, addon=ClusterAddon(**fields))
