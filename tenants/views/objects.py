"""What the pages about a tenant's things (clusters, virtual machines) share.

A state badge, a provisioning timeline, the buttons of the actions an object offers, its
action log in sentences, the rows of a quota preview, why the create button is refused, and
the "it is gone" answer of a live panel whose object was deleted under an open page.

Presentation only: each app's selectors decide what is allowed or true; these word and
draw it the same way everywhere (templates in ``templates/components/``).
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils.cache import patch_vary_headers

from tenants.access import Action
from tenants.models import AuditEvent, Tenant
from tenants.scoping import DENIED_MESSAGES
from tenants.selectors import QuotaLine, QuotaPreview
from tenants.services import ALLOWED_WHILE_SUSPENDED
from tenants.views.base import TenantAccess, TenantView, htmx_target

# --- State badge ------------------------------------------------------------------------------


@dataclass(frozen=True)
class StateBadge:
    """A state as a coloured badge (``badge-<tone>`` in portal.css) that spins while busy.

    ``components/state_badge.html`` puts ``value`` in a ``data-<attribute>`` attribute, so
    pages and tests can tell states apart without reading the words.
    """

    label: str
    tone: str
    busy: bool
    value: str
    attribute: str = "state"


# --- Timeline ---------------------------------------------------------------------------------

#: How each step state reads ("stopped": its object failed, so the step waits for nothing).
STEP_STATE_LABELS: Mapping[str, str] = {
    "pending": "Pending",
    "active": "In progress",
    "done": "Done",
    "failed": "Failed",
    "stopped": "Stopped",
}


def short_duration(delta: datetime.timedelta) -> str:
    """``4 s``, ``2 min 5 s``, ``1 h 3 min``: how long a step took."""
    seconds = max(round(delta.total_seconds()), 0)
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s" if seconds else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


@dataclass(frozen=True)
class TimelineEntry:
    """One step of a vertical stepper (``components/timeline.html``)."""

    key: str
    label: str
    state: str  # pending, active, done, failed or stopped
    message: str = ""
    started_at: datetime.datetime | None = None
    finished_at: datetime.datetime | None = None

    @property
    def state_label(self) -> str:
        return STEP_STATE_LABELS.get(self.state, self.state.capitalize())

    @property
    def took(self) -> str:
        if self.started_at and self.finished_at:
            return short_duration(self.finished_at - self.started_at)
        return ""


# --- Actions ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ActionOffer:
    """A button on an object's page: enabled, or disabled with the reason in words."""

    key: str
    label: str
    icon: str
    url: str
    hint: str
    refusal: str = ""
    # Opens a dialog (GET asks, POST performs); otherwise a plain link (a download, a page).
    dialog: bool = True
    danger: bool = False

    @property
    def enabled(self) -> bool:
        return not self.refusal


def create_refusal(tenant: Tenant, access: TenantAccess) -> str:
    """Why the caller cannot create anything in ``tenant`` ("" when they can)."""
    if not access.can_operate:
        return DENIED_MESSAGES[Action.OPERATE]
    if not tenant.is_active:
        return f"{tenant.name} is {tenant.get_state_display().lower()}: nothing new can be created."
    return ""


def tenant_state_refusal(tenant: Tenant, action: str) -> str:
    """Why ``action`` on an object of ``tenant`` is refused by the tenant's state ("" when it
    is not): a suspended tenant may only give back (``ALLOWED_WHILE_SUSPENDED``)."""
    if tenant.is_active or action in ALLOWED_WHILE_SUSPENDED:
        return ""
    return (
        f"{tenant.name} is {tenant.get_state_display().lower()}: resources can only be given"
        " back (stopped, hibernated, deleted)."
    )


# --- Action log -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ActivityEntry:
    """One audited change to an object, as a sentence after the actor's name."""

    event: AuditEvent
    phrases: Mapping[str, str]
    #: Actions whose recorded changes are [before, after] pairs (other lists are just lists).
    change_pairs: frozenset[str]

    @property
    def phrase(self) -> str:
        return self.phrases.get(self.event.action, self.event.action.replace("_", " "))

    @property
    def actor(self) -> str:
        return self.event.actor_username or "system"

    @property
    def details(self) -> list[tuple[str, str]]:
        """What changed, readably: ``worker count: 2 → 3``, ``addons: cilium, portal-access``,
        ``ports: 22/TCP → 22/TCP, 80/TCP``."""
        pairs = self.event.action in self.change_pairs
        items = []
        for key, value in (self.event.changes or {}).items():
            if isinstance(value, list) and pairs:
                shown = " → ".join(_listed(side, empty="none") for side in value)
            else:
                shown = _listed(value, empty="")
            items.append((key.replace("_", " "), shown or "—"))
        return items


def _listed(value: Any, *, empty: str) -> str:
    """A recorded value as words: lists joined with commas (``empty`` for none)."""
    if isinstance(value, list):
        return ", ".join(map(str, value)) if value else empty
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def activity_entries(
    events: QuerySet[AuditEvent],
    limit: int,
    *,
    phrases: Mapping[str, str],
    change_pairs: frozenset[str] = frozenset(),
) -> list[ActivityEntry]:
    return [ActivityEntry(event, phrases, change_pairs) for event in events[:limit]]


# --- Quota preview ----------------------------------------------------------------------------


@dataclass(frozen=True)
class PreviewRow:
    """One quota resource of a preview: what is in use, what the request adds, the limit."""

    line: QuotaLine
    explanation: str

    def _percent(self, amount: int) -> int:
        if self.line.limit <= 0:
            return 100 if amount else 0
        return min(round(100 * amount / self.line.limit), 100)

    @property
    def used_percent(self) -> int:
        return self._percent(self.line.used)

    @property
    def requested_percent(self) -> int:
        """The request's share of the bar, drawn after the used share (never past 100%)."""
        return max(min(self._percent(self.line.used_after), 100) - self.used_percent, 0)

    @property
    def used_display(self) -> str:
        return self.line.display(self.line.used)

    @property
    def requested_display(self) -> str:
        return self.line.display(self.line.requested)

    @property
    def after_display(self) -> str:
        return self.line.display(self.line.used_after)

    @property
    def limit_display(self) -> str:
        return self.line.display(self.line.limit)

    @property
    def field_id(self) -> str:
        """The input to change when it does not fit ("" for form-wide refusals)."""
        return "" if self.line.field == "__all__" else f"id_{self.line.field}"


@dataclass(frozen=True)
class PreviewView:
    """A quota preview as ``components/quota_rows.html`` and ``quota_verdict.html`` draw it."""

    rows: list[PreviewRow]
    fits: bool


def preview_rows(
    preview: QuotaPreview, explain: Callable[[str], str], *, only_added: bool = False
) -> list[PreviewRow]:
    """Rows for ``preview``, each explained by ``explain(resource)``; ``only_added`` keeps
    the resources the request adds (a change to something that holds quota already)."""
    return [
        PreviewRow(line, explain(line.resource))
        for line in preview.lines
        if line.requested or not only_added
    ]


# --- A live panel whose object may go ---------------------------------------------------------


class LivePanelView(TenantView):
    """A detail page whose panel (the element ``live_panel``) reloads itself on live events.

    When the object was deleted under an open page, the panel's reload answers with
    ``gone_template`` (rendered with the tenant and the caller's access) instead of a 404
    that htmx would not swap; a page opened afresh is a plain 404.
    """

    live_panel: ClassVar[str]
    gone_template: ClassVar[str]

    def live_object(self) -> Any:
        """Look the object up, raising Http404 when it is not (or no longer) there."""
        raise NotImplementedError

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            self.live_object()
        except Http404:
            if htmx_target(request) != self.live_panel:
                raise
            response = TemplateResponse(
                request, self.gone_template, {"tenant": self.tenant, "access": self.access}
            )
            patch_vary_headers(response, ("HX-Request", "HX-Target"))
            return response
        return super().get(request, *args, **kwargs)
