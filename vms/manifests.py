"""The Kubernetes objects of a virtual machine, as pure functions of a ``VMPlan``.

No database and no API calls: ``vms.provisioning.vm_plan`` turns a ``VirtualMachine`` row
(and the settings) into a plan, and these functions turn the plan into manifests:

- the cloud-init ``Secret`` ``<name>-cloudinit`` (key ``userdata``);
- the KubeVirt ``VirtualMachine`` ``<name>``, whose ``dataVolumeTemplates`` give it a root
  disk ``<name>-rootdisk`` that CDI imports from the image (STATUS.md §3, §6), on the pod
  network of the tenant namespace, which Kube-OVN binds to the tenant's subnet (§7);
- when ports are exposed, the ``LoadBalancer`` ``Service`` ``<name>``, which selects the
  VM's virt-launcher pod by the label the VM template carries and takes its address from
  the tenant's MetalLB pool (§8).
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from butler_portal.labels import VM_KEY, portal_labels

Manifest = dict[str, Any]

VM_API = "kubevirt.io/v1"
VMI_API = VM_API
DATA_VOLUME_API = "cdi.kubevirt.io/v1beta1"
METALLB_POOL_ANNOTATION = "metallb.io/address-pool"
ROOT_DISK = "rootdisk"
CLOUD_INIT_DISK = "cloudinitdisk"
NETWORK = "default"
# KubeVirt's NoCloud source reads the user data from this key of the Secret.
USER_DATA_KEY = "userdata"

#: Source kinds (VMImage.SourceKind values) and how CDI pulls each one.
CONTAINER_DISK, HTTP, REGISTRY = "container-disk", "http", "registry"


@dataclass(frozen=True)
class PortPlan:
    port: int
    target_port: int
    protocol: str  # "TCP" | "UDP"

    @property
    def name(self) -> str:
        # Service port names must be unique DNS labels once there is more than one port.
        return f"{self.protocol.lower()}-{self.port}"


@dataclass(frozen=True)
class VMPlan:
    """Everything the manifests need to know about one virtual machine."""

    tenant_slug: str
    namespace: str
    name: str
    run_strategy: str  # "Always" | "Halted"
    vcpu: int
    memory_mib: int
    disk_gib: int
    storage_class: str  # the Kubernetes StorageClass name; "" for the cluster's default
    image_source_kind: str
    image_source: str
    user_data: str  # the whole #cloud-config document
    address_pool: str  # the tenant's MetalLB IPAddressPool
    ports: Sequence[PortPlan] = field(default_factory=tuple)

    @property
    def root_disk_name(self) -> str:
        return f"{self.name}-{ROOT_DISK}"

    @property
    def cloud_init_secret_name(self) -> str:
        return f"{self.name}-cloudinit"

    @property
    def service_name(self) -> str:
        return self.name


def vm_labels(plan: VMPlan) -> dict[str, str]:
    return portal_labels(plan.tenant_slug, **{VM_KEY: plan.name})


def _metadata(plan: VMPlan, name: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "namespace": plan.namespace, "labels": vm_labels(plan), **extra}


def disk_source(kind: str, source: str) -> dict[str, Any]:
    """CDI's ``spec.source`` for a catalog image (STATUS.md §6)."""
    if kind == HTTP:
        return {"http": {"url": source}}
    url = source if "://" in source else f"docker://{source}"
    # The node pulls container disks (and caches them for the next VM); the importer pod
    # pulls other registry images itself.
    pull_method = "node" if kind == CONTAINER_DISK else "pod"
    return {"registry": {"url": url, "pullMethod": pull_method}}


def cloud_init_secret_manifest(plan: VMPlan) -> Manifest:
    # ``data`` (base64) rather than ``stringData``: server-side apply tracks what it owns
    # field by field, and stringData is never stored, so it would be re-applied forever.
    encoded = base64.b64encode(plan.user_data.encode()).decode()
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": _metadata(plan, plan.cloud_init_secret_name),
        "type": "Opaque",
        "data": {USER_DATA_KEY: encoded},
    }


def virtual_machine_manifest(plan: VMPlan) -> Manifest:
    storage: dict[str, Any] = {"resources": {"requests": {"storage": f"{plan.disk_gib}Gi"}}}
    if plan.storage_class:
        storage["storageClassName"] = plan.storage_class
    return {
        "apiVersion": VM_API,
        "kind": "VirtualMachine",
        "metadata": _metadata(plan, plan.name),
        "spec": {
            "runStrategy": plan.run_strategy,
            # The VM owns its root disk: deleting the VM deletes the DataVolume and its PVC.
            "dataVolumeTemplates": [
                {
                    "metadata": {"name": plan.root_disk_name, "labels": vm_labels(plan)},
                    "spec": {
                        "source": disk_source(plan.image_source_kind, plan.image_source),
                        "storage": storage,
                    },
                }
            ],
            "template": {
                # The virt-launcher pod carries these labels: the Service selects it by them.
                "metadata": {"labels": vm_labels(plan)},
                "spec": {
                    "domain": {
                        "cpu": {"cores": plan.vcpu, "sockets": 1, "threads": 1},
                        "memory": {"guest": f"{plan.memory_mib}Mi"},
                        "devices": {
                            "disks": [
                                {"name": ROOT_DISK, "disk": {"bus": "virtio"}},
                                {"name": CLOUD_INIT_DISK, "disk": {"bus": "virtio"}},
                            ],
                            # Masquerade: the guest sits behind the launcher pod's address,
                            # which comes from the tenant's Kube-OVN subnet (the namespace is
                            # bound to it) and which a Service can reach.
                            "interfaces": [{"name": NETWORK, "masquerade": {}}],
                        },
                    },
                    "networks": [{"name": NETWORK, "pod": {}}],
                    "volumes": [
                        {"name": ROOT_DISK, "dataVolume": {"name": plan.root_disk_name}},
                        {
                            "name": CLOUD_INIT_DISK,
                            # "secretRef" is the user data's Secret (UserDataSecretRef in Go).
                            "cloudInitNoCloud": {
                                "secretRef": {"name": plan.cloud_init_secret_name}
                            },
                        },
                    ],
                },
            },
        },
    }


def service_manifest(plan: VMPlan) -> Manifest:
    """The LoadBalancer Service of the exposed ports (the plan must have some)."""
    if not plan.ports:
        raise ValueError(f"VM {plan.name} exposes no ports")
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(
            plan,
            plan.service_name,
            # Only the tenant's own share: its pool admits only this namespace's Services.
            annotations={METALLB_POOL_ANNOTATION: plan.address_pool},
        ),
        "spec": {
            "type": "LoadBalancer",
            "selector": {VM_KEY: plan.name},
            "ports": [
                {
                    "name": port.name,
                    "port": port.port,
                    "targetPort": port.target_port,
                    "protocol": port.protocol,
                }
                for port in plan.ports
            ],
        },
    }


def service_ref(plan: VMPlan) -> Manifest:
    """Enough of the Service to find or delete it, whatever ports it has."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": plan.service_name, "namespace": plan.namespace},
    }


def vm_manifests(plan: VMPlan) -> list[Manifest]:
    """What the VM consists of, in apply order: the Secret its VM names comes first."""
    manifests = [cloud_init_secret_manifest(plan), virtual_machine_manifest(plan)]
    if plan.ports:
        manifests.append(service_manifest(plan))
    return manifests


def root_disk_manifests(plan: VMPlan) -> list[Manifest]:
    """The root disk's DataVolume and PVC (KubeVirt and CDI create them, named alike): for
    checking they are gone, and deleting them where no garbage collector does."""
    return [
        {
            "apiVersion": DATA_VOLUME_API,
            "kind": "DataVolume",
            "metadata": {"name": plan.root_disk_name, "namespace": plan.namespace},
        },
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": plan.root_disk_name, "namespace": plan.namespace},
        },
    ]
