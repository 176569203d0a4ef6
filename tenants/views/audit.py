"""The audit log: who did what, when, to which object, from where.

Operators and auditors read every event; tenant admins read their tenants' events
(``AuditEvent.objects.for_user`` decides); everyone else gets 403. The page and its CSV
export share one filter form, so the export is exactly what the page shows.
"""

from __future__ import annotations

import csv
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied
from django.core.handlers.asgi import ASGIRequest
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponseBase, StreamingHttpResponse
from django.utils import timezone
from django.views import View

from tenants.access import Action, is_platform_reader
from tenants.forms import AuditFilterForm
from tenants.models import AuditEvent, Tenant, User
from tenants.views.base import PortalView, SignedInMixin, current_user

#: Events per page: the API's default, and the other sizes a person may choose.
AUDIT_PAGE_SIZE = 50
AUDIT_PAGE_SIZES = (25, 50, 100)
EXPORT_CHUNK = 2000
CSV_COLUMNS = [
    "occurred_at",
    "actor",
    "token",
    "tenant",
    "object_type",
    "object_id",
    "object",
    "action",
    "changes",
    "source_ip",
]


def audit_page_size(requested: str | None) -> int:
    """The page size asked for if the page offers it, else the default: never unbounded."""
    return next((size for size in AUDIT_PAGE_SIZES if str(size) == requested), AUDIT_PAGE_SIZE)


def may_read_audit(user: User | AnonymousUser) -> bool:
    """Platform staff, and admins of at least one tenant."""
    if not user.is_authenticated or not user.is_active:
        return False
    return is_platform_reader(user) or Tenant.objects.for_user(user, Action.ADMIN).exists()


class AuditAccessMixin(SignedInMixin):
    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if not request.user.is_authenticated:
            return self.handle_no_permission()
        if not may_read_audit(request.user):
            raise PermissionDenied("The audit log is for tenant admins and platform staff.")
        response: HttpResponseBase = super().dispatch(request, *args, **kwargs)
        return response

    def readable_events(self) -> QuerySet[AuditEvent]:
        return AuditEvent.objects.for_user(current_user(self.request))

    def filter_form(self) -> AuditFilterForm:
        user = current_user(self.request)
        readable = self.readable_events().order_by()
        tenants = Tenant.objects.for_user(
            user, Action.VIEW if is_platform_reader(user) else Action.ADMIN
        )
        form = AuditFilterForm(
            self.request.GET,
            tenant_slugs=list(tenants.order_by("slug").values_list("slug", flat=True)),
            object_types=sorted(readable.values_list("object_type", flat=True).distinct()),
            actions=sorted(readable.values_list("action", flat=True).distinct()),
        )
        form.is_valid()  # a bad filter shows its error; the valid ones still apply
        return form

    def filtered_events(self, form: AuditFilterForm) -> QuerySet[AuditEvent]:
        filters = form.active_filters
        events = self.readable_events().select_related("token")
        lookups = {
            "tenant": "tenant_slug",
            "actor": "actor_username__iexact",
            "object_type": "object_type",
            "action": "action",
            "since": "occurred_at__date__gte",
            "until": "occurred_at__date__lte",
        }
        return events.filter(
            **{lookup: filters[name] for name, lookup in lookups.items() if name in filters}
        )


class AuditLogView(AuditAccessMixin, PortalView):
    template_name = "audit/list.html"
    partial_templates = {"audit-results": "audit/_results.html"}

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        form = self.filter_form()
        per_page = audit_page_size(self.request.GET.get("per_page"))
        page = Paginator(self.filtered_events(form), per_page).get_page(
            self.request.GET.get("page")
        )
        context.update(
            filter_form=form,
            page=page,
            events=page.object_list,
            per_page=per_page,
            page_sizes=AUDIT_PAGE_SIZES,
        )
        return context


class _Echo:
    """A file-like object whose write returns the line, for streaming csv.writer output."""

    def write(self, value: str) -> str:
        return value


def _csv_safe(value: Any) -> str:
    """Neutralise spreadsheet formulas (CSV injection) in free-text cells."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in {"=", "+", "-", "@", "\t", "\r"} else text


def _csv_row(event: AuditEvent) -> list[str]:
    return [
        _csv_safe(value)
        for value in (
            event.occurred_at.isoformat(),
            event.actor_username or "system",
            event.token.prefix if event.token else "",
            event.tenant_slug,
            event.object_type,
            event.object_id,
            event.object_repr,
            event.action,
            json.dumps(event.changes, sort_keys=True) if event.changes else "",
            event.source_ip or "",
        )
    ]


def _csv_lines(events: QuerySet[AuditEvent]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(CSV_COLUMNS)
    for event in events.iterator(chunk_size=EXPORT_CHUNK):
        yield writer.writerow(_csv_row(event))


async def _csv_lines_async(events: QuerySet[AuditEvent]) -> AsyncIterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(CSV_COLUMNS)
    async for event in events.aiterator(chunk_size=EXPORT_CHUNK):
        yield writer.writerow(_csv_row(event))


class AuditExportView(AuditAccessMixin, View):
    """Streams the filtered log as CSV, row by row, whatever its size.

    Under ASGI (production) the rows come from an async iterator: Django would otherwise
    read a synchronous one completely into memory before sending the first byte.
    """

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> StreamingHttpResponse:
        events = self.filtered_events(self.filter_form())
        lines = _csv_lines_async(events) if isinstance(request, ASGIRequest) else _csv_lines(events)
        stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
        return StreamingHttpResponse(
            lines,
            content_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="audit-{stamp}.csv"'},
        )
