"""The Kubernetes objects of a tenant cluster, as pure functions of a ``ClusterPlan``.

No database and no API calls: ``clusters.provisioning.cluster_plan`` turns a ``Cluster`` row
(and the settings) into a plan, and these functions turn the plan into manifests. API
versions are the storage versions of the CRDs in ``../shared/crds`` (``SOURCES.md`` notes
6–9): ``cluster.x-k8s.io/v1beta2``, ``bootstrap.cluster.x-k8s.io/v1beta2``,
``controlplane.cluster.x-k8s.io/v1alpha2`` and ``infrastructure.cluster.x-k8s.io/v1alpha1``,
so the API server never has to convert them.

Naming: the Cluster, its KamajiControlPlane (hence Kamaji's TenantControlPlane) and its
KubevirtCluster share the cluster's name, so ``<name>-kubeconfig`` and ``<name>-ca`` are
the Secrets of both CAPI's contract and Kamaji (``STATUS.md`` §10.3).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from butler_portal.labels import CLUSTER_KEY, portal_labels

Manifest = dict[str, Any]

CLUSTER_API = "cluster.x-k8s.io/v1beta2"
BOOTSTRAP_API = "bootstrap.cluster.x-k8s.io/v1beta2"
CONTROL_PLANE_API = "controlplane.cluster.x-k8s.io/v1alpha2"
INFRASTRUCTURE_API = "infrastructure.cluster.x-k8s.io/v1alpha1"
HELM_RELEASE_API = "helm.toolkit.fluxcd.io/v2"
HELM_REPOSITORY_API = "source.toolkit.fluxcd.io/v1"
TENANT_CONTROL_PLANE_API = "kamaji.clastix.io/v1alpha1"

CAPI_CLUSTER_NAME_KEY = "cluster.x-k8s.io/cluster-name"
CAPI_DEPLOYMENT_NAME_KEY = "cluster.x-k8s.io/deployment-name"
ADDON_KEY = "butler.io/addon"
METALLB_POOL_ANNOTATION = "metallb.io/address-pool"
# With an external (Kamaji) control plane CAPK must leave the KubevirtCluster alone: no
# load balancer of its own, no SSH keys; the Kamaji provider fills in endpoint and status.
MANAGED_BY_ANNOTATION = "cluster.x-k8s.io/managed-by"
API_SERVER_PORT = 6443
KONNECTIVITY_PORT = 8132
WORKER_POOL = "md-0"
ROOT_DISK = "root"
NETWORK = "default"


def worker_name_prefix(cluster_name: str) -> str:
    """The start of every worker VM's name of a cluster ("<cluster>-md-0-")."""
    return f"{cluster_name}-{WORKER_POOL}-"


def names_collide(cluster_name: str, vm_name: str) -> bool:
    """Whether a portal VM and a cluster of these names would fight over objects.

    A cluster's control plane has a Service named like the cluster and its worker VMs are
    named "<cluster>-md-0-…"; a portal VM brings a VirtualMachine and a Service of its own
    name. Both are applied with force, so one would silently take the other's objects over.
    """
    return vm_name == cluster_name or vm_name.startswith(worker_name_prefix(cluster_name))


@dataclass(frozen=True)
class AddonPlan:
    name: str
    repository_url: str
    chart: str
    version: str
    values: Mapping[str, Any]
    target_namespace: str


@dataclass(frozen=True)
class ClusterPlan:
    """Everything the manifests need to know about one cluster."""

    tenant_slug: str
    namespace: str
    name: str
    version: str  # the control plane's
    worker_version: str
    control_plane_replicas: int
    worker_count: int
    hibernated: bool
    worker_vcpu: int
    worker_memory_mib: int
    worker_disk_gib: int
    node_image: str  # boot image of the workers (for worker_version)
    address_pool: str  # the tenant's MetalLB pool
    pod_cidr: str
    service_cidr: str
    dns_domain: str
    storage_class: str = ""  # empty: the infrastructure's default StorageClass
    datastore: str = ""  # empty: Kamaji's default DataStore
    addons: Sequence[AddonPlan] = field(default_factory=tuple)

    @property
    def worker_pool_name(self) -> str:
        return f"{self.name}-{WORKER_POOL}"

    @property
    def kubeconfig_secret(self) -> str:
        return f"{self.name}-kubeconfig"


def cluster_labels(plan: ClusterPlan, **extra: str) -> dict[str, str]:
    return portal_labels(
        plan.tenant_slug, **{CLUSTER_KEY: plan.name, CAPI_CLUSTER_NAME_KEY: plan.name}, **extra
    )


def _metadata(
    plan: ClusterPlan, name: str, *, labels: Mapping[str, str] | None = None, **extra: Any
) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": plan.namespace,
        "labels": dict(labels or cluster_labels(plan)),
        **extra,
    }


def _ref(api_version: str, kind: str, name: str) -> dict[str, str]:
    """A v1beta2 object reference: group, kind and name, always in the same namespace."""
    return {"apiGroup": api_version.split("/")[0], "kind": kind, "name": name}


# --- Cluster API ----------------------------------------------------------------------------


def cluster_manifest(plan: ClusterPlan) -> Manifest:
    return {
        "apiVersion": CLUSTER_API,
        "kind": "Cluster",
        "metadata": _metadata(plan, plan.name),
        "spec": {
            # The Kamaji provider copies these into the TenantControlPlane's network profile.
            "clusterNetwork": {
                "pods": {"cidrBlocks": [plan.pod_cidr]},
                "services": {"cidrBlocks": [plan.service_cidr]},
                "serviceDomain": plan.dns_domain,
            },
            "controlPlaneRef": _ref(CONTROL_PLANE_API, "KamajiControlPlane", plan.name),
            "infrastructureRef": _ref(INFRASTRUCTURE_API, "KubevirtCluster", plan.name),
        },
    }


def control_plane_manifest(plan: ClusterPlan) -> Manifest:
    """The hosted control plane; 0 replicas hibernates it (the TCP goes Sleeping)."""
    spec: dict[str, Any] = {
        "version": plan.version,
        "replicas": 0 if plan.hibernated else plan.control_plane_replicas,
        "addons": {
            "coreDNS": {},
            "kubeProxy": {},
            # Lets the hosted API server reach kubelets (logs, exec) inside the VM network.
            "konnectivity": {"server": {"port": KONNECTIVITY_PORT}},
        },
        "kubelet": {
            "cgroupfs": "systemd",
            "preferredAddressTypes": ["InternalIP", "ExternalIP", "Hostname"],
        },
        "network": {
            # The API server's Service takes an address from the tenant's own MetalLB share;
            # the pool admits only Services of the tenant's namespace.
            "serviceType": "LoadBalancer",
            "serviceAnnotations": {METALLB_POOL_ANNOTATION: plan.address_pool},
        },
    }
    if plan.datastore:
        spec["dataStoreName"] = plan.datastore
    return {
        "apiVersion": CONTROL_PLANE_API,
        "kind": "KamajiControlPlane",
        "metadata": _metadata(plan, plan.name),
        "spec": spec,
    }


def infrastructure_cluster_manifest(plan: ClusterPlan) -> Manifest:
    # No controlPlaneServiceTemplate: with the managed-by annotation CAPK creates no
    # control-plane Service; Kamaji's LoadBalancer Service is the endpoint.
    return {
        "apiVersion": INFRASTRUCTURE_API,
        "kind": "KubevirtCluster",
        "metadata": _metadata(plan, plan.name, annotations={MANAGED_BY_ANNOTATION: "kamaji"}),
        "spec": {},
    }


def _worker_vm_template_spec(plan: ClusterPlan) -> dict[str, Any]:
    storage: dict[str, Any] = {"resources": {"requests": {"storage": f"{plan.worker_disk_gib}Gi"}}}
    if plan.storage_class:
        storage["storageClassName"] = plan.storage_class
    return {
        "virtualMachineBootstrapCheck": {
            # "ssh" (the default) needs SSH keys CAPK makes only for its own load balancer.
            "checkStrategy": "none"
        },
        "virtualMachineTemplate": {
            "metadata": {"namespace": plan.namespace, "labels": cluster_labels(plan)},
            "spec": {
                "runStrategy": "Always",
                # CAPK renames it "<vm>-root" per machine; the VM owns (and deletes) it.
                "dataVolumeTemplates": [
                    {
                        "metadata": {"name": ROOT_DISK},
                        "spec": {
                            "source": {"registry": {"url": f"docker://{plan.node_image}"}},
                            "storage": storage,
                        },
                    }
                ],
                "template": {
                    "metadata": {"labels": cluster_labels(plan)},
                    "spec": {
                        "domain": {
                            "cpu": {"cores": plan.worker_vcpu},
                            "memory": {"guest": f"{plan.worker_memory_mib}Mi"},
                            "devices": {
                                "networkInterfaceMultiqueue": True,
                                "disks": [{"name": ROOT_DISK, "disk": {"bus": "virtio"}}],
                                "interfaces": [{"name": NETWORK, "bridge": {}}],
                            },
                        },
                        # The pod network is the tenant's Kube-OVN subnet: the namespace is
                        # bound to it, so every VM of the tenant lands there.
                        "networks": [{"name": NETWORK, "pod": {}}],
                        # CAPK drains the tenant node before the VM is evicted.
                        "evictionStrategy": "External",
                        "volumes": [{"name": ROOT_DISK, "dataVolume": {"name": ROOT_DISK}}],
                    },
                },
            },
        },
    }


def machine_template_name(plan: ClusterPlan) -> str:
    """The worker template's name, unique to its content.

    CAPK rejects changes to a KubevirtMachineTemplate and a MachineDeployment rolls its
    machines only when its template *reference* changes, so a new boot image (an upgrade)
    needs a template of its own; hashing the spec gives exactly that.
    """
    canonical = json.dumps(_worker_vm_template_spec(plan), sort_keys=True, separators=(",", ":"))
    digest = hashlib.sha256(canonical.encode()).hexdigest()[:10]
    return f"{plan.worker_pool_name}-{digest}"


def machine_template_manifest(plan: ClusterPlan) -> Manifest:
    return {
        "apiVersion": INFRASTRUCTURE_API,
        "kind": "KubevirtMachineTemplate",
        "metadata": _metadata(plan, machine_template_name(plan)),
        "spec": {"template": {"spec": _worker_vm_template_spec(plan)}},
    }


def bootstrap_template_manifest(plan: ClusterPlan) -> Manifest:
    # Discovery (bootstrap token, CA hash) is filled in by the kubeadm bootstrap controller.
    return {
        "apiVersion": BOOTSTRAP_API,
        "kind": "KubeadmConfigTemplate",
        "metadata": _metadata(plan, plan.worker_pool_name),
        "spec": {
            "template": {
                "spec": {
                    "joinConfiguration": {
                        "nodeRegistration": {
                            "criSocket": "unix:///var/run/containerd/containerd.sock"
                        }
                    }
                }
            }
        },
    }


def machine_deployment_manifest(plan: ClusterPlan) -> Manifest:
    """The worker pool. Fields CAPI's webhooks would default are written out (no webhooks
    on a bare API server, and explicit is what we mean anyway)."""
    selector = {
        CAPI_CLUSTER_NAME_KEY: plan.name,
        CAPI_DEPLOYMENT_NAME_KEY: plan.worker_pool_name,
    }
    return {
        "apiVersion": CLUSTER_API,
        "kind": "MachineDeployment",
        "metadata": _metadata(plan, plan.worker_pool_name),
        "spec": {
            "clusterName": plan.name,
            "replicas": 0 if plan.hibernated else plan.worker_count,
            "selector": {"matchLabels": selector},
            "rollout": {
                "strategy": {
                    "type": "RollingUpdate",
                    "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
                }
            },
            "template": {
                # Machines inherit these labels, so the watcher can map them to the cluster.
                "metadata": {"labels": {**cluster_labels(plan), **selector}},
                "spec": {
                    "clusterName": plan.name,
                    "version": plan.worker_version,
                    "bootstrap": {
                        "configRef": _ref(
                            BOOTSTRAP_API, "KubeadmConfigTemplate", plan.worker_pool_name
                        )
                    },
                    "infrastructureRef": _ref(
                        INFRASTRUCTURE_API, "KubevirtMachineTemplate", machine_template_name(plan)
                    ),
                },
            },
        },
    }


# --- Add-ons (Flux) -------------------------------------------------------------------------


def addon_object_name(plan: ClusterPlan, addon: AddonPlan) -> str:
    return f"{plan.name}-{addon.name}"


def helm_repository_manifest(plan: ClusterPlan, addon: AddonPlan) -> Manifest:
    spec: dict[str, Any] = {"url": addon.repository_url, "interval": "1h"}
    if addon.repository_url.startswith("oci://"):
        spec["type"] = "oci"
    return {
        "apiVersion": HELM_REPOSITORY_API,
        "kind": "HelmRepository",
        "metadata": _metadata(
            plan,
            addon_object_name(plan, addon),
            labels=cluster_labels(plan, **{ADDON_KEY: addon.name}),
        ),
        "spec": spec,
    }


def helm_release_manifest(plan: ClusterPlan, addon: AddonPlan) -> Manifest:
    spec: dict[str, Any] = {
        "interval": "10m",
        "releaseName": addon.name,
        "targetNamespace": addon.target_namespace,
        "storageNamespace": addon.target_namespace,
        # Installs into the tenant cluster through the CAPI kubeconfig Secret (key "value"),
        # which the Kamaji provider keeps current across certificate rotations.
        "kubeConfig": {"secretRef": {"name": plan.kubeconfig_secret, "key": "value"}},
        "chart": {
            "spec": {
                "chart": addon.chart,
                "version": addon.version,
                "sourceRef": {"kind": "HelmRepository", "name": addon_object_name(plan, addon)},
            }
        },
        "install": {"createNamespace": True, "remediation": {"retries": 3}},
        "upgrade": {"remediation": {"retries": 3}},
        # A hibernated cluster has no API server to reconcile against: pause instead of
        # piling up failures.
        "suspend": plan.hibernated,
    }
    if addon.values:
        spec["values"] = dict(addon.values)
    return {
        "apiVersion": HELM_RELEASE_API,
        "kind": "HelmRelease",
        "metadata": _metadata(
            plan,
            addon_object_name(plan, addon),
            labels=cluster_labels(plan, **{ADDON_KEY: addon.name}),
        ),
        "spec": spec,
    }


def addon_manifests(plan: ClusterPlan) -> list[Manifest]:
    manifests: list[Manifest] = []
    for addon in plan.addons:
        manifests += [helm_repository_manifest(plan, addon), helm_release_manifest(plan, addon)]
    return manifests


def cluster_manifests(plan: ClusterPlan) -> list[Manifest]:
    """Everything the cluster consists of, in apply order.

    The Cluster comes first so the objects it references get their ownerReference sooner;
    the referenced templates come before the MachineDeployment that points at them.
    """
    return [
        cluster_manifest(plan),
        control_plane_manifest(plan),
        infrastructure_cluster_manifest(plan),
        machine_template_manifest(plan),
        bootstrap_template_manifest(plan),
        machine_deployment_manifest(plan),
        *addon_manifests(plan),
    ]


#: What the portal applies (and a cluster's teardown sweeps), plus the TenantControlPlane
#: that carries the KamajiControlPlane's labels: (apiVersion, kind).
PORTAL_KINDS: tuple[tuple[str, str], ...] = (
    (HELM_RELEASE_API, "HelmRelease"),
    (HELM_REPOSITORY_API, "HelmRepository"),
    (CLUSTER_API, "MachineDeployment"),
    (BOOTSTRAP_API, "KubeadmConfigTemplate"),
    (INFRASTRUCTURE_API, "KubevirtMachineTemplate"),
    (INFRASTRUCTURE_API, "KubevirtCluster"),
    (CONTROL_PLANE_API, "KamajiControlPlane"),
    (TENANT_CONTROL_PLANE_API, "TenantControlPlane"),
    (CLUSTER_API, "Cluster"),
)
