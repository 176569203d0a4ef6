"""Who is acting, and the record of what they did.

Every service takes an ``Actor``: the user, the API token they used (if any) and the
address the request came from, so the audit trail names the real actor whichever door
(browser, API, admin, task) the change came through.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.db import models
from django.forms.models import model_to_dict

from tenants.models import ApiToken, AuditEvent, Tenant, User

if TYPE_CHECKING:
    from django.http import HttpRequest


@dataclass(frozen=True)
class Actor:
    user: User | None
    token: ApiToken | None = None
    source_ip: str | None = None

    @classmethod
    def system(cls) -> Actor:
        """Background work with no human behind it (reconcilers, watchers)."""
        return cls(user=None)

    @classmethod
    def from_request(cls, request: HttpRequest) -> Actor:
        user = request.user if request.user.is_authenticated else None
        token = getattr(request, "auth", None)
        return cls(
            user=user if isinstance(user, User) else None,
            token=token if isinstance(token, ApiToken) else None,
            source_ip=request.META.get("REMOTE_ADDR") or None,
        )


def audit_record(
    *,
    actor: Actor,
    action: str,
    tenant: Tenant | None,
    target: models.Model | None = None,
    object_type: str | None = None,
    object_repr: str | None = None,
    changes: dict[str, Any] | None = None,
) -> AuditEvent:
    """Write one audit event. Call it inside the service's transaction."""
    if target is not None:
        object_type = object_type or target._meta.model_name or ""
        object_repr = object_repr or str(target)
    return AuditEvent.objects.create(
        actor=actor.user,
        actor_username=actor.user.get_username() if actor.user else "",
        token=actor.token,
        tenant=tenant,
        tenant_slug=tenant.slug if tenant else "",
        object_type=object_type or "",
        object_id=str(target.pk) if target is not None else "",
        object_repr=(object_repr or "")[:200],
        action=action,
        changes=changes or {},
        source_ip=actor.source_ip,
    )


def diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """The fields that changed, as {field: [old, new]}."""
    return {
        key: [before.get(key), value] for key, value in after.items() if before.get(key) != value
    }


def audited_save(*, actor: Actor, row: models.Model, fields: Sequence[str]) -> None:
    """Validate and save a platform row (a catalog entry: no tenant); audit what changed.

    A new row is audited as "create" with its values, a changed one as "update" with
    [old, new] of each changed field among ``fields``; saving with no change audits nothing.
    Call it inside the service's transaction.
    """
    stored = type(row)._default_manager.filter(pk=row.pk).first() if row.pk else None
    before = model_to_dict(stored, fields=fields) if stored else {}
    row.full_clean()
    row.save()
    changes = diff(before, model_to_dict(row, fields=fields))
    if changes:
        audit_record(
            actor=actor,
            action="update" if before else "create",
            tenant=None,
            target=row,
            changes={key: value if before else value[1] for key, value in changes.items()},
        )
