"""Controller messages in plain words: what is happening, or what failed and what to do.

Controllers write for their authors ("KubeadmConfig status.initialization.dataSecretCreated
is false", "Running 'install' action with timeout of 5m0s"). A tenant reads the portal's
sentence; the controller's own text stays one click away (``Said.raw``). ``explain`` knows
the messages the portal's controllers are known to write (``KNOWN``: Cluster API, Kamaji,
KubeVirt, CDI, Flux, Kube-OVN, MetalLB, and the API server's refusals, as
``../shared/crds/STATUS.md`` and the simulator describe them); anything else becomes the
caller's ``fallback`` sentence, never a field path.

A message may hold several lines (Cluster API sums up its conditions as ``* what: why``
bullets). Each line is read; the most serious thing said wins (a failure before something
that waits, before mere progress), and among equals the first line.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from butler_portal.lifecycle import MESSAGE_LIMIT

#: How serious a known message is: it reports progress, waits for something, or a failure
#: someone has to act on.
PROGRESS, WAITING, FAILURE = 0, 1, 2

#: How much of a controller's own text is kept (several bullet lines fit).
RAW_LIMIT = 4 * MESSAGE_LIMIT

Sentence = str | Callable[[re.Match[str]], str]


@dataclass(frozen=True)
class Said:
    """A plain sentence for people, and the controller's own words behind it ("" if none)."""

    text: str
    raw: str = ""

    def __bool__(self) -> bool:
        return bool(self.text)


@dataclass(frozen=True)
class Known:
    """A message a controller is known to write: its pattern (matched against one line, case
    insensitive), the sentence (a format string over the pattern's named groups, or a
    function of the match) and how serious it is."""

    pattern: re.Pattern[str]
    sentence: Sentence
    severity: int = PROGRESS

    def say(self, match: re.Match[str]) -> str:
        if callable(self.sentence):
            return self.sentence(match)
        return self.sentence.format(**match.groupdict())


def _known(pattern: str, sentence: Sentence, severity: int = PROGRESS) -> Known:
    return Known(re.compile(pattern, re.IGNORECASE), sentence, severity)


def _count(number: str, one: str, many: str) -> str:
    return f"{number} {one if number == '1' else many}"


def _last_part(reference: str) -> str:
    """``namespace/name`` → ``name``: people know an add-on by its name."""
    return reference.rsplit("/", 1)[-1]


#: What the Kamaji TenantControlPlane's states mean (STATUS.md §1).
CONTROL_PLANE_STATES: dict[str, str] = {
    "provisioning": "Starting the control plane.",
    "notready": "Waiting for the control plane to become ready.",
    "sleeping": "The control plane is asleep (hibernated).",
    "upgrading": "Upgrading the control plane.",
    "migrating": "Moving the control plane's data to another data store.",
    "certificateauthorityrotating": "Renewing the control plane's certificates.",
    "writelimited": "The control plane accepts no changes for now.",
}
HELM_ACTIONS: dict[str, str] = {
    "install": "Installing it.",
    "upgrade": "Upgrading it.",
    "uninstall": "Removing it.",
    "rollback": "Rolling it back to its previous version.",
    "test": "Testing it.",
}
HELM_DONE: dict[str, str] = {
    "install": "Installed.",
    "upgrade": "Upgraded.",
    "uninstall": "Removed.",
    "rollback": "Rolled back to its previous version.",
    "test": "Its tests passed.",
}
HELM_FAILED: dict[str, str] = {
    "install": "installing",
    "upgrade": "upgrading",
    "uninstall": "removing",
    "rollback": "rolling back",
    "test": "testing",
}

ASK_OPERATORS = "The platform operators need to look at it."

KNOWN: Sequence[Known] = (
    # --- Cluster API: the Cluster (STATUS.md §10.2) ------------------------------------------
    _known(r"Remote connection not established yet", "Waiting for the cluster's API to answer."),
    _known(
        r"\b\w*Cluster status\.ready is false",
        "Preparing the cluster's network and infrastructure.",
    ),
    _known(r"\b\w*Cluster does not exist", "Creating the cluster's infrastructure."),
    _known(r"\b\w*ControlPlane does not exist", "Creating the control plane."),
    _known(
        r"\b\w*ControlPlane is not initialized|Control plane not yet initialized",
        "Starting the control plane.",
    ),
    _known(r"Cluster is deleting", "Deleting the cluster."),
    _known(
        r"MachineDeployment \S+: Available is not True",
        "Waiting for the workers to become available.",
        WAITING,
    ),
    _known(r"Machine \S+: Ready is not True", "Waiting for the workers to become ready.", WAITING),
    _known(
        r"Machine \S+: UpToDate is not True",
        "Some workers still run the previous version; they are being replaced.",
    ),
    # --- Cluster API: deletion, whose reason names what is still there (§10.10) --------------
    _known(r"^(?:MachineDeployment|MachineSet|Machine): \S+$", "Removing the workers."),
    _known(r"^\w*ControlPlane: \S+$", "Removing the control plane."),
    _known(r"^\w*Cluster: \S+$", "Removing the cluster's infrastructure."),
    # --- Cluster API: MachineDeployment and MachineSet (§10.6, §10.9) ------------------------
    _known(
        r"(?P<available>\d+) available replicas, at least (?P<needed>\d+) required",
        lambda m: f"{m['available']} of the {m['needed']} workers needed are available.",
        WAITING,
    ),
    _known(
        r"(?P<count>\d+) of (?P<total>\d+) Machines are not Ready",
        lambda m: f"{m['count']} of {m['total']} workers are not ready yet.",
        WAITING,
    ),
    _known(
        r"(?P<count>\d+) of (?P<total>\d+) Machines are not UpToDate",
        lambda m: f"{m['count']} of {m['total']} workers still run the previous version.",
    ),
    _known(
        r"Rolling out (?P<count>\d+) not up-to-date replicas",
        lambda m: f"Replacing {_count(m['count'], 'worker', 'workers')} with the new version.",
    ),
    _known(
        r"Version: (?P<old>[^,\s]+)(?:, [^,\s]+)*, (?P<new>\S+) required",
        "Replacing workers running {old} with {new}.",
    ),
    _known(r"Template: spec\.template changed", "Replacing the workers with their new settings."),
    _known(
        r"Scaling up from (?P<now>\d+) to (?P<wanted>\d+) replicas",
        "Adding workers: {now} of {wanted} so far.",
    ),
    _known(
        r"Scaling down from (?P<now>\d+) to (?P<wanted>\d+) replicas",
        "Removing workers: from {now} down to {wanted}.",
    ),
    # Preflight checks hold new workers back (§10.7).
    _known(
        r"is provisioning \(\"ControlPlaneIsStable\" preflight check failed\)",
        "New workers wait until the control plane is up.",
        WAITING,
    ),
    _known(
        r"is upgrading \(\"ControlPlaneIsStable\" preflight check failed\)",
        "New workers wait until the control plane's upgrade is done.",
        WAITING,
    ),
    _known(
        r"\"ControlPlaneVersionSkew\" preflight check failed",
        "New workers wait: their version is newer than the control plane's.",
        WAITING,
    ),
    _known(
        r"\"KubeadmVersionSkew\" preflight check failed",
        "New workers wait until the control plane runs their minor version.",
        WAITING,
    ),
    # --- Cluster API: Machine, KubeadmConfig, KubevirtMachine (§10.7, §10.8) -----------------
    _known(
        r"KubeadmConfig .*dataSecretCreated is false",
        "Preparing the worker's bootstrap configuration.",
    ),
    _known(r"KubevirtMachine .*ready is false", "Creating the worker's virtual machine."),
    _known(
        r"Waiting for a Node with spec\.providerID \S+ to exist",
        "Waiting for the worker to join the cluster.",
    ),
    _known(r"Machine is not Ready", "Waiting for the worker to become ready."),
    _known(r"kubelet is posting ready status", "The worker is ready."),
    _known(
        r"Drain not completed yet",
        "Moving the workloads off the worker before it is removed.",
    ),
    # --- Kamaji: KamajiControlPlane and TenantControlPlane (§1, §10.4) -----------------------
    _known(
        r"the TenantControlPlane has not yet an address",
        "Waiting for the control plane's address.",
    ),
    _known(r"the TenantControlPlane is not yet Ready", "Starting the control plane."),
    _known(
        r"the TenantControlPlane is (?P<state>\w+)",
        lambda m: CONTROL_PLANE_STATES.get(
            m["state"].lower(), "Waiting for the control plane to report its state."
        ),
    ),
    _known(
        r"ReplicaSet \"[^\"]+\" has timed out progressing",
        f"The control plane did not start in time. {ASK_OPERATORS}",
        FAILURE,
    ),
    _known(
        r"Deployment does not have minimum availability",
        "Waiting for the control plane to start.",
    ),
    _known(r"Deployment has minimum availability", "The control plane is running."),
    # --- Flux: HelmRelease and HelmRepository (§9) -------------------------------------------
    _known(
        r"Running '(?P<action>install|upgrade|uninstall|rollback|test)' action",
        lambda m: HELM_ACTIONS[m["action"].lower()],
    ),
    _known(r"Fulfilling prerequisites", "Waiting for what it needs before it is installed."),
    _known(
        r"dependency '(?P<dependency>[^']+)' is not ready",
        lambda m: f"Waiting for {_last_part(m['dependency'])}, which it needs, to be installed.",
        WAITING,
    ),
    _known(
        r"could not get Source object: HelmRepository '[^']+' not found",
        f"Its chart repository is missing. {ASK_OPERATORS}",
        FAILURE,
    ),
    _known(r"HelmChart '[^']+' is not ready", "Waiting for its chart to be downloaded.", WAITING),
    _known(
        r"could not get KubeConfig secret",
        "Waiting for the cluster's access credentials.",
        WAITING,
    ),
    _known(
        r"KubeConfig secret '[^']+' does not contain",
        f"The cluster's access credentials are incomplete. {ASK_OPERATORS}",
        FAILURE,
    ),
    _known(
        r"Helm (?P<action>install|upgrade|uninstall|rollback|test) failed",
        lambda m: (
            f"{HELM_FAILED[m['action'].lower()].capitalize()} it failed. It is tried again; if "
            "it keeps failing, remove it or ask the platform operators."
        ),
        FAILURE,
    ),
    _known(
        r"(?:Failed to (?P<action>install|upgrade) after (?P<count>\d+) attempt"
        r"|(?P<verb>install|upgrade) retries exhausted)",
        lambda m: (
            f"{HELM_FAILED[(m['action'] or m['verb']).lower()].capitalize()} it failed too "
            "often and is not tried again. Remove it and add it again, or ask the platform "
            "operators."
        ),
        FAILURE,
    ),
    _known(
        r"Helm (?P<action>install|upgrade|uninstall|rollback|test) succeeded",
        lambda m: HELM_DONE[m["action"].lower()],
    ),
    _known(
        r"failed to fetch Helm repository index",
        f"The chart repository could not be read. {ASK_OPERATORS}",
        FAILURE,
    ),
    _known(r"stored artifact: revision", "The chart repository is up to date."),
    _known(
        r"timed out waiting for the condition|context deadline exceeded",
        "It did not become ready in time. It is tried again; ask the platform operators if it "
        "keeps failing.",
        FAILURE,
    ),
    # --- KubeVirt: VirtualMachine and VirtualMachineInstance (§3, §4) ------------------------
    _known(r"VMI does not exist", "The virtual machine is not running."),
    _known(r"Guest VM is not reported as running", "Waiting for the guest to start."),
    _known(
        r"a non-live-updatable field was changed",
        "A change takes effect at the next restart.",
    ),
    _known(r"cannot migrate VMI", "It cannot move to another node while it runs."),
    _known(
        r"\d+/\d+ nodes are available:.*Insufficient (?P<what>memory|cpu)",
        lambda m: (
            f"No node has enough free {'memory' if m['what'].lower() == 'memory' else 'CPU'} "
            "for it. Choose a smaller size, or ask the platform operators for room."
        ),
        FAILURE,
    ),
    _known(
        r"\d+/\d+ nodes are available",
        "No node can run it right now. Ask the platform operators if it stays so.",
        FAILURE,
    ),
    _known(
        r"ErrImagePull|ImagePullBackOff|Back-off pulling image|failed to pull image",
        f"Its image could not be downloaded. {ASK_OPERATORS}",
        FAILURE,
    ),
    _known(
        r"persistentvolumeclaim \"[^\"]+\" not found",
        "Its disk's volume is missing. Delete the virtual machine and create it again.",
        FAILURE,
    ),
    # --- CDI: DataVolume (§6) -----------------------------------------------------------------
    _known(r"PVC \S+ Bound", "Its disk's volume is ready."),
    _known(r"PVC \S+ Pending", "Waiting for storage for its disk.", WAITING),
    _known(r"Pod is running", "Importing the disk image."),
    _known(r"Import Complete", "Disk image imported."),
    _known(
        r"Unable to connect to http data source: expected status code 200, got (?P<code>\d+)",
        "The disk image's download address answered with error {code}. The platform "
        "operators need to fix the image in the catalog.",
        FAILURE,
    ),
    _known(
        r"Unable to connect to (?:\w+ )?data source",
        "The disk image's source could not be reached. It is tried again; ask the platform "
        "operators if it keeps failing.",
        FAILURE,
    ),
    _known(
        r"is larger than the reported available storage|DataVolume too small",
        "The disk is too small for the image. Create the virtual machine with a larger disk.",
        FAILURE,
    ),
    _known(
        r"Unable to process data",
        "The disk image could not be read. Delete the virtual machine and try another image, "
        "or ask the platform operators if it keeps failing.",
        FAILURE,
    ),
    # --- Kube-OVN: Subnet (§7) ----------------------------------------------------------------
    _known(
        r"cidr \S+ conflicts with subnet \S+|overlap",
        f"The subnet's address range overlaps another network. {ASK_OPERATORS}",
        FAILURE,
    ),
    _known(
        r"ValidateLogicalSwitchFailed",
        f"The subnet could not be set up. {ASK_OPERATORS}",
        FAILURE,
    ),
    _known(r"NoReadyGateway", "Waiting for the subnet's gateway.", WAITING),
    # --- MetalLB: the Service's events (§8) ---------------------------------------------------
    _known(
        r"Failed to allocate IP for \"[^\"]+\": no available IPs",
        "No public address is free in the tenant's share. Withdraw the ports of another "
        "virtual machine, or ask for a larger quota.",
        FAILURE,
    ),
    _known(
        r"Failed to allocate IP for",
        f"No public address could be given. {ASK_OPERATORS}",
        FAILURE,
    ),
    _known(r"Assigned IP \[", "Public address assigned."),
    # --- The API server's refusals --------------------------------------------------------------
    _known(
        r"exceeded quota: ",
        "The tenant's quota on the platform does not allow it. Ask for a larger quota.",
        FAILURE,
    ),
    _known(
        r"is forbidden: User \"[^\"]+\" cannot",
        f"The portal may not do this on the platform. {ASK_OPERATORS}",
        FAILURE,
    ),
    _known(
        r"namespaces \"[^\"]+\" not found",
        f"The tenant's namespace is missing. {ASK_OPERATORS}",
        FAILURE,
    ),
    _known(
        r"ValidatingAdmissionPolicy '[^']*' with binding '[^']*' denied request: "
        r"(?!failed expression)(?P<why>.+)",
        # The policy's message is the operators' own sentence for the tenants.
        lambda m: f"A rule of the platform refused it: {m['why'].strip().rstrip('.')}.",
        FAILURE,
    ),
    _known(
        r"admission webhook \"[^\"]+\" denied the request|denied request",
        f"A rule of the platform refused it. {ASK_OPERATORS}",
        FAILURE,
    ),
    _known(
        r"Invalid value|Unsupported value|Required value|is invalid",
        f"Kubernetes did not accept its settings. {ASK_OPERATORS}",
        FAILURE,
    ),
)


def _lines(message: str) -> list[str]:
    """The message's lines without CAPI's bullets (``* what: why``) or blank ones."""
    return [text for line in message.splitlines() if (text := line.strip().lstrip("*-").strip())]


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _said(lines: Sequence[str]) -> str:
    """The sentence of the most serious known thing the lines say ("" if none is known).

    Each line is read as the first ``KNOWN`` entry that matches it.
    """
    best: tuple[int, str] | None = None
    for line in lines:
        for known in KNOWN:
            if match := known.pattern.search(line):
                if best is None or known.severity > best[0]:
                    best = (known.severity, known.say(match))
                break
    return best[1] if best else ""


def explain(message: str | None, *, fallback: str) -> Said:
    """``message`` from a controller as a plain sentence, with the raw text kept beside it.

    ``fallback`` is what the caller would say without the controller's help ("Installing
    the add-on."); it is used for any message ``KNOWN`` does not cover. No message, no
    sentence: ``Said("")``.
    """
    lines = _lines(message or "")
    if not lines:
        return Said("")
    raw = _cut("\n".join(lines), RAW_LIMIT)
    return Said(_said(lines) or fallback, raw)
