"""CDI: ``DataVolume`` phases and import progress (STATUS.md §6).

An import goes ``Pending → ImportScheduled → ImportInProgress`` with ``status.progress``
rising from ``"0.00%"`` to 100, then ``Succeeded`` with ``Ready=True``. Clones and uploads
use their own phase names. DataVolumes from a VM's ``dataVolumeTemplates`` are created by
the KubeVirt simulation (owned by the VM) and progress here like any other.
"""

from __future__ import annotations

from butler_portal.simulator.base import Controller
from butler_portal.simulator.objects import (
    Manifest,
    condition,
    dig,
    merge_conditions,
    name_of,
)

API_VERSION = "cdi.kubevirt.io/v1beta1"
SUCCEEDED, FAILED = "Succeeded", "Failed"
STAMPS = ("lastTransitionTime", "lastHeartbeatTime")
# The share of the import done when an injected failure strikes.
FAILS_AT = 0.5


def phases_for(dv: Manifest) -> tuple[str, str]:
    """(scheduled, in progress) phase names for the DataVolume's kind of population."""
    source = dig(dv, "spec", "source", default={})
    if "upload" in source:
        return "UploadScheduled", "UploadReady"
    if "pvc" in source or "snapshot" in source or dig(dv, "spec", "sourceRef"):
        return "CloneScheduled", "CloneInProgress"
    return "ImportScheduled", "ImportInProgress"


class DataVolumeController(Controller):
    api_version = API_VERSION
    kind = "DataVolume"

    def reconcile(self, dv: Manifest) -> float | None:
        phase = dig(dv, "status", "phase", default="")
        scheduled, in_progress = phases_for(dv)
        if phase in (SUCCEEDED, FAILED, "UploadReady"):
            return None  # done, failed, or waiting for an upload that never comes here
        steps = self.config.import_progress_steps
        done = progress_of(dv)
        # One step at a time, each a tick long: scheduling, starting, then each progress step.
        stage = f"{phase} {done:.2f}" if phase == in_progress else phase
        tick = 1.0 / (steps + 2) if phase else 0.0
        if wait := self.wait(dv, stage, "disk_import", fraction=tick):
            return wait
        if not phase:
            self.write(dv, "Pending", bound=False)
        elif phase == "Pending":
            self.write(dv, scheduled)
        elif phase == scheduled:
            self.write(
                dv,
                in_progress,
                progress=None if in_progress == "UploadReady" else 0.0,
                running=True,
            )
        elif (failure := self.failure(dv)) and done + 100.0 / steps >= 100 * FAILS_AT:
            message = f"Unable to process data: {failure.text}"
            self.write(dv, FAILED, progress=done, reason="Error", message=message)
        elif done + 100.0 / steps >= 100:
            self.write(dv, SUCCEEDED, progress=100.0, reason="Completed")
        else:
            self.write(dv, in_progress, progress=done + 100.0 / steps, running=True)
        return None  # the write wakes this object again, in its next stage

    def write(
        self,
        dv: Manifest,
        phase: str,
        *,
        progress: float | None = None,
        bound: bool = True,
        running: bool = False,
        reason: str = "",
        message: str = "",
    ) -> None:
        claim = name_of(dv)
        if progress is None:
            shown = "N/A"
        elif progress >= 100:
            shown = "100.0%"  # what CDI shows once done
        else:
            shown = f"{progress:.2f}%"
        ready = phase == SUCCEEDED
        desired = [
            condition(
                "Bound",
                bound,
                "Bound" if bound else "Pending",
                f"PVC {claim} {'Bound' if bound else 'Pending'}",
            ),
            condition("Running", running, reason or ("Pod is running" if running else "")),
            condition("Ready", ready, "Ready" if ready else "", message),
        ]
        if message:
            desired[1]["message"] = message
        self.api.write_status(
            dv,
            {
                "phase": phase,
                "progress": shown,
                "claimName": claim,
                "restartCount": 1 if phase == FAILED else 0,
                "conditions": merge_conditions(
                    dig(dv, "status", "conditions"), desired, stamp_fields=STAMPS
                ),
            },
        )


def progress_of(dv: Manifest) -> float:
    try:
        return float(str(dig(dv, "status", "progress", default="0")).rstrip("%"))
    except ValueError:
        return 0.0
