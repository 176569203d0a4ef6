"""A throwaway CustomResourceDefinition, to make a kind appear on the API server mid-test."""

from __future__ import annotations

import time
from typing import Any

from butler_portal.kube.adapter import KubeClient


def minimal_crd(group: str, kind: str, *, plural: str | None = None) -> dict[str, Any]:
    plural = plural or f"{kind.lower()}s"
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"kind": kind, "plural": plural, "singular": kind.lower()},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "x-kubernetes-preserve-unknown-fields": True,
                        }
                    },
                }
            ],
        },
    }


def install_crd(client: KubeClient, crd: dict[str, Any], timeout: float = 10.0) -> None:
    """Apply ``crd`` and wait until the API server serves it."""
    client.apply(crd)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = client.get(
            "apiextensions.k8s.io/v1", "CustomResourceDefinition", crd["metadata"]["name"]
        )
        conditions = (found.get("status") or {}).get("conditions") or []
        if any(c["type"] == "Established" and c["status"] == "True" for c in conditions):
            return
        time.sleep(0.1)
    raise AssertionError(f"{crd['metadata']['name']} was never established")
