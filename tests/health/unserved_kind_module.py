"""A handler module (as apps provide) following a kind no API server serves: Gadgets."""

from __future__ import annotations

from butler_portal.kube.adapter import Manifest
from butler_portal.kube.informer import Handler, WatchedKind

GADGET = WatchedKind("gadgets.butler.test/v1", "Gadget")


def _ignore(event_type: str, obj: Manifest) -> None:
    """Gadgets never arrive."""


def status_handlers() -> dict[WatchedKind, Handler]:
    return {GADGET: _ignore}
