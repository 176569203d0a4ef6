"""Every upstream example CR (vendored in tests/fixtures/crd_examples) is accepted by the real API server."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from butler_portal.kube.adapter import KubeClient
from tests.fixtures import CRD_EXAMPLES_DIR

pytestmark = pytest.mark.k8s

EXAMPLES = sorted(CRD_EXAMPLES_DIR.glob("*.yaml"))


def load_documents(path: Path) -> list[dict[str, Any]]:
    return [document for document in yaml.safe_load_all(path.read_text()) if document]


def place_in_namespace(k8s: KubeClient, manifest: dict[str, Any], namespace: str) -> dict[str, Any]:
    """Move a namespaced example into the test's namespace; leave cluster-scoped ones alone."""
    placed = copy.deepcopy(manifest)
    if k8s.resource(placed["apiVersion"], placed["kind"]).namespaced:
        placed["metadata"]["namespace"] = namespace
    return placed


def test_the_examples_folder_is_found() -> None:
    assert len(EXAMPLES) >= 8


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda path: path.stem)
def test_example_applies_and_reapplying_changes_nothing(
    k8s: KubeClient, k8s_namespace: str, example: Path
) -> None:
    manifests = [place_in_namespace(k8s, doc, k8s_namespace) for doc in load_documents(example)]

    rounds = [[k8s.apply(manifest) for manifest in manifests] for _ in range(3)]

    for manifest, first, second, third in zip(manifests, *rounds, strict=True):
        assert first["kind"] == manifest["kind"]
        assert first["metadata"]["name"] == manifest["metadata"]["name"]
        assert without_resource_version(second) == without_resource_version(first)
        assert second["metadata"]["generation"] == first["metadata"]["generation"] == 1
        # Converged: applying the same manifest again does not write at all. (Not always from
        # the second apply: a schema default inside `status`, like Flux's observedGeneration
        # -1, is shown on create but only stored by the next write.)
        assert third["metadata"]["resourceVersion"] == second["metadata"]["resourceVersion"]
        managers = {entry["manager"] for entry in third["metadata"]["managedFields"]}
        assert managers == {"butler-portal"}


def without_resource_version(manifest: dict[str, Any]) -> dict[str, Any]:
    stripped = copy.deepcopy(manifest)
    del stripped["metadata"]["resourceVersion"]
    return stripped
