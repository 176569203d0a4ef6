"""Controller messages become plain sentences, with the raw text kept beside them.

The messages are those the portal's controllers write, as ``../shared/crds/STATUS.md`` and
the simulator (``butler_portal.simulator``) shape them.
"""

from __future__ import annotations

import re

import pytest

from butler_portal.explain import KNOWN, Said, explain

FALLBACK = "Working on it."
#: What a person must never read: a field path ("status.initialization.dataSecretCreated"),
#: or a bare reference into an object. Versions ("v1.35.4") and addresses are fine.
FIELD_PATH = re.compile(r"\b[a-z]\w*\.[a-z]\w*\.[a-z]\w*|\bstatus\.|\bspec\.", re.IGNORECASE)

CASES: list[tuple[str, str, str]] = [
    # --- Cluster API: the Cluster's Available summary and its parts
    (
        "cluster waits for its API",
        "* RemoteConnectionProbe: Remote connection not established yet",
        "Waiting for the cluster's API to answer.",
    ),
    (
        "cluster infrastructure not ready",
        "* InfrastructureReady: KubevirtCluster status.ready is false",
        "Preparing the cluster's network and infrastructure.",
    ),
    (
        "cluster infrastructure missing",
        "KubevirtCluster does not exist",
        "Creating the cluster's infrastructure.",
    ),
    ("control plane missing", "KamajiControlPlane does not exist", "Creating the control plane."),
    (
        "control plane not initialized",
        "KamajiControlPlane is not initialized",
        "Starting the control plane.",
    ),
    ("control plane not yet", "Control plane not yet initialized", "Starting the control plane."),
    (
        "workers not available (as seen by a tenant)",
        "WorkersAvailable: * MachineDeployment fleet-demo-md-0: Available is not True",
        "Waiting for the workers to become available.",
    ),
    (
        "the most serious line wins",
        "* RemoteConnectionProbe: Remote connection not established yet\n"
        "* WorkersAvailable: * MachineDeployment web-md-0: Available is not True",
        "Waiting for the workers to become available.",
    ),
    (
        "worker machines not ready",
        "* Machine web-md-0-x2b4k-9gq7d: Ready is not True",
        "Waiting for the workers to become ready.",
    ),
    (
        "worker machines outdated",
        "* Machine web-md-0-x2b4k-9gq7d: UpToDate is not True",
        "Some workers still run the previous version; they are being replaced.",
    ),
    ("cluster deleting", "* Deleting: Cluster is deleting", "Deleting the cluster."),
    # --- Cluster API: deletion steps
    ("deleting workers", "* MachineDeployment: fleet-demo-md-0", "Removing the workers."),
    ("deleting control plane", "* KamajiControlPlane: fleet-demo", "Removing the control plane."),
    (
        "deleting infrastructure",
        "* KubevirtCluster: fleet-demo",
        "Removing the cluster's infrastructure.",
    ),
    # --- Cluster API: MachineDeployment and MachineSet
    (
        "deployment not available",
        "1 available replicas, at least 2 required (spec.strategy.rollout.maxUnavailable is 0, "
        "spec.replicas is 2)",
        "1 of the 2 workers needed are available.",
    ),
    ("machines not ready", "2 of 3 Machines are not Ready", "2 of 3 workers are not ready yet."),
    (
        "machines outdated",
        "1 of 3 Machines are not UpToDate",
        "1 of 3 workers still run the previous version.",
    ),
    (
        "rolling out",
        "Rolling out 2 not up-to-date replicas\n* Version: v1.34.2, v1.35.4 required",
        "Replacing 2 workers with the new version.",
    ),
    (
        "rolling out one",
        "Rolling out 1 not up-to-date replicas",
        "Replacing 1 worker with the new version.",
    ),
    (
        "machine outdated version",
        "* Version: v1.34.2, v1.35.4 required",
        "Replacing workers running v1.34.2 with v1.35.4.",
    ),
    (
        "machine outdated template",
        "* Template: spec.template changed",
        "Replacing the workers with their new settings.",
    ),
    ("scaling up", "Scaling up from 2 to 3 replicas", "Adding workers: 2 of 3 so far."),
    ("scaling down", "Scaling down from 3 to 2 replicas", "Removing workers: from 3 down to 2."),
    (
        "scaling up held back by a preflight check",
        "Scaling up from 0 to 2 replicas\nScaling up would be blocked because:\n"
        '* KamajiControlPlane tenant-acme/web is provisioning ("ControlPlaneIsStable" preflight '
        "check failed)",
        "New workers wait until the control plane is up.",
    ),
    (
        "preflight: upgrading",
        '* KamajiControlPlane tenant-acme/web is upgrading ("ControlPlaneIsStable" preflight '
        "check failed)",
        "New workers wait until the control plane's upgrade is done.",
    ),
    (
        "preflight: version skew",
        'MachineSet version is higher than the control plane version ("ControlPlaneVersionSkew" '
        "preflight check failed)",
        "New workers wait: their version is newer than the control plane's.",
    ),
    (
        "preflight: minor skew",
        "MachineSet minor version differs from the control plane minor version "
        '("KubeadmVersionSkew" preflight check failed)',
        "New workers wait until the control plane runs their minor version.",
    ),
    # --- Cluster API: Machine (as seen by a tenant)
    (
        "bootstrap data",
        "KubeadmConfig status.initialization.dataSecretCreated is false",
        "Preparing the worker's bootstrap configuration.",
    ),
    (
        "machine summary",
        "* BootstrapConfigReady: KubeadmConfig status.initialization.dataSecretCreated is false\n"
        "* InfrastructureReady: KubevirtMachine status.ready is false\n"
        "* NodeHealthy: Waiting for a Node with spec.providerID kubevirt://web-md-0-abc to exist",
        "Preparing the worker's bootstrap configuration.",
    ),
    (
        "worker VM",
        "KubevirtMachine status.ready is false",
        "Creating the worker's virtual machine.",
    ),
    (
        "node missing",
        "Waiting for a Node with spec.providerID kubevirt://web-md-0-abc to exist",
        "Waiting for the worker to join the cluster.",
    ),
    (
        "machine not ready",
        "* Ready: Machine is not Ready",
        "Waiting for the worker to become ready.",
    ),
    ("kubelet ready", "kubelet is posting ready status", "The worker is ready."),
    (
        "draining",
        "Drain not completed yet (started at 2026-11-26T10:00:00Z)",
        "Moving the workloads off the worker before it is removed.",
    ),
    # --- Kamaji
    (
        "no address yet",
        "the TenantControlPlane has not yet an address",
        "Waiting for the control plane's address.",
    ),
    ("tcp not ready yet", "the TenantControlPlane is not yet Ready", "Starting the control plane."),
    (
        "tcp sleeping",
        "the TenantControlPlane is Sleeping",
        "The control plane is asleep (hibernated).",
    ),
    ("tcp upgrading", "the TenantControlPlane is Upgrading", "Upgrading the control plane."),
    (
        "tcp not ready",
        "the TenantControlPlane is NotReady",
        "Waiting for the control plane to become ready.",
    ),
    (
        "tcp in an unheard-of state",
        "the TenantControlPlane is Dreaming",
        "Waiting for the control plane to report its state.",
    ),
    (
        "control plane timed out",
        'ReplicaSet "web" has timed out progressing: etcd unreachable',
        "The control plane did not start in time. The platform operators need to look at it.",
    ),
    (
        "deployment unavailable",
        "Deployment does not have minimum availability.",
        "Waiting for the control plane to start.",
    ),
    (
        "deployment available",
        "Deployment has minimum availability.",
        "The control plane is running.",
    ),
    # --- Flux
    ("helm install running", "Running 'install' action with timeout of 5m0s", "Installing it."),
    ("helm upgrade running", "Running 'upgrade' action with timeout of 5m0s", "Upgrading it."),
    (
        "prerequisites",
        "Fulfilling prerequisites",
        "Waiting for what it needs before it is installed.",
    ),
    (
        "dependency",
        "dependency 'tenant-acme/web-cilium' is not ready",
        "Waiting for web-cilium, which it needs, to be installed.",
    ),
    (
        "repository missing",
        "could not get Source object: HelmRepository 'flux-system/cilium' not found",
        "Its chart repository is missing. The platform operators need to look at it.",
    ),
    (
        "chart not ready",
        "HelmChart 'flux-system/tenant-acme-web-cilium' is not ready",
        "Waiting for its chart to be downloaded.",
    ),
    (
        "kubeconfig missing",
        "could not get KubeConfig secret 'tenant-acme/web-admin-kubeconfig': secrets "
        '"web-admin-kubeconfig" not found',
        "Waiting for the cluster's access credentials.",
    ),
    (
        "kubeconfig key missing",
        "KubeConfig secret 'tenant-acme/web-admin-kubeconfig' does not contain a 'admin.svc' key "
        "with a kubeconfig",
        "The cluster's access credentials are incomplete. The platform operators need to look "
        "at it.",
    ),
    (
        "helm install failed",
        "Helm install failed for release kube-system/cilium with chart cilium@1.17.0: "
        "context deadline exceeded",
        "Installing it failed. It is tried again; if it keeps failing, remove it or ask the "
        "platform operators.",
    ),
    (
        "helm gave up",
        "Failed to install after 3 attempt(s)",
        "Installing it failed too often and is not tried again. Remove it and add it again, or "
        "ask the platform operators.",
    ),
    (
        "helm retries exhausted",
        "upgrade retries exhausted",
        "Upgrading it failed too often and is not tried again. Remove it and add it again, or "
        "ask the platform operators.",
    ),
    (
        "helm installed",
        "Helm install succeeded for release kube-system/cilium.v1 with chart cilium@1.17.0",
        "Installed.",
    ),
    (
        "helm upgraded",
        "Helm upgrade succeeded for release kube-system/cilium.v2 with chart cilium@1.17.1",
        "Upgraded.",
    ),
    (
        "repository index",
        "failed to fetch Helm repository index: 404 Not Found",
        "The chart repository could not be read. The platform operators need to look at it.",
    ),
    (
        "repository stored",
        "stored artifact: revision 'sha256:0123abcd'",
        "The chart repository is up to date.",
    ),
    # --- KubeVirt
    ("no instance", "VMI does not exist", "The virtual machine is not running."),
    ("guest not running", "Guest VM is not reported as running", "Waiting for the guest to start."),
    (
        "restart required",
        "a non-live-updatable field was changed in the template spec",
        "A change takes effect at the next restart.",
    ),
    (
        "not migratable",
        "cannot migrate VMI: PVC is not shared, live migration requires that all PVCs must be "
        "shared (using ReadWriteMany access mode)",
        "It cannot move to another node while it runs.",
    ),
    (
        "no memory",
        "0/3 nodes are available: 3 Insufficient memory. preemption: 0/3 nodes are available: "
        "3 No preemption victims found for incoming pod.",
        "No node has enough free memory for it. Choose a smaller size, or ask the platform "
        "operators for room.",
    ),
    (
        "no cpu",
        "0/3 nodes are available: 3 Insufficient cpu.",
        "No node has enough free CPU for it. Choose a smaller size, or ask the platform "
        "operators for room.",
    ),
    (
        "unschedulable",
        "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector.",
        "No node can run it right now. Ask the platform operators if it stays so.",
    ),
    (
        "image pull",
        'Back-off pulling image "quay.io/containerdisks/ubuntu:24.04"',
        "Its image could not be downloaded. The platform operators need to look at it.",
    ),
    (
        "claim missing",
        'persistentvolumeclaim "web-rootdisk" not found',
        "Its disk's volume is missing. Delete the virtual machine and create it again.",
    ),
    # --- CDI
    ("volume bound", "PVC web-rootdisk Bound", "Its disk's volume is ready."),
    ("volume pending", "PVC web-rootdisk Pending", "Waiting for storage for its disk."),
    ("importer running", "Pod is running", "Importing the disk image."),
    ("import complete", "Import Complete", "Disk image imported."),
    (
        "image not found",
        "Unable to connect to http data source: expected status code 200, got 404. Status: 404 "
        "Not Found",
        "The disk image's download address answered with error 404. The platform operators need "
        "to fix the image in the catalog.",
    ),
    (
        "source unreachable",
        "Unable to connect to registry data source: dial tcp: i/o timeout",
        "The disk image's source could not be reached. It is tried again; ask the platform "
        "operators if it keeps failing.",
    ),
    (
        "disk too small",
        "Unable to process data: Virtual image size 21474836480 is larger than the reported "
        "available storage 10737418240",
        "The disk is too small for the image. Create the virtual machine with a larger disk.",
    ),
    (
        "unreadable image",
        "Unable to process data: qemu-img: Could not open '/data/disk.img': Image is corrupt",
        "The disk image could not be read. Delete the virtual machine and try another image, or "
        "ask the platform operators if it keeps failing.",
    ),
    # --- Kube-OVN
    (
        "subnet conflict",
        "cidr 10.100.0.0/24 conflicts with subnet ovn-default",
        "The subnet's address range overlaps another network. The platform operators need to "
        "look at it.",
    ),
    (
        "subnet invalid",
        "ValidateLogicalSwitchFailed",
        "The subnet could not be set up. The platform operators need to look at it.",
    ),
    ("no gateway", "NoReadyGateway", "Waiting for the subnet's gateway."),
    # --- MetalLB
    (
        "no address free",
        'Failed to allocate IP for "tenant-acme/web": no available IPs',
        "No public address is free in the tenant's share. Withdraw the ports of another virtual "
        "machine, or ask for a larger quota.",
    ),
    (
        "address refused",
        'Failed to allocate IP for "tenant-acme/web": ["10.0.0.1"] is not allowed in config',
        "No public address could be given. The platform operators need to look at it.",
    ),
    ("address assigned", 'Assigned IP ["192.0.2.10"]', "Public address assigned."),
    # --- The API server
    (
        "resource quota",
        'Subnet.kubeovn.io "tenant-acme" is forbidden: exceeded quota: tenant, requested: '
        "pods=1, used: pods=10, limited: pods=10",
        "The tenant's quota on the platform does not allow it. Ask for a larger quota.",
    ),
    (
        "rbac",
        'namespaces is forbidden: User "system:serviceaccount:butler:portal" cannot create '
        'resource "namespaces"',
        "The portal may not do this on the platform. The platform operators need to look at it.",
    ),
    (
        "namespace missing",
        'namespaces "tenant-acme" not found',
        "The tenant's namespace is missing. The platform operators need to look at it.",
    ),
    (
        "webhook",
        'admission webhook "subnet-validate.kube-ovn.io" denied the request: gateway 10.0.0.1 '
        "not in cidr",
        "A rule of the platform refused it. The platform operators need to look at it.",
    ),
    (
        "admission policy with the operators' message",
        "Kubernetes rejected Service web: ValidatingAdmissionPolicy 'no-telnet' with binding "
        "'no-telnet' denied request: telnet is not allowed here",
        "A rule of the platform refused it: telnet is not allowed here.",
    ),
    (
        "admission policy without a message",
        "ValidatingAdmissionPolicy 'no-telnet' with binding 'no-telnet' denied request: failed "
        "expression: object.spec.ports.all(p, p.port != 23)",
        "A rule of the platform refused it. The platform operators need to look at it.",
    ),
    (
        "schema",
        "Vpc.kubeovn.io tenant-acme: spec.namespaces: Invalid value: 5: must be a list",
        "Kubernetes did not accept its settings. The platform operators need to look at it.",
    ),
]


@pytest.mark.parametrize(
    ("message", "sentence"), [case[1:] for case in CASES], ids=[case[0] for case in CASES]
)
def test_each_known_message_has_its_sentence(message: str, sentence: str) -> None:
    said = explain(message, fallback=FALLBACK)

    assert said.text == sentence
    assert not FIELD_PATH.search(said.text), said.text
    # The controller's own words stay, without CAPI's bullets.
    assert said.raw == "\n".join(line.strip().lstrip("*").strip() for line in message.splitlines())


def test_a_known_message_becomes_its_sentence_and_keeps_the_raw_text() -> None:
    said = explain(
        "KubeadmConfig status.initialization.dataSecretCreated is false", fallback="Starting."
    )
    assert said == Said(
        "Preparing the worker's bootstrap configuration.",
        "KubeadmConfig status.initialization.dataSecretCreated is false",
    )


def test_an_unknown_message_falls_back_to_the_callers_sentence() -> None:
    said = explain("spec.foo.bar: something odd", fallback="Installing the add-on.")
    assert said.text == "Installing the add-on."
    assert said.raw == "spec.foo.bar: something odd"


def test_no_message_says_nothing() -> None:
    assert not explain("", fallback="Installing the add-on.")
    assert not explain(None, fallback="Installing the add-on.")
    assert not explain(" \n* \n", fallback="Installing the add-on.")


def test_no_sentence_of_the_catalog_names_a_field() -> None:
    fixed = [known.sentence for known in KNOWN if isinstance(known.sentence, str)]
    assert fixed
    assert [sentence for sentence in fixed if FIELD_PATH.search(sentence)] == []


def test_a_very_long_message_is_kept_cut() -> None:
    said = explain("Unable to process data: " + "x" * 5000, fallback=FALLBACK)
    assert said.raw.endswith("…")
    assert len(said.raw) < 2000
