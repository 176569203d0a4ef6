"""Pytest plugin: a real local Kubernetes API for tests (register with ``pytest_plugins``).

- ``local_k8s``: one etcd + kube-apiserver per test session (per xdist worker), with every CRD
  vendored in ``butler_portal/kube/crds`` installed. Starting takes seconds once the binaries are cached; the
  first run may build them (see ``python -m butler_portal.kube.localcp ensure-binaries``).
- ``k8s``: an admin ``KubeClient`` for that API server.
- ``k8s_namespace``: a fresh namespace per test. Without kube-controller-manager namespaces
  never finish deleting, so every test gets a new unique name instead of cleaning up.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import pytest

from butler_portal.kube.adapter import KubeClient
from butler_portal.kube.localcp import LocalControlPlane


@pytest.fixture(scope="session")
def local_k8s() -> Iterator[LocalControlPlane]:
    with LocalControlPlane() as control_plane:
        yield control_plane


@pytest.fixture
def k8s(local_k8s: LocalControlPlane) -> Iterator[KubeClient]:
    with local_k8s.client() as client:
        yield client


@pytest.fixture
def k8s_namespace(k8s: KubeClient, request: pytest.FixtureRequest) -> str:
    # The test's name in the namespace name makes leftovers easy to trace when debugging.
    test_name = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower())[:40].strip("-")
    name = f"{test_name}-{uuid.uuid4().hex[:8]}"
    k8s.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    return name
