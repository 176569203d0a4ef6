"""What the pages about a tenant's things (clusters, virtual machines) share.

How states look (badges, list rows, the dashboard's counts), a provisioning timeline and a
progress bar, the buttons of the actions an object offers, its action log in sentences, the
rows of a quota preview, why the create button is refused, and the "it is gone" answer of a
live panel whose object was deleted under an open page.

Then the pages themselves, for any kind of object (``ObjectKind``): the list, the dashboard
card, the create form with its quota preview, the detail page and its dialogs. Each app says
which objects the caller may reach (its scoping selector), how they read and which service
acts; the templates are ``templates/layouts/object_*.html`` and ``templates/components/``.

Presentation only: each app's selectors decide what is allowed or true; these word and
draw it the same way everywhere.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import Count, QuerySet
from django.http import Http404, HttpRequest, HttpResponse, QueryDict
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django.utils.functional import cached_property

from butler_portal.lifecycle import STEP_ACTIVE
from tenants.access import Action
from tenants.audit import Actor
from tenants.forms import ObjectFilterForm, PreviewedForm, TypedNameForm
from tenants.models import AuditEvent, Tenant
from tenants.scoping import DENIED_MESSAGES
from tenants.selectors import QuotaLine, QuotaPreview, QuotaUsage
from tenants.services import suspension_refusal
from tenants.views.base import (
    ConfirmActionView,
    TenantAccess,
    TenantView,
    apply_service_error,
    htmx_target,
    redirect_after_post,
)

# --- States ------------------------------------------------------------------------------------


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
    #: What the detail page's status card shows beside the reason (a spinner while busy).
    icon: str = "info"


@dataclass(frozen=True)
class StateGroup:
    """States the dashboard card counts together, under ``label`` (``summary-<tone>``)."""

    label: str
    tone: str
    states: frozenset[str]


@dataclass(frozen=True)
class StateStyles:
    """How the states of one kind of object look.

    ``field`` is the model field holding the state; ``tones`` the badge colour of each state
    (grey otherwise); ``busy`` the states in which something visibly moves (the badge spins);
    ``settled`` the state that needs no explaining and ``resting`` the one it was put in on
    purpose (stopped, hibernated); ``groups`` what the dashboard card counts.
    """

    field: str
    tones: Mapping[str, str]
    busy: frozenset[str]
    settled: str
    resting: str
    groups: tuple[StateGroup, ...]

    def tally(self, objects: QuerySet[Any]) -> tuple[int, list[tuple[StateGroup, int]]]:
        """How many ``objects`` there are, and how many in each group (one query)."""
        by_state = dict(
            objects.order_by()
            .values_list(self.field)
            .annotate(count=Count("id"))
            .values_list(self.field, "count")
        )
        groups = [(group, sum(by_state.get(s, 0) for s in group.states)) for group in self.groups]
        return sum(by_state.values()), groups

    def badge(self, value: str, label: str) -> StateBadge:
        tone = self.tones.get(value, "grey")
        if value == self.settled:
            icon = "check-circle"
        elif tone in {"red", "amber"}:
            icon = "alert"
        elif value == self.resting:
            icon = "pause"
        else:
            icon = "info"
        return StateBadge(
            label=label,
            tone=tone,
            busy=value in self.busy,
            value=value,
            attribute=self.field,
            icon=icon,
        )

    def unsettled(self, value: str, reason: str) -> str:
        """``reason``, unless the state is settled (a list row does not explain "Ready")."""
        return "" if value == self.settled else reason


@dataclass(frozen=True)
class ObjectRow:
    """One object of a list or of the dashboard card, with its badge and why it is not
    settled ("" when it is, or when nothing was said)."""

    object: Any
    badge: StateBadge
    reason: str = ""


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
class ProgressBar:
    """A progress bar with its words (``components/progress.html``): ``now`` of ``max`` for
    assistive technology, named by ``label``; ``percent`` wide, with ``text`` beside it."""

    label: str
    now: str
    max: int
    percent: str
    text: str


@dataclass(frozen=True)
class TimelineEntry:
    """One step of a vertical stepper (``components/timeline.html``)."""

    key: str
    label: str
    state: str  # pending, active, done, failed or stopped
    message: str = ""
    raw: str = ""  # what the controller said, behind a "Details" disclosure
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


class TimelineStep(Protocol):
    """A step as the apps record it (a row, or worked out from the facts)."""

    @property
    def key(self) -> str: ...
    @property
    def label(self) -> str: ...
    @property
    def state(self) -> str: ...
    @property
    def message(self) -> str: ...


def timeline_of(steps: Iterable[TimelineStep], *, failed: bool) -> list[TimelineEntry]:
    """The timeline of ``steps``. An object that failed waits for nothing: its steps in
    progress show as stopped, not spinning."""
    return [
        TimelineEntry(
            key=step.key,
            label=step.label,
            state="stopped" if failed and step.state == STEP_ACTIVE else step.state,
            message=step.message,
            raw=getattr(step, "raw", ""),
            # Only steps kept as rows record when they ran.
            started_at=getattr(step, "started_at", None),
            finished_at=getattr(step, "finished_at", None),
        )
        for step in steps
    ]


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


@dataclass(frozen=True)
class OfferWording:
    """How an action reads wherever it is offered; ``offer`` words it for one object."""

    label: str
    icon: str
    hint: str = ""
    dialog: bool = True
    danger: bool = False

    def offer(self, key: str, url: str, *, hint: str = "", refusal: str = "") -> ActionOffer:
        """The button for one object; ``hint`` replaces the usual one when it says more."""
        return ActionOffer(
            key=key,
            label=self.label,
            icon=self.icon,
            url=url,
            hint=hint or self.hint,
            refusal=refusal,
            dialog=self.dialog,
            danger=self.danger,
        )


def create_refusal(tenant: Tenant, access: TenantAccess) -> str:
    """Why the caller cannot create anything in ``tenant`` ("" when they can)."""
    if not access.can_operate:
        return DENIED_MESSAGES[Action.OPERATE]
    if not tenant.is_active:
        return f"{tenant.name} is {tenant.get_state_display().lower()}: nothing new can be created."
    return ""


def tenant_state_refusal(tenant: Tenant, action: str) -> str:
    """Why ``action`` on an object of ``tenant`` is refused by the tenant's state ("" when it
    is not), as the pages say it (``suspension_refusal`` is the rule)."""
    refusal = suspension_refusal(tenant, action)
    return f"{tenant.name} {refusal}" if refusal else ""


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


# --- The pages of one kind of object ----------------------------------------------------------


@dataclass(frozen=True)
class ObjectKind:
    """A kind of tenant object as its pages name it (templates get it as ``kind``).

    Its URL names and the ids of its live frames follow one pattern, ``<prefix>-<what>``
    (``named``): ``cluster-list``, ``cluster-detail``, ``cluster-results``, ``vm-panel``...
    The live channel says ``<prefix>.changed`` when one changes (``portal:vm.changed``).
    """

    prefix: str  # "cluster", "vm"
    noun: str  # "cluster", "virtual machine"
    plural: str  # "clusters", "virtual machines"
    icon: str
    states: StateStyles
    #: How a new one comes to life, in words: "watch it come up", "watch it boot".
    coming_up: str = "come up"

    def named(self, what: str) -> str:
        return f"{self.prefix}-{what}"

    @property
    def badge_id(self) -> str:
        """The page header's badge, which a panel reload replaces out of band."""
        return self.named(self.states.field)


class NamedObject(Protocol):
    """A tenant's object as the shared pages use it (a cluster, a VM)."""

    pk: Any
    # A model's field is not yet ``str`` to the type checker where a view class names it.
    name: Any


ModelT = TypeVar("ModelT", bound=NamedObject)


class ObjectKindView(TenantView):
    """A page about the tenant's objects of one ``kind``."""

    kind: ClassVar[ObjectKind]

    def objects(self) -> QuerySet[Any]:
        """The tenant's objects of this kind that the caller may act on with
        ``required_action`` (the app's scoping selector)."""
        raise NotImplementedError

    def rows(self, objects: Iterable[Any]) -> list[ObjectRow]:
        """``objects`` as the rows of a list (or of the dashboard card)."""
        raise NotImplementedError

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["kind"] = self.kind
        return context


class ObjectListView(ObjectKindView):
    """``/t/<slug>/<kind>/``: the table (searched and filtered on the server, paginated) and
    the quota left for new objects, each a frame reloading itself on its own event."""

    filter_form: ClassVar[type[ObjectFilterForm]]
    per_page: ClassVar[int] = 25

    def capacity(self) -> list[QuotaUsage]:
        """The quota a new object draws on."""
        raise NotImplementedError

    def list_params(self) -> QueryDict:
        """The search, filter and page to show."""
        return self.request.GET

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        target = htmx_target(self.request)
        if target != self.kind.named("results"):
            context.update(
                capacity=self.capacity(),
                create_refusal=create_refusal(self.tenant, self.access),
            )
        if target != self.kind.named("capacity"):
            context.update(self.results())
        return context

    def results(self) -> dict[str, Any]:
        """One page of the objects, as the list's parameters narrow them."""
        params = self.list_params()
        filters = self.filter_form(params)
        objects = filters.narrow(self.objects())
        page = Paginator(objects.order_by("name", "id"), self.per_page).get_page(params.get("page"))
        return {
            "filter_form": filters,
            "page": page,
            "rows": self.rows(page.object_list),
            "filtered": filters.narrows,
        }


class ObjectSummaryView(ObjectKindView):
    """The kind's card on the tenant dashboard (a fragment it loads and reloads live): counts
    by group of states, and the latest changes."""

    recent_rows: ClassVar[int] = 5

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        objects = self.objects()
        total, counts = self.kind.states.tally(objects)
        recent = objects.order_by("-updated_at", "-id")[: self.recent_rows]
        context.update(
            total=total,
            counts=counts,
            recent=self.rows(recent),
            create_refusal=create_refusal(self.tenant, self.access),
        )
        return context


#: The frame of a create form's quota preview.
QUOTA_PREVIEW = "quota-preview"


class ObjectCreateView(ObjectKindView, Generic[ModelT]):
    """``/t/<slug>/<kind>/new/``: the form, its live quota preview (GET aimed at
    ``#quota-preview``, with the form's preview inputs) and the request itself (POST).

    GET requests aimed at ``refreshed_frames`` carry the form's values, which come back as
    typed; the others start from the catalog's defaults.
    """

    required_action = Action.OPERATE
    refreshed_frames: ClassVar[frozenset[str]] = frozenset({QUOTA_PREVIEW})

    def make_form(self, data: QueryDict | None) -> PreviewedForm[Any]:
        raise NotImplementedError

    def catalog_ready(self) -> bool:
        """Whether the catalog offers everything a request needs."""
        raise NotImplementedError

    def preview(self, spec: Any) -> PreviewView:
        """The quota preview of ``spec`` in this tenant."""
        raise NotImplementedError

    def create(self, actor: Actor, spec: Any) -> ModelT:
        """Call the app's create service (its refusals are ValidationErrors by field)."""
        raise NotImplementedError

    def created_message(self, created: ModelT) -> str:
        return f"{self.kind.noun.capitalize()} {created.name} was requested."

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        if "form" not in context:
            refreshing = htmx_target(self.request) in self.refreshed_frames
            context["form"] = self.make_form(self.request.GET if refreshing else None)
        form: PreviewedForm[Any] = context["form"]
        spec = form.preview_spec()
        context.update(
            preview=self.preview(spec) if spec else None,
            invalid_quota_inputs=form.invalid_quota_inputs,
            catalog_ready=self.catalog_ready(),
        )
        return context

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        form = self.make_form(request.POST)
        if form.is_valid():
            try:
                created = self.create(Actor.from_request(request), form.spec())
            except ValidationError as error:
                apply_service_error(form, error)
            else:
                messages.success(request, self.created_message(created))
                url = reverse(self.kind.named("detail"), args=[self.tenant.slug, created.pk])
                return redirect_after_post(request, url)
        # Everything typed comes back, with each refusal on the field to change.
        return self.render_to_response(self.get_context_data(form=form))


class ObjectView(ObjectKindView, Generic[ModelT]):
    """A page about one object of the tenant in the URL, which templates get as ``object``
    and by its kind's prefix (``cluster``, ``vm``).

    It is looked up among those the caller may act on with ``required_action``
    (``objects``): another tenant's object is a 404 like a missing one.
    """

    @cached_property
    def object(self) -> ModelT:
        found: ModelT = get_object_or_404(self.objects(), pk=self.kwargs["pk"])
        return found

    def detail_url(self) -> str:
        return reverse(self.kind.named("detail"), args=[self.tenant.slug, self.kwargs["pk"]])

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context.update({"object": self.object, self.kind.prefix: self.object})
        return context


class ObjectDetailView(ObjectView[ModelT], LivePanelView):
    """``/t/<slug>/<kind>/<pk>/`` (``layouts/object_detail.html``): the panel reloads on the
    object's live events, and says so when the object is gone."""

    def live_object(self) -> ModelT:
        return self.object


class ObjectActionView(ObjectView[ModelT], ConfirmActionView):
    """A dialog acting on one object, for the tenant's members and admins."""

    required_action = Action.OPERATE

    @property
    def actor(self) -> Actor:
        return Actor.from_request(self.request)


class ObjectDeleteView(ObjectActionView[ModelT]):
    """The deletion of one object, confirmed by typing its name."""

    @cached_property
    def form(self) -> TypedNameForm:
        return TypedNameForm(self.submitted_data(), name=self.object.name)

    def get_form(self) -> TypedNameForm:
        return self.form

    def delete(self, confirm_name: str) -> bool:
        """Call the app's delete service; True when the object is gone already."""
        raise NotImplementedError

    def perform(self) -> str:
        said = f"{self.kind.noun.capitalize()} {self.object.name}"
        if self.delete(self.form.cleaned_data["confirm_name"]):
            messages.success(self.request, f"{said} was deleted.")
            return reverse(self.kind.named("list"), args=[self.tenant.slug])
        messages.success(self.request, f"{said} is being deleted.")
        return self.detail_url()
