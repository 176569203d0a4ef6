"""What every resource's lifecycle module shares: Kubernetes status in, timeline steps out.

``clusters.lifecycle`` and ``vms.lifecycle`` read different objects, but they read them the
same way (``status``, ``metadata``, ``status.conditions``, controller messages made
readable) and draw the same kind of timeline for the tenant. Pure: no database, no API.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

Manifest = Mapping[str, Any]

# Step states (the same strings as ClusterStep.State; this module stays free of the models
# so it runs without a database).
STEP_PENDING, STEP_ACTIVE, STEP_DONE, STEP_FAILED = "pending", "active", "done", "failed"

MESSAGE_LIMIT = 300


def plain(message: str | None) -> str:
    """A controller message as one readable line (CAPI aggregates come as bullet lists)."""
    for line in (message or "").splitlines():
        text = line.strip().lstrip("*-").strip()
        if text:
            return text if len(text) <= MESSAGE_LIMIT else text[: MESSAGE_LIMIT - 1] + "…"
    return ""


def status_of(obj: Manifest | None) -> Mapping[str, Any]:
    return (obj or {}).get("status") or {}


def metadata_of(obj: Manifest | None) -> Mapping[str, Any]:
    return (obj or {}).get("metadata") or {}


def is_deleting(obj: Manifest | None) -> bool:
    """Whether Kubernetes was asked to delete it (finalizers may still hold it)."""
    return bool(metadata_of(obj).get("deletionTimestamp"))


@dataclass(frozen=True)
class Condition:
    status: str  # "True" | "False" | "Unknown"
    reason: str = ""
    message: str = ""

    @property
    def is_true(self) -> bool:
        return self.status == "True"

    @property
    def is_false(self) -> bool:
        return self.status == "False"


def conditions_of(obj: Manifest) -> dict[str, Condition]:
    return {
        str(item.get("type")): Condition(
            status=str(item.get("status", "Unknown")),
            reason=str(item.get("reason") or ""),
            message=str(item.get("message") or ""),
        )
        for item in status_of(obj).get("conditions") or ()
        if item.get("type")
    }


@dataclass(frozen=True)
class Step:
    """One step of a resource's timeline, from request to ready."""

    key: str
    label: str
    position: int
    state: str = STEP_PENDING
    message: str = ""
    # The controller's own words behind ``message`` (butler_portal.explain), shown one click
    # away; "" when the message is the portal's own.
    raw: str = ""


def step_clock(
    state: str, started_at: datetime | None, now: datetime
) -> tuple[datetime | None, datetime | None]:
    """(started_at, finished_at) of a stored step entering ``state``: going active starts its
    clock, finishing (or failing) stops the clock of the attempt that started then, going
    back to pending clears both. Clusters and VMs keep their timelines the same way."""
    if state == STEP_PENDING:
        return None, None
    if state == STEP_ACTIVE:
        return started_at or now, None
    return started_at or now, now
