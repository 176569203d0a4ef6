"""What the simulator can be told: step delays, speed, and the per-object annotations.

Two annotations steer one object (any kind the simulator handles):

- ``simulator.butler.io/fail: "<message>"`` makes the object take its kind's real failure
  shape instead of succeeding, with ``<message>`` where the real controller puts its error.
  ``"<Reason>: <message>"`` (a CamelCase word, a colon) also picks the reason where a kind
  has several failure shapes, e.g. ``"CrashLoopBackOff: kernel panic"`` on a VirtualMachine.
- ``simulator.butler.io/delay-seconds: "<seconds>"`` replaces every step delay of that object
  (the global ``speed`` does not apply to it).

Objects created on behalf of an annotated object inherit nothing unless the real controller
would copy the annotation: a KamajiControlPlane passes its annotations to its
TenantControlPlane, a MachineDeployment template's annotations reach its Machines.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

FAIL_ANNOTATION = "simulator.butler.io/fail"
DELAY_ANNOTATION = "simulator.butler.io/delay-seconds"

_REASON_PREFIX = re.compile(r"^(?P<reason>[A-Z][A-Za-z]+):\s*(?P<message>.*)$", re.DOTALL)


@dataclass(frozen=True)
class Delays:
    """Seconds one simulated step takes, before ``SimulatorConfig.speed`` divides them.

    The defaults make the embedded demo feel like a real (fast) platform.
    """

    network: float = 1.0  # Kube-OVN Vpc/Subnet validation, MetalLB address assignment
    control_plane: float = 8.0  # Kamaji: Provisioning → Ready, Upgrading → Ready, waking up
    control_plane_sleep: float = 3.0  # Kamaji: scaling the control plane to 0 → Sleeping
    cluster: float = 1.0  # Cluster API bookkeeping: deletion steps, finalizers
    machine: float = 4.0  # each Machine phase: Pending → Provisioning → Provisioned → Running
    vm: float = 3.0  # KubeVirt: VMI Pending → Running, Stopping → Stopped
    disk_import: float = 10.0  # CDI: the whole import from 0% to 100%
    helm: float = 5.0  # Flux: chart install
    console_login: float = 2.0  # a guest's serial console: login(1)'s wait before "Login incorrect"

    @classmethod
    def uniform(cls, seconds: float) -> Delays:
        """Every step the same length (tests use tiny ones)."""
        return cls(**{each.name: seconds for each in fields(cls)})


@dataclass(frozen=True)
class SimulatorConfig:
    delays: Delays = field(default_factory=Delays)
    # 2.0 runs every step twice as fast; 0.5 half as fast.
    speed: float = 1.0
    # How many progress updates a DataVolume import writes between 0% and 100%.
    import_progress_steps: int = 10
    # A watch ends after this long and is resumed; it also bounds how long an informer thread
    # outlives stop() (the simulator writes nothing after stop(), but the thread lingers).
    watch_timeout_seconds: int = 60
    # Names the simulated VMIs and Machines report as their node.
    node_names: tuple[str, ...] = ("sim-node-1", "sim-node-2", "sim-node-3")
    # MetalLB only reads the pools in its own namespace.
    metallb_namespace: str = "metallb-system"

    def __post_init__(self) -> None:
        if self.speed <= 0:
            raise ValueError("speed must be positive")
        if self.import_progress_steps < 1:
            raise ValueError("import_progress_steps must be at least 1")
        if not self.node_names:
            raise ValueError("node_names must name at least one node")

    @classmethod
    def from_settings(cls, **overrides: Any) -> SimulatorConfig:
        """Defaults from Django settings where the portal has them (optional
        ``SIMULATOR_SPEED``; ``METALLB_NAMESPACE``), then ``overrides``."""
        from django.conf import settings

        defaults = {
            "speed": float(getattr(settings, "SIMULATOR_SPEED", 1.0)),
            "metallb_namespace": getattr(settings, "METALLB_NAMESPACE", "metallb-system"),
        }
        return cls(**{**defaults, **overrides})

    def step_seconds(self, step: str, annotations: Mapping[str, str] | None = None) -> float:
        """How long ``step`` (a ``Delays`` field) takes for an object with these annotations."""
        override = (annotations or {}).get(DELAY_ANNOTATION)
        if override is not None:
            try:
                return max(0.0, float(override))
            except ValueError:
                pass  # a typo in an annotation must not stop the simulation: use the default
        seconds: float = getattr(self.delays, step)
        return seconds / self.speed


@dataclass(frozen=True)
class Failure:
    """An injected failure: the annotation's text."""

    text: str

    @classmethod
    def of(cls, obj: Mapping[str, Any]) -> Failure | None:
        annotations = (obj.get("metadata") or {}).get("annotations") or {}
        text = annotations.get(FAIL_ANNOTATION)
        if text is None:
            return None
        return cls(text.strip() or "simulated failure")

    def shape(self, default_reason: str, *other_reasons: str) -> tuple[str, str]:
        """(reason, message) for a kind with several failure shapes.

        A leading ``"<Reason>: "`` that names one of the kind's shapes picks it and is cut
        from the message; anything else keeps the default shape and the whole text.
        """
        match = _REASON_PREFIX.match(self.text)
        if match and match.group("reason") in (default_reason, *other_reasons):
            return match.group("reason"), match.group("message") or self.text
        return default_reason, self.text
