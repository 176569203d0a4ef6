"""The infrastructure simulator: the controllers a bare API server lacks.

It watches the resources the portal applies (Kamaji, Cluster API, KubeVirt, CDI, Kube-OVN,
MetalLB, Flux) and writes the status the real controllers would write, following
``butler_portal/kube/crds/STATUS.md``, with configurable delays and per-object failure injection
(see ``config``), and serves KubeVirt's aggregated subresource API with a simulated serial
console per running VMI (``subresources``). Run it with ``manage.py simulate`` or, in tests, the ``simulator`` fixture.
"""

from butler_portal.simulator.config import (
    DELAY_ANNOTATION,
    FAIL_ANNOTATION,
    Delays,
    SimulatorConfig,
)
from butler_portal.simulator.runtime import NotLocalCluster, Simulator

__all__ = [
    "DELAY_ANNOTATION",
    "FAIL_ANNOTATION",
    "Delays",
    "NotLocalCluster",
    "Simulator",
    "SimulatorConfig",
]
