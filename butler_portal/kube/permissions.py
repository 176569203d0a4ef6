"""Everything the portal may do in the management cluster, declared once.

The portal's identity (the chart's ServiceAccount) gets exactly these rules: the Helm chart
embeds them (``deploy/chart/butler-portal/files/rbac-rules.yaml``, generated from here) and
``tests/deploy`` proves on a real API server that the portal works with them and that taking
any one of them away breaks the flow that needs it, with a Forbidden error a person sees.

Each rule names the code that needs it. Three places hold rules:

- ``Scope.CLUSTER`` (a ClusterRole): tenant namespaces are created at onboarding, so the
  portal's objects live in namespaces nobody can list in advance, and some kinds (Namespace,
  Kube-OVN's Vpc and Subnet) are cluster-scoped. The watcher follows every tenant at once
  with one watch per kind across all namespaces.
- ``Scope.METALLB_NAMESPACE`` (a Role in MetalLB's namespace, ``METALLB_NAMESPACE``): the
  tenants' address pools and advertisements live there and nowhere else.
- ``Scope.RELEASE_NAMESPACE`` (a Role in the portal's own namespace,
  ``WATCHER_LEASE_NAMESPACE``): the watcher's leader-election Lease.

Facts checked on kube-apiserver v1.35 (``tests/deploy/test_rbac.py``):

- server-side apply is a PATCH, but when the object does not exist yet the API server also
  authorizes ``create`` (``withAuthorization`` in apiserver's patch handler): every kind the
  portal applies needs both ``patch`` and ``create``;
- ``create`` cannot be narrowed by ``resourceNames`` (the name is in the body, not the URL),
  so the Lease needs one rule to create it and a narrower one, by name, to read and renew it;
- a label selector narrows what a list returns, never what RBAC allows: listing the portal's
  own Secrets means the right to list every Secret.

RBAC cannot say "only the namespaces and Secrets the portal made". Admission can: the chart
also installs a ValidatingAdmissionPolicy (on by default, ``guardrails.enabled``) that refuses
the portal's ServiceAccount any create, update or delete of an object in a ``guarded`` rule
unless the object carries the portal's label ``app.kubernetes.io/managed-by=butler-portal``
(before and after the change). Reads cannot be narrowed this way.

No Django here: ``python -m butler_portal.kube.permissions --helm-rules`` runs without settings.
"""

from __future__ import annotations

import argparse
import enum
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import yaml

# The watcher's Lease (butler_portal.watcher.LEASE_NAME; a test keeps the two equal). Named
# here rather than imported so that this declaration loads without the watcher's imports.
WATCHER_LEASE_NAME = "butler-portal-watcher"

Verb = Literal["get", "list", "watch", "create", "update", "patch", "delete"]

# Reading what the portal manages, by name and in bulk.
READ: tuple[Verb, ...] = ("get", "list")
# What the portal applies (server-side apply: patch, plus create for a new object) and
# deletes; ``get`` to see whether a deletion has finished.
APPLY_AND_DELETE: tuple[Verb, ...] = ("get", "list", "create", "patch", "delete")


class Scope(enum.StrEnum):
    """Where a rule is granted; the value is its key in the generated file."""

    CLUSTER = "cluster"
    METALLB_NAMESPACE = "metallbNamespace"
    RELEASE_NAMESPACE = "releaseNamespace"


@dataclass(frozen=True)
class Rule:
    """One RBAC PolicyRule, with why the portal needs it."""

    api_group: str  # "" is the core group
    resources: tuple[str, ...]  # plurals; "plural/subresource" for a subresource
    verbs: tuple[Verb, ...]
    why: str
    scope: Scope = Scope.CLUSTER
    resource_names: tuple[str, ...] = ()
    # Writes limited by the chart's admission policy to objects labelled as the portal's.
    # Off only where the objects are made by others and carry no such label.
    guarded: bool = True

    def policy_rule(self) -> dict[str, Any]:
        rule: dict[str, Any] = {
            "apiGroups": [self.api_group],
            "resources": list(self.resources),
        }
        if self.resource_names:
            rule["resourceNames"] = list(self.resource_names)
        rule["verbs"] = list(self.verbs)
        return rule

    def allows(self, api_group: str, resource: str, verb: str) -> bool:
        return api_group == self.api_group and resource in self.resources and verb in self.verbs

    @property
    def operations(self) -> tuple[str, ...]:
        """The admission operations of this rule's writing verbs."""
        return tuple(
            operation
            for operation, verbs in ADMISSION_OPERATIONS.items()
            if any(verb in verbs for verb in self.verbs)
        )


# The admission operation each writing verb leads to. Server-side apply (patch) of a missing
# object is admitted as a CREATE, and the rule then also grants create.
ADMISSION_OPERATIONS: dict[str, tuple[Verb, ...]] = {
    "CREATE": ("create",),
    "UPDATE": ("update", "patch"),
    "DELETE": ("delete",),
}


def _watched(verbs: tuple[Verb, ...]) -> tuple[Verb, ...]:
    """``verbs`` plus ``watch``, in the order kubectl prints them."""
    order: tuple[Verb, ...] = ("get", "list", "watch", "create", "update", "patch", "delete")
    return tuple(verb for verb in order if verb in verbs or verb == "watch")


PORTAL_RULES: tuple[Rule, ...] = (
    # --- Tenant onboarding (tenants/network.py, tenants/drift.py) -------------------------
    Rule(
        "",
        ("namespaces",),
        APPLY_AND_DELETE,
        "Each tenant gets a namespace, applied at onboarding and labelled when suspended; "
        "deleting the tenant deletes it. The drift reconcile lists the managed ones. RBAC "
        "cannot limit this to the tenant- prefix; the admission policy limits the writes to "
        "namespaces labelled as the portal's.",
    ),
    Rule(
        "",
        ("resourcequotas", "limitranges"),
        APPLY_AND_DELETE,
        "The tenant's ResourceQuota and LimitRange mirror its portal quota; teardown deletes "
        "them and checks they are gone; the drift reconcile lists them.",
    ),
    Rule(
        "kubeovn.io",
        ("vpcs", "subnets"),
        _watched(APPLY_AND_DELETE),
        "The tenant's Kube-OVN Vpc and Subnet (cluster-scoped); the watcher follows their "
        "status into the portal's network state.",
    ),
    Rule(
        "metallb.io",
        ("ipaddresspools",),
        _watched(APPLY_AND_DELETE),
        "The tenant's share of public addresses; the watcher follows how many are in use.",
        scope=Scope.METALLB_NAMESPACE,
    ),
    Rule(
        "metallb.io",
        ("l2advertisements",),
        APPLY_AND_DELETE,
        "Announces the tenant's address pool on the network.",
        scope=Scope.METALLB_NAMESPACE,
    ),
    # --- Clusters (clusters/provisioning.py, clusters/status.py, clusters/drift.py) ------
    Rule(
        "cluster.x-k8s.io",
        ("clusters", "machinedeployments"),
        _watched(APPLY_AND_DELETE),
        "The Cluster API Cluster and its worker pool: applied at request and on every "
        "change (scale, upgrade, hibernate), deleted at teardown, followed by the watcher.",
    ),
    Rule(
        "cluster.x-k8s.io",
        ("machines",),
        ("list", "watch"),
        "The watcher follows each worker Machine (Cluster API makes them) for node status.",
    ),
    Rule(
        "controlplane.cluster.x-k8s.io",
        ("kamajicontrolplanes",),
        _watched(APPLY_AND_DELETE),
        "The hosted control plane (Kamaji's provider), applied and followed.",
    ),
    Rule(
        "infrastructure.cluster.x-k8s.io",
        ("kubevirtclusters", "kubevirtmachinetemplates"),
        APPLY_AND_DELETE,
        "The KubeVirt infrastructure of a cluster and its workers' template.",
    ),
    Rule(
        "bootstrap.cluster.x-k8s.io",
        ("kubeadmconfigtemplates",),
        APPLY_AND_DELETE,
        "How the workers join the cluster (kubeadm).",
    ),
    Rule(
        "kamaji.clastix.io",
        ("tenantcontrolplanes",),
        ("get", "list", "watch", "delete"),
        "Kamaji makes the TenantControlPlane; the watcher follows its version and endpoint, "
        "and a cluster's teardown deletes one left behind.",
    ),
    Rule(
        "source.toolkit.fluxcd.io",
        ("helmrepositories",),
        APPLY_AND_DELETE,
        "Where a cluster's add-on charts come from (Flux).",
    ),
    Rule(
        "helm.toolkit.fluxcd.io",
        ("helmreleases",),
        _watched(APPLY_AND_DELETE),
        "A cluster's add-ons, installed by Flux into the tenant cluster; followed for status.",
    ),
    Rule(
        "",
        ("secrets",),
        APPLY_AND_DELETE,
        "A VM's cloud-init Secret is applied and deleted with it (vms/provisioning.py); a "
        "cluster's CA Secret is read to sign the kubeconfigs people download "
        "(clusters/kubeconfig.py); the drift reconcile lists the VM Secrets. This is the "
        "portal's most powerful right: it can read every Secret in the management cluster "
        "(the admission policy limits its writes to its own Secrets, not its reads).",
    ),
    # --- Virtual machines (vms/provisioning.py, vms/status.py, vms/consumers.py) ---------
    Rule(
        "kubevirt.io",
        ("virtualmachines",),
        _watched(APPLY_AND_DELETE),
        "The VM itself: applied at request and on power actions, deleted, followed.",
    ),
    Rule(
        "kubevirt.io",
        ("virtualmachineinstances",),
        ("get", "list", "watch", "delete"),
        "The running instance: followed for addresses and node; a restart deletes it and "
        "KubeVirt starts a new one.",
    ),
    Rule(
        "subresources.kubevirt.io",
        ("virtualmachineinstances/console",),
        ("get",),
        "The serial console people open in the browser (a websocket GET through the API "
        "server to virt-api).",
    ),
    Rule(
        "cdi.kubevirt.io",
        ("datavolumes",),
        ("get", "list", "watch", "delete"),
        "The VM's root disk import (CDI): followed for progress, deleted at teardown where "
        "no garbage collector does it.",
    ),
    Rule(
        "",
        ("persistentvolumeclaims",),
        ("get", "delete"),
        "The VM's root disk claim, deleted at teardown where no garbage collector does it.",
        guarded=False,  # CDI makes the claim, and need not copy the portal's label onto it
    ),
    Rule(
        "",
        ("services",),
        _watched(APPLY_AND_DELETE),
        "A VM's LoadBalancer Service for its exposed ports: applied, deleted when the ports "
        "are withdrawn, followed for its public address.",
    ),
    # --- The watcher's leader election (butler_portal/kube/lease.py) ----------------------
    Rule(
        "coordination.k8s.io",
        ("leases",),
        ("create",),
        "The first watcher replica creates the Lease (create cannot be limited by name).",
        scope=Scope.RELEASE_NAMESPACE,
        guarded=False,  # in the portal's own namespace, where nothing else lives
    ),
    Rule(
        "coordination.k8s.io",
        ("leases",),
        ("get", "update"),
        "Replicas read the Lease, and the leader renews and finally releases it; only this one.",
        scope=Scope.RELEASE_NAMESPACE,
        resource_names=(WATCHER_LEASE_NAME,),
        guarded=False,  # limited by name already
    ),
)


def rules_in(scope: Scope, rules: Iterable[Rule] = PORTAL_RULES) -> list[Rule]:
    return [rule for rule in rules if rule.scope is scope]


def allowed(
    api_group: str, resource: str, verb: str, scope: Scope, rules: Iterable[Rule] = PORTAL_RULES
) -> bool:
    """Whether ``verb`` on ``resource`` is granted in ``scope`` (cluster rules reach every
    namespace, so they count for the namespaced scopes too)."""
    reaching = {scope, Scope.CLUSTER}
    return any(rule.allows(api_group, resource, verb) for rule in rules if rule.scope in reaching)


def guarded_resource_rules(rules: Iterable[Rule] = PORTAL_RULES) -> list[dict[str, Any]]:
    """What the chart's admission policy watches: the writes of every guarded rule, as a
    ValidatingAdmissionPolicy's ``matchConstraints.resourceRules``."""
    return [
        {
            "apiGroups": [rule.api_group],
            "apiVersions": ["*"],
            "operations": list(rule.operations),
            "resources": list(rule.resources),
        }
        for rule in rules
        if rule.guarded and rule.operations
    ]


HEADER = """\
# Generated by `python -m butler_portal.kube.permissions --helm-rules` from
# butler_portal/kube/permissions.py (which says why each rule is there). Do not edit:
# tests/deploy checks this file equals the declaration.
# cluster, metallbNamespace, releaseNamespace: RBAC rules, by where they are granted;
# guardedResources: the writes the admission policy limits to the portal's own objects.
"""


def helm_rules_document(rules: Sequence[Rule] = PORTAL_RULES) -> str:
    """The rules by scope, as the chart's templates read them (``.Files.Get``)."""
    document: dict[str, Any] = {
        scope.value: [rule.policy_rule() for rule in rules_in(scope, rules)] for scope in Scope
    }
    document["guardedResources"] = guarded_resource_rules(rules)
    return HEADER + yaml.safe_dump(document, sort_keys=False, default_flow_style=False)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m butler_portal.kube.permissions")
    output = parser.add_mutually_exclusive_group(required=True)
    output.add_argument(
        "--helm-rules", action="store_true", help="the rules file the Helm chart embeds"
    )
    output.add_argument("--explain", action="store_true", help="every rule and why, for people")
    arguments = parser.parse_args(argv)
    if arguments.helm_rules:
        sys.stdout.write(helm_rules_document())
        return 0
    for rule in PORTAL_RULES:
        names = f" named {', '.join(rule.resource_names)}" if rule.resource_names else ""
        group = rule.api_group or "core"
        guard = " (own objects only)" if rule.guarded and rule.operations else ""
        sys.stdout.write(
            f"[{rule.scope.value}] {group}: {', '.join(rule.resources)}{names}: "
            f"{', '.join(rule.verbs)}{guard}\n    {rule.why}\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
