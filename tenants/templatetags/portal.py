"""Template helpers of the portal: form fields, icons, navigation, gauges, badges."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django import forms, template
from django.core.paginator import Paginator
from django.http import HttpRequest
from django.templatetags.static import static
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape, format_html
from django.utils.safestring import mark_safe
from django.utils.timesince import timesince

from tenants.access import TenantRole, is_platform_reader
from tenants.audit import EventChanges, object_type_label, readable_changes
from tenants.models import AuditEvent, QuotaResource
from tenants.selectors import QuotaUsage
from tenants.views.audit import may_read_audit
from tenants.views.base import TenantAccess
from tenants.views.extensions import tenant_nav_items

register = template.Library()

# The ring gauge is an SVG circle of this radius; its dash offset draws the used share.
GAUGE_RADIUS = 42
GAUGE_CIRCUMFERENCE = 2 * 3.14159265 * GAUGE_RADIUS

# Badge colour per status word; unknown words are neutral.
STATUS_TONES = {
    "active": "green",
    "accepted": "green",
    "ok": "green",
    "pending": "blue",
    "warning": "amber",
    "suspended": "amber",
    "critical": "red",
    "disabled": "red",
    "deleting": "red",
    "expired": "grey",
    "revoked": "grey",
}

SHORT_RESOURCE_LABELS: dict[str, str] = {
    QuotaResource.WORKER_NODES: "Workers",
    QuotaResource.VMS: "VMs",
    QuotaResource.LOAD_BALANCER_IPS: "LB IPs",
}


@register.inclusion_tag("components/field.html")
def field(bound_field: forms.BoundField, **options: Any) -> dict[str, Any]:
    """One labelled input with its help text and errors (ids wired by Django's
    ``aria-describedby``). Options: ``hide_label``, ``inline`` (label beside input)."""
    return {"field": bound_field, **options}


@register.inclusion_tag("components/form_errors.html")
def form_errors(form: forms.Form) -> dict[str, Any]:
    return {"form": form}


@register.simple_tag
def icon(name: str, extra_class: str = "") -> str:
    css_class = f"icon {extra_class}".strip()
    return format_html(
        '<svg class="{}" aria-hidden="true" focusable="false"><use href="{}#{}"></use></svg>',
        css_class,
        static("icons.svg"),
        name,
    )


@register.simple_tag(takes_context=True)
def tenant_nav(
    context: template.Context, tenant: Any, access: TenantAccess
) -> list[dict[str, Any]]:
    """The tenant's side-navigation entries the user may use, with the current one marked."""
    request: HttpRequest | None = context.get("request")
    match = request.resolver_match if request else None
    current = match.url_name if match else None
    allowed = {"view": True, "operate": access.can_operate, "admin": access.can_admin}
    return [
        {
            "label": item.label,
            "icon": item.icon,
            "url": reverse(item.url_name, args=[tenant.slug]),
            "active": current == item.url_name or current in item.also_active_for,
        }
        for item in tenant_nav_items()
        if allowed[item.action]
    ]


@register.simple_tag(takes_context=True)
def audit_visible(context: template.Context) -> bool:
    """Whether to offer the audit log link (cached per request: every page asks)."""
    request: HttpRequest | None = context.get("request")
    if request is None:
        return False
    cached: bool | None = getattr(request, "_portal_audit_visible", None)
    if cached is None:
        cached = may_read_audit(request.user)
        request._portal_audit_visible = cached  # type: ignore[attr-defined]
    return cached


@register.filter
def platform_reader(user: Any) -> bool:
    return is_platform_reader(user)


@register.filter
def gauge_offset(percent: int) -> str:
    """SVG stroke-dashoffset that leaves ``percent`` of the ring drawn."""
    return f"{GAUGE_CIRCUMFERENCE * (1 - max(0, min(percent, 100)) / 100):.2f}"


@register.simple_tag
def gauge_circumference() -> str:
    return f"{GAUGE_CIRCUMFERENCE:.2f}"


@register.filter
def tone(status: str) -> str:
    return STATUS_TONES.get(str(status).lower(), "grey")


@register.filter
def initials(name: str) -> str:
    parts = [part for part in str(name).replace(".", " ").replace("_", " ").split() if part]
    letters = "".join(part[0] for part in parts[:2]) or "?"
    return letters.upper()


@register.filter
def audit_changes(event: AuditEvent) -> EventChanges:
    """An audit event's changes as the audit table shows them (``tenants.audit``)."""
    return readable_changes(event.action, event.changes)


@register.filter
def audit_object_type(object_type: str) -> str:
    return object_type_label(object_type)


@register.filter
def breakable_address(address: str | None) -> str:
    """An IP address that may wrap after its colons (IPv6), never inside a group."""
    return mark_safe(escape(address or "—").replace(":", ":<wbr>"))  # noqa: S308  # escaped first


@register.filter
def startswith(value: Any, prefix: str) -> bool:
    return isinstance(value, str) and value.startswith(prefix)


@register.filter
def words(value: Any) -> str:
    """``change_role`` → ``change role``: identifiers as readable words."""
    return str(value or "").replace("_", " ")


@register.filter
def elided_pages(paginator: Paginator[Any], number: int) -> list[int | str]:
    return list(paginator.get_elided_page_range(number, on_each_side=2, on_ends=1))


@register.filter
def over_by(usage: QuotaUsage) -> str:
    return usage.display(usage.used - usage.limit)


@register.filter
def short_label(resource: str) -> str:
    """Column headings for the operator's usage table, where full labels do not fit."""
    return SHORT_RESOURCE_LABELS.get(resource, QuotaResource(resource).label)


@register.filter
def duration(value: timedelta | None) -> str:
    """A cool-off period in words: ``15 minutes``, ``1 hour 30 minutes``."""
    if value is None:
        return "a while"
    minutes = max(round(value.total_seconds() / 60), 1)
    hours, minutes = divmod(minutes, 60)
    parts = []
    if hours:
        parts.append(f"{hours} hour{'s' if hours != 1 else ''}")
    if minutes:
        parts.append(f"{minutes} minute{'s' if minutes != 1 else ''}")
    return " ".join(parts)


ROLE_TONES: dict[str, str] = {TenantRole.ADMIN: "violet", TenantRole.MEMBER: "blue"}


@register.simple_tag
def tenant_roles() -> list[tuple[str, str]]:
    return list(TenantRole.choices)


@register.filter
def role_tone(role: str) -> str:
    return ROLE_TONES.get(role, "grey")


# Audit actions as a sentence after the actor's name ("alice changed a role").
ACTIVITY_PHRASES: dict[str, str] = {
    "change_role": "changed a role",
    "add_member": "added a member",
    "remove_member": "removed a member",
    "invite": "created an invitation",
    "revoke_invitation": "revoked an invitation",
    "accept_invitation": "accepted an invitation",
    "suspend": "suspended the tenant",
    "resume": "resumed the tenant",
}
PAST_TENSE: dict[str, str] = {
    "create": "created",
    "update": "updated",
    "delete": "deleted",
    "revoke": "revoked",
    "enable": "enabled",
    "disable": "disabled",
    "scale": "scaled",
    "upgrade": "upgraded",
    "upgrade_workers": "upgraded the workers of",
    "hibernate": "hibernated",
    "wake": "woke",
    "retry": "retried",
    "protect": "protected",
    "unprotect": "unprotected",
    "fail": "failed",
    "delete_complete": "finished deleting",
    "download_kubeconfig": "downloaded a kubeconfig of",
    "start": "started",
    "stop": "stopped",
    "restart": "restarted",
    "expose": "exposed",
    "unexpose": "unexposed",
    "open_console": "opened the console of",
    "close_console": "closed the console of",
}
OBJECT_NAMES: dict[str, str] = {
    "apitoken": "an API token",
    "quota": "the quota",
    "user": "a user",
    "virtualmachine": "a virtual machine",
    "sshkey": "an SSH key",
    "vmservice": "a VM's public ports",
    "tenantnetwork": "the tenant's network",
}


@register.filter
def activity_phrase(event: AuditEvent) -> str:
    if event.action in ACTIVITY_PHRASES:
        return ACTIVITY_PHRASES[event.action]
    verb = PAST_TENSE.get(event.action, words(event.action))
    return f"{verb} {OBJECT_NAMES.get(event.object_type, 'a ' + words(event.object_type))}"


@register.filter
def ago(moment: datetime) -> str:
    """``3 minutes ago``, or ``just now`` for the last minute (timesince says "0 minutes")."""
    if timezone.now() - moment < timedelta(minutes=1):
        return "just now"
    return f"{timesince(moment)} ago"
