"""Labels and annotations the portal puts on everything it applies.

They let the watcher map an object back to its portal row, let operators find what the
portal manages (`kubectl get ... -l app.kubernetes.io/managed-by=butler-portal`), and let
the drift reconcile tell portal objects from everything else.
"""

from __future__ import annotations

MANAGED_BY_KEY = "app.kubernetes.io/managed-by"
MANAGED_BY = "butler-portal"
TENANT_KEY = "butler.io/tenant"
SUSPENDED_KEY = "butler.io/suspended"
CLUSTER_KEY = "butler.io/cluster"
VM_KEY = "butler.io/vm"

MANAGED_SELECTOR = f"{MANAGED_BY_KEY}={MANAGED_BY}"


def portal_labels(tenant_slug: str, **extra: str) -> dict[str, str]:
    return {MANAGED_BY_KEY: MANAGED_BY, TENANT_KEY: tenant_slug, **extra}
