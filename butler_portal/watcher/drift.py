"""Drift: what the portal expects to exist in Kubernetes, against what is there.

Each app describes its side with a ``DriftCheck`` (from an optional ``drift_checks()`` in its
status module): the kinds it manages, what every owner (a tenant, a cluster, ...) should have,
and which managed objects have lost their owner. A reconcile lists each of those kinds once,
with the portal's managed-by label, then

- asks the owning service to apply again whatever an owner is missing (the service knows how:
  the reconcile only names the owner), and
- reports orphans, managed objects whose owner is gone, without deleting them: removing
  something from a cluster that the portal no longer knows about is for a person to decide.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from butler_portal.kube.adapter import KubeClient, Manifest
from butler_portal.kube.informer import WatchedKind
from butler_portal.labels import TENANT_KEY

logger = logging.getLogger(__name__)


@dataclass(frozen=True, order=True)
class ObjectRef:
    api_version: str
    kind: str
    namespace: str  # "" for cluster-scoped objects
    name: str

    @classmethod
    def of(cls, manifest: Manifest) -> ObjectRef:
        metadata = manifest.get("metadata") or {}
        return cls(
            manifest["apiVersion"],
            manifest["kind"],
            metadata.get("namespace") or "",
            metadata["name"],
        )

    def __str__(self) -> str:
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind}.{self.api_version} {where}{self.name}"


@dataclass(frozen=True)
class Expectation:
    """What one owner should have in Kubernetes, and how to ask for it again."""

    owner: str  # for people: "tenant acme"
    objects: frozenset[ObjectRef]
    # Asks the owning service to apply again; runs in a transaction (side effects on commit).
    repair: Callable[[], None] = field(compare=False)


@dataclass(frozen=True)
class DriftCheck:
    name: str
    # Listed with the managed-by label selector; must cover every kind an expectation names.
    kinds: Sequence[WatchedKind]
    expected: Callable[[], Iterable[Expectation]]
    # Given the managed objects found, the orphans among them and why each is one.
    orphaned: Callable[[Sequence[Manifest]], Iterable[tuple[Manifest, str]]]


@dataclass(frozen=True)
class Missing:
    check: str
    owner: str
    objects: tuple[ObjectRef, ...]


@dataclass(frozen=True)
class Orphan:
    check: str
    object: ObjectRef
    reason: str


@dataclass(frozen=True)
class DriftReport:
    checked_at: datetime
    missing: tuple[Missing, ...]
    orphans: tuple[Orphan, ...]

    @property
    def clean(self) -> bool:
        return not self.missing and not self.orphans

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON types, for logs, a management command or an API."""
        return {
            "checked_at": self.checked_at.isoformat(),
            "clean": self.clean,
            "missing": [
                {"check": m.check, "owner": m.owner, "objects": [str(ref) for ref in m.objects]}
                for m in self.missing
            ],
            "orphans": [
                {"check": o.check, "object": str(o.object), "reason": o.reason}
                for o in self.orphans
            ],
        }


def drift_report(client: KubeClient, checks: Sequence[DriftCheck]) -> DriftReport:
    """Compare without changing anything."""
    report, _ = _compare(client, checks)
    return report


def reconcile(
    client: KubeClient,
    checks: Sequence[DriftCheck],
    *,
    may_repair: Callable[[], bool] = lambda: True,
) -> DriftReport:
    """Compare, then ask the owners' services to apply again what is missing.

    ``may_repair`` is asked before each repair: a watcher that lost its lease stops there.
    """
    report, repairs = _compare(client, checks)
    for missing, repair in zip(report.missing, repairs, strict=True):
        if not may_repair():
            break
        names = ", ".join(str(ref) for ref in missing.objects)
        logger.warning("drift: %s is missing %s; applying again", missing.owner, names)
        try:
            with transaction.atomic():
                repair()
        except Exception:
            # One owner's failing repair must not keep the others from theirs.
            logger.exception("drift: asking to apply %s again failed", missing.owner)
    for orphan in report.orphans:
        logger.warning("drift: orphan %s (%s)", orphan.object, orphan.reason)
    return report


def orphans_by_tenant_label(objects: Sequence[Manifest]) -> list[tuple[Manifest, str]]:
    """Managed objects labelled with a tenant the portal no longer has."""
    from tenants.models import Tenant

    def tenant_of(obj: Manifest) -> str:
        return str(((obj.get("metadata") or {}).get("labels") or {}).get(TENANT_KEY, ""))

    labelled = {tenant_of(obj) for obj in objects} - {""}
    existing = set(Tenant.objects.filter(slug__in=labelled).values_list("slug", flat=True))
    return [
        (obj, f"tenant {tenant_of(obj)} no longer exists")
        for obj in objects
        if tenant_of(obj) and tenant_of(obj) not in existing
    ]


def _compare(
    client: KubeClient, checks: Sequence[DriftCheck]
) -> tuple[DriftReport, list[Callable[[], None]]]:
    listed: dict[WatchedKind, list[Manifest]] = {}
    missing: list[Missing] = []
    repairs: list[Callable[[], None]] = []
    orphans: dict[ObjectRef, Orphan] = {}
    for check in checks:
        # The database first, Kubernetes second: an owner created meanwhile is then merely
        # not checked yet, rather than reported with everything missing.
        expectations = list(check.expected())
        found: list[Manifest] = []
        for watched in check.kinds:
            if watched not in listed:
                listed[watched] = client.list(
                    watched.api_version,
                    watched.kind,
                    watched.namespace,
                    label_selector=watched.label_selector,
                ).items
            found += listed[watched]
        present = {ObjectRef.of(obj) for obj in found}
        covered = {(watched.api_version, watched.kind) for watched in check.kinds}
        for expectation in expectations:
            if uncovered := {(r.api_version, r.kind) for r in expectation.objects} - covered:
                raise ValueError(f"drift check {check.name!r} does not list {sorted(uncovered)}")
            if absent := expectation.objects - present:
                missing.append(Missing(check.name, expectation.owner, tuple(sorted(absent))))
                repairs.append(expectation.repair)
        # Objects on their way out are neither missing nor orphans: they are going.
        live = [obj for obj in found if not (obj.get("metadata") or {}).get("deletionTimestamp")]
        for obj, reason in check.orphaned(live):
            ref = ObjectRef.of(obj)
            orphans.setdefault(ref, Orphan(check.name, ref, reason))
    report = DriftReport(timezone.now(), tuple(missing), tuple(orphans[r] for r in sorted(orphans)))
    return report, repairs
