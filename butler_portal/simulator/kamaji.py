"""Kamaji and its Cluster API provider (STATUS.md §1 and §10.3–§10.5).

``TenantControlPlaneController`` plays Kamaji: the ``<tcp>`` Service (a LoadBalancer gets
its address from the MetalLB simulation, and the endpoint waits for it), the CA Secret
``<tcp>-ca`` with a real key, the kubeconfig Secrets, and
``status.kubernetesResources.version.status``: Provisioning → Ready, Upgrading → Ready on
a version change, Sleeping at zero replicas, NotReady with an injected failure.

``KamajiControlPlaneController`` plays CACPPK: it creates the TCP of a KamajiControlPlane,
patches the endpoint into the KCP and the KubevirtCluster, copies the kubeconfig into
``<cluster>-kubeconfig`` and mirrors the TCP into the KCP status and conditions.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping

from butler_portal.simulator.base import Controller
from butler_portal.simulator.capi import (
    CLUSTER_API_VERSION,
    CLUSTER_NAME_LABEL,
    CONTROL_PLANE_API_VERSION,
    is_paused,
    paused_conditions,
    resolve,
)
from butler_portal.simulator.objects import (
    Manifest,
    Ref,
    annotations_of,
    condition,
    dig,
    fingerprint,
    generation_of,
    labels_of,
    merge_conditions,
    name_of,
    namespace_of,
    now,
    owner_named,
    owner_reference,
)
from butler_portal.simulator.pki import TenantCA, kubeconfig

API_VERSION = "kamaji.clastix.io/v1alpha1"
TCP_FINALIZER = "finalizer.kamaji.clastix.io"
PAUSED_ANNOTATION = "kamaji.clastix.io/paused"
KUBECONFIG_KEY_ANNOTATION = "kamaji.clastix.io/kubeconfig-secret-key"
CHECKSUM_ANNOTATION = "kamaji.clastix.io/checksum"
NAME_LABEL = "kamaji.clastix.io/name"
DEFAULT_PORT = 6443
DEFAULT_REPLICAS = 2
# The kubeconfigs Kamaji writes: status key → (Secret suffix, {data key: (user, groups, server)}).
ADMIN = ("kubernetes-admin", ("kubeadm:cluster-admins",))
SUPER_ADMIN = ("kubernetes-super-admin", ("system:masters",))
# A kubeconfig Secret: its name suffix, and per data key (user, groups, server).
KubeconfigSecret = tuple[str, dict[str, tuple[str, tuple[str, ...], str]]]


def tenant_port(tcp: Manifest) -> int:
    return int(dig(tcp, "spec", "networkProfile", "port", default=DEFAULT_PORT))


def tenant_replicas(tcp: Manifest) -> int:
    return int(dig(tcp, "spec", "controlPlane", "deployment", "replicas", default=DEFAULT_REPLICAS))


def secret_data(values: Mapping[str, str | bytes]) -> dict[str, str]:
    return {
        key: base64.b64encode(value if isinstance(value, bytes) else value.encode()).decode()
        for key, value in values.items()
    }


def decoded(secret: Manifest, key: str) -> bytes:
    return base64.b64decode(dig(secret, "data", key, default=""))


def checksum_of(secret: Manifest | None) -> str | None:
    return annotations_of(secret).get(CHECKSUM_ANNOTATION) if secret else None


def join_host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class TenantControlPlaneController(Controller):
    api_version = API_VERSION
    kind = "TenantControlPlane"
    finalizer = TCP_FINALIZER
    owns = (("v1", "Service"), ("v1", "Secret"))

    def reconcile(self, tcp: Manifest) -> float | None:
        if PAUSED_ANNOTATION in annotations_of(tcp):
            return None  # §1: the annotation stops reconciliation
        ca = self.certificate_authority(tcp)
        service = self.service(tcp)
        endpoint = control_plane_endpoint(tcp, service)
        kubeconfigs = self.kubeconfigs(tcp, ca, endpoint) if endpoint else {}
        state, version, wait = self.version_state(tcp, endpoint)
        status = {
            **self.status_of(tcp),
            "kubernetesResources": {
                "version": {"status": state, **({"version": version} if version else {})},
                "deployment": self.deployment_status(tcp, state),
                "service": {
                    "name": name_of(tcp),
                    "namespace": namespace_of(tcp),
                    "port": tenant_port(tcp),
                    "loadBalancer": dig(service, "status", "loadBalancer", default={}),
                },
            },
            "certificates": {
                "ca": self.secret_status(
                    tcp,
                    "certificates",
                    "ca",
                    f"{name_of(tcp)}-ca",
                    fingerprint(ca.certificate_pem.decode()),
                )
            },
            "storage": {
                "dataStoreName": dig(tcp, "spec", "dataStore", default="default"),
                "driver": "etcd",
            },
            "addons": {
                addon: {"enabled": addon in dig(tcp, "spec", "addons", default={})}
                for addon in ("coreDNS", "kubeProxy", "konnectivity")
            },
            "observedGeneration": generation_of(tcp),
        }
        if endpoint:
            status |= {"controlPlaneEndpoint": endpoint, "kubeconfig": kubeconfigs}
        self.api.write_status(tcp, status)
        return wait or None

    # --- §1 version.status -----------------------------------------------------------------

    def version_state(self, tcp: Manifest, endpoint: str | None) -> tuple[str, str, float]:
        """(state, running version, seconds to wait): Kamaji's rules, one step at a time."""
        desired = str(dig(tcp, "spec", "kubernetes", "version", default=""))
        current = dig(tcp, "status", "kubernetesResources", "version", default={})
        state, version = current.get("status", "Provisioning"), current.get("version", "")
        if not endpoint:
            return state, version, 0.0  # no address, no certificates: it waits (§1)
        if tenant_replicas(tcp) == 0:
            if wait := self.wait(tcp, "sleeping", "control_plane_sleep"):
                return state, version, wait
            return "Sleeping", desired, 0.0  # the version is recorded when Sleeping too
        if self.failure(tcp):
            if wait := self.wait(tcp, "failing", "control_plane"):
                return state, version, wait
            return "NotReady", version, 0.0
        if not version:
            if wait := self.wait(tcp, "provisioning", "control_plane"):
                return "Provisioning", "", wait
        elif state in ("Sleeping", "NotReady"):
            # Waking up (or recovering): pods start, none ready yet.
            if wait := self.wait(tcp, "waking", "control_plane"):
                return "NotReady", version, wait
        elif version != desired and (
            wait := self.wait(tcp, f"upgrading {desired}", "control_plane")
        ):
            return "Upgrading", version, wait
        return "Ready", desired, 0.0

    def deployment_status(self, tcp: Manifest, state: str) -> Manifest:
        """The control-plane Deployment's status as Kamaji mirrors it."""
        desired = 0 if state == "Sleeping" else tenant_replicas(tcp)
        ready = desired if state in ("Ready", "Upgrading") else 0
        updated = 1 if state == "Upgrading" and desired else ready
        failure = self.failure(tcp)
        progressing = (
            condition(
                "Progressing",
                False,
                "ProgressDeadlineExceeded",
                f'ReplicaSet "{name_of(tcp)}" has timed out progressing: {failure.text}',
            )
            if failure and state == "NotReady"
            else condition(
                "Progressing",
                True,
                "NewReplicaSetAvailable" if ready == desired else "ReplicaSetUpdated",
            )
        )
        available = (
            condition(
                "Available",
                True,
                "MinimumReplicasAvailable",
                "Deployment has minimum availability.",
            )
            if ready == desired
            else condition(
                "Available",
                False,
                "MinimumReplicasUnavailable",
                "Deployment does not have minimum availability.",
            )
        )
        previous = dig(tcp, "status", "kubernetesResources", "deployment", "conditions")
        return {
            "name": name_of(tcp),
            "namespace": namespace_of(tcp),
            "selector": f"{NAME_LABEL}={name_of(tcp)}",
            "replicas": desired,
            "readyReplicas": ready,
            "availableReplicas": ready,
            "updatedReplicas": updated,
            "unavailableReplicas": desired - ready,
            "conditions": merge_conditions(
                previous,
                [available, progressing],
                stamp_fields=("lastTransitionTime", "lastUpdateTime"),
            ),
        }

    # --- Children: the Service, the CA, the kubeconfigs ------------------------------------

    def service(self, tcp: Manifest) -> Manifest:
        """The ``<tcp>`` Service Kamaji exposes the tenant API server with."""
        spec = dig(tcp, "spec", "controlPlane", "service", default={})
        network = tcp["spec"].get("networkProfile") or {}
        metadata = spec.get("additionalMetadata") or {}
        port = tenant_port(tcp)
        ports = [{"name": "kube-apiserver", "port": port, "targetPort": port, "protocol": "TCP"}]
        if "konnectivity" in dig(tcp, "spec", "addons", default={}):
            konnectivity = int(
                dig(tcp, "spec", "addons", "konnectivity", "server", "port", default=8132)
            )
            ports.append(
                {
                    "name": "konnectivity-server",
                    "port": konnectivity,
                    "targetPort": konnectivity,
                    "protocol": "TCP",
                }
            )
        service_spec: Manifest = {
            "type": spec.get("serviceType", "LoadBalancer"),
            "selector": {NAME_LABEL: name_of(tcp)},
            "ports": ports,
        }
        if service_spec["type"] == "LoadBalancer":
            for source, target in (
                ("loadBalancerClass", "loadBalancerClass"),
                ("loadBalancerSourceRanges", "loadBalancerSourceRanges"),
            ):
                if network.get(source):
                    service_spec[target] = network[source]
            if "allocateLoadBalancerNodePorts" in spec:
                service_spec["allocateLoadBalancerNodePorts"] = spec[
                    "allocateLoadBalancerNodePorts"
                ]
        return self.api.own(
            current=self.cache.find("v1", "Service", name_of(tcp), namespace_of(tcp)),
            manifest={
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {
                    "name": name_of(tcp),
                    "namespace": namespace_of(tcp),
                    "labels": {**(metadata.get("labels") or {}), NAME_LABEL: name_of(tcp)},
                    "annotations": dict(metadata.get("annotations") or {}),
                    "ownerReferences": [owner_reference(tcp)],
                },
                "spec": service_spec,
            },
        )

    def certificate_authority(self, tcp: Manifest) -> TenantCA:
        """``<tcp>-ca``: made once, then read back (rotation is not simulated)."""
        name = f"{name_of(tcp)}-ca"
        if existing := self.secret(tcp, name):
            return TenantCA.from_pem(decoded(existing, "ca.crt"), decoded(existing, "ca.key"))
        ca = TenantCA.create()
        pems = {"crt": ca.certificate_pem, "key": ca.key_pem}
        # §10.3: Kamaji writes tls.crt/tls.key next to ca.crt/ca.key for Cluster API.
        data = {f"ca.{kind}": pem for kind, pem in pems.items()} | {
            f"tls.{kind}": pem for kind, pem in pems.items()
        }
        self.own_secret(tcp, name, data, component="ca")
        return ca

    def kubeconfigs(self, tcp: Manifest, ca: TenantCA, endpoint: str) -> Manifest:
        """The admin, controller-manager and scheduler kubeconfig Secrets (§1); rewritten when
        what they point at changes, which changes their checksum."""
        external = f"https://{endpoint}"
        internal = f"https://{name_of(tcp)}.{namespace_of(tcp)}.svc:{tenant_port(tcp)}"
        local = f"https://localhost:{tenant_port(tcp)}"
        wanted: dict[str, KubeconfigSecret] = {
            "admin": (
                "admin-kubeconfig",
                {
                    "admin.conf": (*ADMIN, external),
                    "super-admin.conf": (*SUPER_ADMIN, external),
                    "admin.svc": (*ADMIN, internal),
                    "super-admin.svc": (*SUPER_ADMIN, internal),
                },
            ),
            "controllerManager": (
                "controller-manager-kubeconfig",
                {
                    "controller-manager.conf": ("system:kube-controller-manager", (), local),
                },
            ),
            "scheduler": (
                "scheduler-kubeconfig",
                {"scheduler.conf": ("system:kube-scheduler", (), local)},
            ),
        }
        ca_checksum = fingerprint(ca.certificate_pem.decode())
        result = {}
        for key, (suffix, entries) in wanted.items():
            name = f"{name_of(tcp)}-{suffix}"
            checksum = fingerprint([ca_checksum, sorted((k, v[2]) for k, v in entries.items())], 32)
            # The cache answers the usual "unchanged"; the API server has the last word.
            if checksum_of(
                self.cache.find("v1", "Secret", name, namespace_of(tcp))
            ) != checksum and (
                checksum_of(self.api.find("v1", "Secret", name, namespace_of(tcp))) != checksum
            ):
                data = {
                    entry: kubeconfig(ca, server, user, groups)
                    for entry, (user, groups, server) in entries.items()
                }
                self.own_secret(tcp, name, data, component=suffix, checksum=checksum)
            result[key] = self.secret_status(tcp, "kubeconfig", key, name, checksum)
        return result

    def secret(self, tcp: Manifest, name: str) -> Manifest | None:
        """A Secret of the TCP: from the cache, else (not seen there yet) from the API."""
        namespace = namespace_of(tcp)
        return self.cache.find("v1", "Secret", name, namespace) or self.api.find(
            "v1", "Secret", name, namespace
        )

    def own_secret(
        self,
        tcp: Manifest,
        name: str,
        data: Mapping[str, str | bytes],
        *,
        component: str,
        checksum: str = "",
    ) -> None:
        self.api.own(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "type": "Opaque",
                "metadata": {
                    "name": name,
                    "namespace": namespace_of(tcp),
                    "labels": {
                        NAME_LABEL: name_of(tcp),
                        "kamaji.clastix.io/component": component,
                        "kamaji.clastix.io/project": "kamaji",
                    },
                    "annotations": {CHECKSUM_ANNOTATION: checksum} if checksum else {},
                    "ownerReferences": [owner_reference(tcp)],
                },
                "data": secret_data(data),
            }
        )

    @staticmethod
    def secret_status(tcp: Manifest, group: str, key: str, name: str, checksum: str) -> Manifest:
        previous = dig(tcp, "status", group, key, default={})
        same = previous.get("checksum") == checksum and previous.get("lastUpdate")
        return {
            "secretName": name,
            "checksum": checksum,
            "lastUpdate": previous["lastUpdate"] if same else now(),
        }


def control_plane_endpoint(tcp: Manifest, service: Manifest) -> str | None:
    """§1: ``spec.networkProfile.address``, else the ClusterIP, else the first LoadBalancer
    ingress IP (none yet: no endpoint)."""
    port = tenant_port(tcp)
    if address := dig(tcp, "spec", "networkProfile", "address"):
        return join_host_port(address, port)
    if dig(service, "spec", "type") == "LoadBalancer":
        ip = dig(service, "status", "loadBalancer", "ingress", 0, "ip")
        return join_host_port(ip, port) if ip else None
    cluster_ip = dig(service, "spec", "clusterIP")
    return join_host_port(cluster_ip, port) if cluster_ip else None


# --- CACPPK: the KamajiControlPlane (§10.4) --------------------------------------------------


class KamajiControlPlaneController(Controller):
    api_version = CONTROL_PLANE_API_VERSION
    kind = "KamajiControlPlane"
    owns = ((API_VERSION, "TenantControlPlane"), ("v1", "Secret"))
    wakes_on = ((CLUSTER_API_VERSION, "Cluster"),)

    def reconcile(self, kcp: Manifest) -> float | None:
        cluster_name = owner_named(kcp, "Cluster")
        cluster = cluster_name and self.cache.find(
            CLUSTER_API_VERSION, "Cluster", cluster_name, namespace_of(kcp)
        )
        if not cluster:
            return None  # step 1: nothing happens before the Cluster owns the KCP
        status = {
            "ready": False,
            "version": "",
            "externalManagedControlPlane": True,
            **self.status_of(kcp),
        }
        if is_paused(cluster, kcp):
            self.write(kcp, status, paused_conditions(kcp))
            return None
        desired = [condition("Paused", False, "NotPaused")]
        tcp = self.api.own(
            tenant_control_plane_manifest(kcp, cluster),
            self.cache.find(API_VERSION, "TenantControlPlane", name_of(kcp), namespace_of(kcp)),
        )
        desired.append(condition("TenantControlPlaneCreated", True, "Succeeded"))
        endpoint = dig(tcp, "status", "controlPlaneEndpoint")
        if not endpoint:
            desired.append(
                condition(
                    "TenantControlPlaneAddressReady",
                    False,
                    "Failed",
                    "the TenantControlPlane has not yet an address",
                )
            )
            self.write(kcp, status, desired)
            return None
        desired.append(condition("TenantControlPlaneAddressReady", True, "Succeeded"))
        host, _, port = endpoint.rpartition(":")
        api_endpoint = {"host": host.strip("[]"), "port": int(port)}
        if dig(kcp, "spec", "controlPlaneEndpoint") != api_endpoint:
            self.api.patch(kcp, "endpoint", {"spec": {"controlPlaneEndpoint": api_endpoint}})
        desired.append(condition("ControlPlaneEndpointPatched", True, "Succeeded"))
        self.patch_infrastructure(cluster, api_endpoint)
        desired.append(condition("InfrastructureClusterPatched", True, "Succeeded"))
        if not (
            dig(cluster, "spec", "controlPlaneEndpoint", "host")
            and dig(cluster, "status", "initialization", "infrastructureProvisioned")
        ):
            self.write(kcp, status, desired)
            return None  # step 6: CAPI copies the endpoint first
        state = dig(tcp, "status", "kubernetesResources", "version", "status")
        initialized = (
            bool(dig(kcp, "status", "initialization", "controlPlaneInitialized"))
            or state == "Ready"
        )
        if not initialized:
            desired.append(
                condition(
                    "KamajiControlPlaneIsInitialized",
                    False,
                    "Failed",
                    "the TenantControlPlane is not yet Ready",
                )
            )
            self.write(kcp, status, desired)
            return None
        deployment = dig(tcp, "status", "kubernetesResources", "deployment", default={})
        status |= {
            "initialization": {"controlPlaneInitialized": True},
            "replicas": deployment.get("replicas", 0),
            "readyReplicas": deployment.get("readyReplicas", 0),
            "availableReplicas": deployment.get("availableReplicas", 0),
            "upToDateReplicas": deployment.get("updatedReplicas", 0),
            "selector": deployment.get("selector", f"{NAME_LABEL}={name_of(tcp)}"),
            "version": dig(tcp, "status", "kubernetesResources", "version", "version", default=""),
        }
        desired.append(condition("KamajiControlPlaneIsInitialized", True, "Succeeded"))
        self.write_cluster_secrets(kcp, cluster, tcp)
        desired.append(condition("KubeadmResourcesCreated", True, "Succeeded"))
        ready = state in ("Ready", "Upgrading")  # step 9: ready stays true while upgrading
        status["ready"] = ready
        message = "" if ready else f"the TenantControlPlane is {state}"
        desired += [
            condition(
                "KamajiControlPlaneIsReady", ready, "Succeeded" if ready else "Failed", message
            ),
            condition("Available", ready, "Available" if ready else "NotAvailable", message),
        ]
        self.write(kcp, status, desired)
        return None

    def write(self, kcp: Manifest, status: Manifest, desired: list[Manifest]) -> None:
        generation = generation_of(kcp)
        stamped = [{**entry, "observedGeneration": generation} for entry in desired]
        status["conditions"] = merge_conditions(dig(kcp, "status", "conditions"), stamped)
        self.api.write_status(kcp, status)

    def wake(self, cluster: Manifest) -> Iterable[Ref]:
        reference = dig(cluster, "spec", "controlPlaneRef", default={})
        if reference.get("kind") == self.kind:
            yield self.ref(reference["name"], namespace_of(cluster))

    def patch_infrastructure(self, cluster: Manifest, api_endpoint: Manifest) -> None:
        """§10.5: CACPPK fills in the KubevirtCluster: endpoint and ``status.ready``."""
        reference = resolve(cluster, dig(cluster, "spec", "infrastructureRef"))
        infra = reference and self.cache.get(reference)
        if not infra:
            return
        if dig(infra, "spec", "controlPlaneEndpoint") != api_endpoint:
            infra = self.api.patch(
                infra, "kamaji-endpoint", {"spec": {"controlPlaneEndpoint": api_endpoint}}
            )
        self.api.write_status(infra, {**self.status_of(infra), "ready": True})

    def write_cluster_secrets(self, kcp: Manifest, cluster: Manifest, tcp: Manifest) -> None:
        """§10.3: ``<cluster>-kubeconfig`` (one key of Kamaji's admin Secret, as ``value``)
        and ``<cluster>-ca``, controller-owned by the KCP."""
        namespace, cluster_name = namespace_of(kcp), name_of(cluster)
        admin = self.api.find("v1", "Secret", f"{name_of(tcp)}-admin-kubeconfig", namespace)
        ca = self.api.find("v1", "Secret", f"{name_of(tcp)}-ca", namespace)
        if admin is None or ca is None:
            return
        default_key = (
            "admin.svc" if dig(kcp, "spec", "network", "advertiseAddress") else "admin.conf"
        )
        key = annotations_of(kcp).get(KUBECONFIG_KEY_ANNOTATION, default_key)
        labels = {
            CLUSTER_NAME_LABEL: cluster_name,
            "kamaji.clastix.io/component": "capi",
            "kamaji.clastix.io/cluster": cluster_name,
            "kamaji.clastix.io/tcp": name_of(tcp),
        }
        secrets = [
            (
                f"{cluster_name}-kubeconfig",
                "kubeconfig",
                {"value": dig(admin, "data", key, default="")},
            )
        ]
        if f"{cluster_name}-ca" != name_of(ca):  # same name: Kamaji's own Secret already serves
            tls = {field: dig(ca, "data", field, default="") for field in ("tls.crt", "tls.key")}
            secrets.append((f"{cluster_name}-ca", "ca", tls))
        for name, kind, data in secrets:
            self.api.own(
                {
                    "apiVersion": "v1",
                    "kind": "Secret",
                    "type": "cluster.x-k8s.io/secret",
                    "metadata": {
                        "name": name,
                        "namespace": namespace,
                        "labels": {**labels, "kamaji.clastix.io/secret": kind},
                        "ownerReferences": [owner_reference(kcp)],
                    },
                    "data": data,
                },
                self.cache.find("v1", "Secret", name, namespace),
            )


def tenant_control_plane_manifest(kcp: Manifest, cluster: Manifest) -> Manifest:
    """§10.4: what CACPPK copies from the KCP (and the Cluster's network) into the TCP."""
    spec = kcp.get("spec") or {}
    network = spec.get("network") or {}
    cluster_network = dig(cluster, "spec", "clusterNetwork", default={})
    addons = dict(spec.get("addons") or {})
    dns_ips = dig(addons, "coreDNS", "dnsServiceIPs") or network.get("dnsServiceIPs")
    if "coreDNS" in addons:
        addons["coreDNS"] = {k: v for k, v in addons["coreDNS"].items() if k != "dnsServiceIPs"}
    version = str(spec.get("version", ""))
    profile = {
        "port": cluster_network.get("apiServerPort", DEFAULT_PORT),
        "serviceCidr": dig(cluster_network, "services", "cidrBlocks", 0),
        "podCidr": dig(cluster_network, "pods", "cidrBlocks", 0),
        "clusterDomain": cluster_network.get("serviceDomain"),
        "address": network.get("serviceAddress"),
        "advertiseAddress": network.get("advertiseAddress"),
        "certSANs": network.get("certSANs"),
        "dnsServiceIPs": dns_ips,
        "loadBalancerClass": dig(network, "loadBalancerConfig", "loadBalancerClass"),
        "loadBalancerSourceRanges": dig(network, "loadBalancerConfig", "loadBalancerSourceRanges"),
    }
    service: Manifest = {"serviceType": network.get("serviceType", "LoadBalancer")}
    if network.get("serviceLabels") or network.get("serviceAnnotations"):
        service["additionalMetadata"] = {
            "labels": network.get("serviceLabels") or {},
            "annotations": network.get("serviceAnnotations") or {},
        }
    tcp_spec: Manifest = {
        "controlPlane": {
            "deployment": {"replicas": spec.get("replicas", DEFAULT_REPLICAS)},
            "service": service,
        },
        "kubernetes": {
            "version": version if version.startswith("v") else f"v{version}",
            "kubelet": spec.get("kubelet") or {"cgroupfs": "systemd"},
        },
        "networkProfile": {key: value for key, value in profile.items() if value},
        "addons": addons,
    }
    if spec.get("admissionControllers"):
        tcp_spec["kubernetes"]["admissionControllers"] = spec["admissionControllers"]
    for source, target in (
        ("dataStoreName", "dataStore"),
        ("dataStoreSchema", "dataStoreSchema"),
        ("dataStoreUsername", "dataStoreUsername"),
    ):
        if spec.get(source):  # only when set: leaving one out keeps Kamaji's default
            tcp_spec[target] = spec[source]
    return {
        "apiVersion": API_VERSION,
        "kind": "TenantControlPlane",
        "metadata": {
            "name": name_of(kcp),
            "namespace": namespace_of(kcp),
            "labels": labels_of(kcp),
            "annotations": annotations_of(kcp),
            "ownerReferences": [owner_reference(kcp)],
        },
        "spec": tcp_spec,
    }
