"""The clusters' catalogs in the operator console: versions, instance types, add-ons."""

from __future__ import annotations

from clusters.models import ClusterAddon, InstanceType, KubernetesVersion
from clusters.seed import seed_catalog
from clusters.services import (
    CLUSTER_ADDON_FIELDS,
    INSTANCE_TYPE_FIELDS,
    KUBERNETES_VERSION_FIELDS,
    cluster_addon_check,
    cluster_addon_save,
    instance_type_check,
    instance_type_save,
    kubernetes_version_check,
    kubernetes_version_save,
)
from tenants.catalogs import (
    Badge,
    Catalog,
    Column,
    UsedBy,
    register_catalog,
    register_starting_entries,
    retired_badge,
    saved_by,
)

CLUSTERS = UsedBy("clusters", "cluster", "clusters")

VERSION_BADGES = {
    KubernetesVersion.Status.DEFAULT: "blue",
    KubernetesVersion.Status.SUPPORTED: "green",
    KubernetesVersion.Status.DEPRECATED: "amber",
    KubernetesVersion.Status.END_OF_LIFE: "grey",
}


def _version_badge(version: KubernetesVersion) -> Badge:
    return Badge(
        version.get_status_display(), VERSION_BADGES[KubernetesVersion.Status(version.status)]
    )


KUBERNETES_VERSIONS = Catalog(
    key="kubernetes-versions",
    title="Kubernetes versions",
    noun="Kubernetes version",
    description=(
        "What new clusters run and upgrades go to. The default is preselected; deprecated "
        "versions warn; end-of-life ones are offered no more."
    ),
    model=KubernetesVersion,
    fields=KUBERNETES_VERSION_FIELDS,
    labels={"node_image": "Worker image"},
    check=kubernetes_version_check,
    save=saved_by(kubernetes_version_save, "version"),
    name_of=lambda version: version.version,
    columns=(
        Column("Version", lambda version: version.version, mono=True),
        Column(
            "Worker image",
            lambda version: version.node_image or "From the portal's image pattern",
            mono=True,
            long=True,
        ),
    ),
    badge=_version_badge,
    used_by=(CLUSTERS,),
    fixed=("version",),
    order=10,
)

INSTANCE_TYPES = Catalog(
    key="instance-types",
    title="Instance types",
    noun="instance type",
    description="Machine sizes for cluster workers and virtual machines.",
    model=InstanceType,
    fields=INSTANCE_TYPE_FIELDS,
    labels={"vcpu": "vCPU", "memory_mib": "Memory (MiB)", "active": "Offered"},
    check=instance_type_check,
    save=saved_by(instance_type_save, "instance_type"),
    name_of=lambda instance_type: instance_type.name,
    columns=(
        Column("Name", lambda instance_type: instance_type.name, mono=True),
        Column("Size", lambda size: f"{size.vcpu} vCPU · {size.memory_gib:g} GiB"),
        Column("Description", lambda instance_type: instance_type.description),
    ),
    badge=lambda instance_type: retired_badge(not instance_type.active),
    used_by=(CLUSTERS, UsedBy("vms", "VM", "VMs")),
    order=20,
)

CLUSTER_ADDONS = Catalog(
    key="cluster-addons",
    title="Cluster add-ons",
    noun="cluster add-on",
    description=(
        "Helm charts Flux installs into tenant clusters. Required ones go into every new "
        "cluster; clusters pick up a change at their next apply."
    ),
    model=ClusterAddon,
    fields=CLUSTER_ADDON_FIELDS,
    labels={
        "repository_url": "Helm repository",
        "version": "Chart version",
        "values": "Helm values",
        "target_namespace": "Namespace in the cluster",
        "required": "Required",
        "active": "Offered",
    },
    check=cluster_addon_check,
    save=saved_by(cluster_addon_save, "addon"),
    name_of=lambda addon: addon.name,
    columns=(
        Column("Name", lambda addon: addon.name, mono=True),
        Column("Chart", lambda addon: f"{addon.chart} {addon.version}", mono=True, long=True),
        Column("Installed", lambda addon: "Into every cluster" if addon.required else "On request"),
    ),
    badge=lambda addon: retired_badge(not addon.active),
    used_by=(CLUSTERS,),
    order=30,
)


def register_cluster_catalogs() -> None:
    for catalog in (KUBERNETES_VERSIONS, INSTANCE_TYPES, CLUSTER_ADDONS):
        register_catalog(catalog)
    register_starting_entries(seed_catalog)  # manage.py load_catalogs
