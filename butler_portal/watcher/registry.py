"""What the apps give the watcher: status handlers and drift checks, by module.

Every module named in ``settings.WATCHER_HANDLER_MODULES`` may expose
``status_handlers() -> dict[WatchedKind, Handler]`` (see ``tenants/status.py``) and
``drift_checks() -> list[DriftCheck]`` (see ``tenants/drift.py``).
Two modules that follow the same kind share one stream: their handlers run one after the
other on every object.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from importlib import import_module
from types import ModuleType

from django.conf import settings

from butler_portal.kube.adapter import Manifest
from butler_portal.kube.informer import Handler, WatchedKind
from butler_portal.kube.served import Kind
from butler_portal.watcher.drift import DriftCheck


def handler_modules(names: Iterable[str] | None = None) -> list[ModuleType]:
    chosen = settings.WATCHER_HANDLER_MODULES if names is None else names
    return [import_module(name) for name in chosen]


def collect_handlers(modules: Sequence[ModuleType]) -> dict[WatchedKind, Handler]:
    by_kind: dict[WatchedKind, list[Handler]] = {}
    for module in modules:
        provider = getattr(module, "status_handlers", None)
        for watched, handler in (provider() if provider else {}).items():
            by_kind.setdefault(watched, []).append(handler)
    return {watched: _one_after_another(handlers) for watched, handlers in by_kind.items()}


def collect_drift_checks(modules: Sequence[ModuleType]) -> list[DriftCheck]:
    checks: list[DriftCheck] = []
    for module in modules:
        provider = getattr(module, "drift_checks", None)
        checks += provider() if provider else []
    return checks


def _one_after_another(handlers: Sequence[Handler]) -> Handler:
    if len(handlers) == 1:
        return handlers[0]

    def handle(event_type: str, obj: Manifest) -> None:
        for handler in handlers:
            handler(event_type, obj)

    return handle


def needed_kinds(handlers: Iterable[WatchedKind], drift_checks: Iterable[DriftCheck]) -> list[Kind]:
    """Every kind followed or compared: what the management cluster must serve."""
    watched = [*handlers, *(kind for check in drift_checks for kind in check.kinds)]
    return sorted({Kind(kind.api_version, kind.kind) for kind in watched})


def required_kinds(modules: Sequence[ModuleType]) -> list[Kind]:
    """The kinds the apps' handler modules need."""
    return needed_kinds(collect_handlers(modules), collect_drift_checks(modules))
