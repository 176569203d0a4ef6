"""Which kinds the management cluster serves, and who provides the ones it lacks.

The portal applies and follows kinds that other projects install (Kamaji, Cluster API and its
providers, KubeVirt, CDI, Kube-OVN, MetalLB, Flux). When one is missing, people need one
sentence that names the kind and the component to install, not an error per request: the
watcher logs it once, the operator console and ``/readyz`` show it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from itertools import groupby

from butler_portal.kube.adapter import KubeClient
from butler_portal.kube.errors import Conflict, KubeError, NotFound, NotServed, Transient
from butler_portal.kube.informer import Backoff

logger = logging.getLogger(__name__)

#: The component that serves each API group (the core group is Kubernetes itself).
COMPONENT_BY_GROUP: dict[str, str] = {
    "": "Kubernetes",
    "kamaji.clastix.io": "Kamaji",
    "cluster.x-k8s.io": "Cluster API",
    "bootstrap.cluster.x-k8s.io": "Cluster API (kubeadm bootstrap provider)",
    "controlplane.cluster.x-k8s.io": "Cluster API Kamaji control-plane provider",
    "infrastructure.cluster.x-k8s.io": "Cluster API KubeVirt provider (CAPK)",
    "kubevirt.io": "KubeVirt",
    "subresources.kubevirt.io": "KubeVirt (virt-api)",
    "cdi.kubevirt.io": "KubeVirt CDI",
    "kubeovn.io": "Kube-OVN",
    "metallb.io": "MetalLB",
    "helm.toolkit.fluxcd.io": "Flux helm-controller",
    "source.toolkit.fluxcd.io": "Flux source-controller",
}


def group_of(api_version: str) -> str:
    return api_version.rpartition("/")[0]


@dataclass(frozen=True, order=True)
class Kind:
    api_version: str
    kind: str

    @property
    def component(self) -> str:
        group = group_of(self.api_version)
        return COMPONENT_BY_GROUP.get(group, group)


def unserved_kinds(client: KubeClient, kinds: Iterable[Kind]) -> list[Kind]:
    """The kinds among ``kinds`` that the API server does not serve, one discovery request per
    apiVersion. ``Transient`` (the server is away) propagates: then nothing can be said."""
    unserved: list[Kind] = []
    for api_version, same_version in groupby(sorted(set(kinds)), key=lambda k: k.api_version):
        wanted = list(same_version)
        try:
            served = set(client.served_kinds(api_version))
        except NotFound:
            unserved += wanted
        else:
            unserved += [kind for kind in wanted if kind.kind not in served]
    return unserved


def describe_unserved(kinds: Iterable[Kind]) -> str:
    """One sentence for a log line or a banner: which components to install, for which kinds."""
    by_component: dict[str, list[str]] = {}
    for kind in sorted(kinds):
        by_component.setdefault(kind.component, []).append(kind.kind)
    return "; ".join(
        f"{component} ({', '.join(names)})" for component, names in sorted(by_component.items())
    )


class ServedKindsMonitor:
    """Says once in the log which needed kinds the API server lacks, and again when that
    changes; asks with backoff while any is missing, then now and then in case one goes.

    Run ``run(stop)`` in a thread of its own.
    """

    def __init__(
        self,
        client: Callable[[], KubeClient | None],
        kinds: Iterable[Kind],
        *,
        name: str,
        settled_interval: float = 300.0,
    ) -> None:
        self.client = client
        self.kinds = sorted(set(kinds))
        self.name = name
        self.settled_interval = settled_interval
        self.backoff = Backoff(initial=2.0, maximum=120.0)
        #: The kinds found missing at the last look (None before an answer).
        self.unserved: frozenset[Kind] | None = None

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            client = self.client()
            if client is None:
                return
            try:
                unserved = frozenset(unserved_kinds(client, self.kinds))
            except KubeError:
                # The API server is away: the informers say so; look again later.
                stop.wait(self.backoff.next_delay())
                continue
            if unserved != self.unserved:
                self._report(unserved)
            self.unserved = unserved
            if unserved:
                stop.wait(self.backoff.next_delay())
            else:
                self.backoff.reset()
                stop.wait(self.settled_interval)

    def _report(self, unserved: frozenset[Kind]) -> None:
        if unserved:
            logger.warning(
                "%s: the management cluster does not serve %d kind%s the portal needs; "
                "install %s. Work that needs them waits and is retried with backoff.",
                self.name,
                len(unserved),
                "" if len(unserved) == 1 else "s",
                describe_unserved(unserved),
            )
        elif self.unserved:
            logger.info("%s: every kind the portal needs is now served", self.name)


#: What provisioning waits out instead of failing: each goes away without a person.
RETRYABLE_ERRORS: tuple[type[KubeError], ...] = (Transient, NotServed, Conflict)


def waiting_reason(error: KubeError) -> str:
    """Why applying waits, in plain words, for an error in ``RETRYABLE_ERRORS``."""
    if isinstance(error, NotServed):
        kind = Kind(error.api_version, error.kind)
        return (
            f"Waiting for {kind.component} on the management cluster ({kind.kind} is not "
            "served yet); this is retried by itself."
        )
    if isinstance(error, Conflict):
        return "Another change was being applied at the same moment; this is retried by itself."
    return "Waiting for the management cluster to answer; this is retried by itself."
