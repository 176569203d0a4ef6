"""The simulator tests share the reusable ``simulator`` fixture and a few helpers."""

from __future__ import annotations

import copy
import itertools
import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest
import yaml

from butler_portal.kube.adapter import KubeClient
from butler_portal.kube.errors import NotFound
from tests.fixtures import CRD_EXAMPLES_DIR
from tests.simulator_fixtures import wait_for

Manifest = dict[str, Any]
METALLB_NAMESPACE = "metallb-system"


def example(file: str, namespace: str, kind: str | None = None) -> list[Manifest]:
    """The documents of the upstream example ``<file>`` (``tests/fixtures/crd_examples``), moved into ``namespace`` (and, for
    namespace-bound specs, pointed at it)."""
    text = (CRD_EXAMPLES_DIR / file).read_text()
    documents = [document for document in yaml.safe_load_all(text) if document]
    placed = []
    for document in documents:
        if kind and document["kind"] != kind:
            continue
        document = copy.deepcopy(document)
        if "namespace" in document["metadata"]:
            document["metadata"]["namespace"] = namespace
        if "namespaces" in document.get("spec", {}):
            document["spec"]["namespaces"] = [namespace]
        placed.append(document)
    return placed


def unique(prefix: str) -> str:
    """Cluster-scoped objects (Subnets, Vpcs) and shared-namespace ones need unique names."""
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def fetch(k8s: KubeClient, manifest: Manifest) -> Manifest | None:
    try:
        return k8s.get_manifest(manifest)
    except NotFound:
        return None


def reach(
    k8s: KubeClient, manifest: Manifest, check: Callable[[Manifest], Any], timeout: float = 45.0
) -> Manifest:
    """Wait until the live object satisfies ``check``, and return it.

    Generous: a fresh simulator first re-reads every object earlier tests left on the shared
    API server, and on a loaded machine a whole cluster's steps can take a while. It returns
    as soon as the object gets there.
    """

    def satisfied() -> Manifest | None:
        obj = fetch(k8s, manifest)
        return obj if obj is not None and check(obj) else None

    try:
        return wait_for(satisfied, timeout)
    except AssertionError as error:
        # Say where the object stopped, not just that it did not arrive.
        last = fetch(k8s, manifest)
        seen = "gone" if last is None else json.dumps(last.get("status") or {}, sort_keys=True)
        kind, name = manifest["kind"], manifest["metadata"]["name"]
        raise AssertionError(f"{error}; {kind} {name} last had status {seen}") from None


def get(
    k8s: KubeClient, api_version: str, kind: str, name: str, namespace: str | None = None
) -> Manifest | None:
    try:
        return k8s.get(api_version, kind, name, namespace)
    except NotFound:
        return None


def condition(obj: Manifest | None, type_: str) -> Manifest:
    for entry in (obj or {}).get("status", {}).get("conditions", []):
        if entry["type"] == type_:
            return dict(entry)
    return {}


def is_true(obj: Manifest | None, type_: str) -> bool:
    return condition(obj, type_).get("status") == "True"


def status(obj: Manifest | None, *path: str) -> Any:
    value: Any = (obj or {}).get("status", {})
    for step in path:
        value = value.get(step) if isinstance(value, dict) else None
    return value


@pytest.fixture
def metallb_namespace(k8s: KubeClient) -> str:
    k8s.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": METALLB_NAMESPACE}})
    return METALLB_NAMESPACE


@pytest.fixture
def tenant_subnet(k8s: KubeClient, k8s_namespace: str) -> Manifest:
    """A Kube-OVN Subnet bound to the test's namespace, like the portal's tenant onboarding."""
    subnet = example("kubeovn-subnet.yaml", k8s_namespace, kind="Subnet")[0]
    subnet["metadata"]["name"] = unique("subnet")
    subnet["spec"].pop("vpc")
    return k8s.apply(subnet)


# Every pool gets addresses no other test uses: Services of earlier tests keep theirs.
_address_blocks = itertools.count()


@pytest.fixture
def address_pool(k8s: KubeClient, k8s_namespace: str, metallb_namespace: str) -> Manifest:
    """Two MetalLB addresses reserved for the test's namespace."""
    block = next(_address_blocks)
    first = f"198.51.{100 + block // 64}.{(block % 64) * 4 + 1}"
    last = f"198.51.{100 + block // 64}.{(block % 64) * 4 + 2}"
    return k8s.apply(
        {
            "apiVersion": "metallb.io/v1beta1",
            "kind": "IPAddressPool",
            "metadata": {"name": unique("pool"), "namespace": metallb_namespace},
            "spec": {
                "addresses": [f"{first}-{last}"],
                "serviceAllocation": {"priority": 10, "namespaces": [k8s_namespace]},
            },
        }
    )


def changes(values: list[Any]) -> list[Any]:
    """The values in order, each repeat in a row shown once (and no empty ones)."""
    collapsed: list[Any] = []
    for value in values:
        if value and (not collapsed or collapsed[-1] != value):
            collapsed.append(value)
    return collapsed


def history(
    k8s: KubeClient,
    manifest: Manifest,
    until: Callable[[Manifest], bool],
    timeout: int = 15,
) -> list[Manifest]:
    """Every version of the object the API server reports, from now until ``until`` holds:
    a watch sees each write, however fast the simulator makes them."""
    api_version, kind = manifest["apiVersion"], manifest["kind"]
    name, namespace = manifest["metadata"]["name"], manifest["metadata"].get("namespace")
    listed = k8s.list(api_version, kind, namespace)
    seen = [item for item in listed.items if item["metadata"]["name"] == name]
    if seen and until(seen[-1]):
        return seen
    for event in k8s.watch(
        api_version,
        kind,
        namespace,
        resource_version=listed.resource_version,
        timeout_seconds=timeout,
    ):
        if event.type in ("ADDED", "MODIFIED") and event.object["metadata"]["name"] == name:
            seen.append(event.object)
            if until(event.object):
                return seen
    raise AssertionError(f"{kind} {name} never got there; last seen: {seen[-1:]}")
