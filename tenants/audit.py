"""Who is acting, and the record of what they did.

Every service takes an ``Actor``: the user, the API token they used (if any) and the
address the request came from, so the audit trail names the real actor whichever door
(browser, API, admin, task) the change came through.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

from django.apps import apps
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


# --- Reading the record -------------------------------------------------------------------

#: Actions that record what changed as [before, after] pairs. Every other action records the
#: values themselves (a new thing's fields, a report), so a list of two there is just a list.
CHANGE_PAIR_ACTIONS = frozenset(
    {
        "update",
        "change_role",
        "suspend",
        "resume",
        "enable",
        "disable",
        "scale",
        "upgrade",
        "upgrade_workers",
        "hibernate",
        "wake",
        "protect",
        "unprotect",
        "start",
        "stop",
        "expose",
        "unexpose",
    }
)

#: How much of a value the audit table shows before the rest folds into the event's details.
SHORT_VALUE_CHARS = 60
SHORT_LIST_ITEMS = 4
SHOWN_FIELDS = 3

#: Words of field names that read better spelt as people write them.
_FIELD_WORDS = {
    "addons": "add-ons",
    "api": "API",
    "cidr": "CIDR",
    "gib": "GiB",
    "ip": "IP",
    "ips": "IPs",
    "mib": "MiB",
    "ssh": "SSH",
    "vm": "VM",
    "vms": "VMs",
}


@dataclass(frozen=True)
class Change:
    """One field of an audit event, as a page shows it.

    ``before`` is None when the event records a value rather than a change. Lists that
    changed (and lists a new thing was created with) also say what was added and removed.
    """

    field: str
    after: str
    before: str | None = None
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    is_list: bool = False

    @property
    def is_pair(self) -> bool:
        return self.before is not None and not self.is_list

    @property
    def short_before(self) -> str:
        return _short(self.before or "")

    @property
    def short_after(self) -> str:
        return _short(self.after)

    @property
    def short_added(self) -> str:
        return _short_list(self.added)

    @property
    def short_removed(self) -> str:
        return _short_list(self.removed)

    @property
    def shortened(self) -> bool:
        """Whether the one-line form leaves something out (the details show all of it)."""
        if self.is_list:
            return self.short_added != ", ".join(self.added) or self.short_removed != ", ".join(
                self.removed
            )
        return self.short_after != self.after or self.short_before != (self.before or "")


@dataclass(frozen=True)
class EventChanges:
    """Every field an event recorded, in one-line forms. A narrow table shows the first few
    (``shown_count``), a wide one all of them; the event's details show every value in full
    when the table leaves something out."""

    items: list[Change]
    shown_count: int = SHOWN_FIELDS

    @property
    def hidden_count(self) -> int:
        """Fields a narrow table leaves for the details."""
        return max(len(self.items) - self.shown_count, 0)

    @property
    def shortened(self) -> bool:
        """Whether a one-line form leaves part of a value out."""
        return any(change.shortened for change in self.items)

    @property
    def folded(self) -> bool:
        """Whether a narrow table leaves something out."""
        return self.hidden_count > 0 or self.shortened


def field_label(key: str) -> str:
    """``worker_disk_gib`` → ``worker disk GiB``."""
    return " ".join(_FIELD_WORDS.get(word, word) for word in key.replace(" ", "_").split("_"))


@cache
def _model_names() -> dict[str, str]:
    return {
        model._meta.model_name or "": str(model._meta.verbose_name) for model in apps.get_models()
    }


def object_type_label(object_type: str) -> str:
    """``virtualmachine`` → ``virtual machine``, ``sshkey`` → ``SSH key``: the model's own name
    when there is one (events outlive models: others are read as field names)."""
    return field_label(_model_names().get(object_type, object_type))


def readable_changes(action: str, changes: dict[str, Any] | None) -> EventChanges:
    """An event's recorded changes, field by field in alphabetical order."""
    pairs = action in CHANGE_PAIR_ACTIONS
    readable = []
    for key in sorted(changes or {}):
        value = (changes or {})[key]
        label = field_label(key)
        if pairs and isinstance(value, list) and len(value) == 2:
            before, after = value
            if isinstance(before, list) and isinstance(after, list):
                readable.append(_list_change(label, after, before))
            else:
                readable.append(Change(label, after=_text(after), before=_text(before)))
        elif isinstance(value, list) and action == "create":
            readable.append(_list_change(label, value))
        else:
            readable.append(Change(label, after=_text(value)))
    return EventChanges(readable)


def _list_change(label: str, after: list[Any], before: list[Any] | None = None) -> Change:
    """A list that changed, or (no ``before``) the list a new thing was created with."""
    old, new = [_text(item) for item in before or []], [_text(item) for item in after]
    return Change(
        label,
        after=_text(after),
        before=None if before is None else _text(before),
        added=tuple(item for item in new if item not in old),
        removed=tuple(item for item in old if item not in new),
        is_list=True,
    )


def _text(value: Any) -> str:
    """A recorded value in words: yes/no, lists with commas, mappings as ``key value``."""
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(_text(item) for item in value) if value else "none"
    if isinstance(value, dict):
        return ", ".join(f"{field_label(str(key))} {_text(item)}" for key, item in value.items())
    return str(value)


def _short(text: str) -> str:
    if len(text) <= SHORT_VALUE_CHARS:
        return text
    return text[: SHORT_VALUE_CHARS - 1].rstrip() + "…"


def _short_list(items: tuple[str, ...]) -> str:
    shown = ", ".join(_short(item) for item in items[:SHORT_LIST_ITEMS])
    hidden = len(items) - SHORT_LIST_ITEMS
    return f"{shown} and {hidden} more" if hidden > 0 else shown
