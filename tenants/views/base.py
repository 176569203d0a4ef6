"""What every portal page shares: sign-in, tenant resolution, htmx partials, service errors.

Pages for tenant-owned things (members today; clusters and VMs later) subclass
``TenantView``: it resolves the tenant in the URL through ``tenants.scoping`` (404 outside
the caller's reach, 403 when their role does not allow ``required_action``) before any
handler runs, and puts the tenant and the caller's access into the template context.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from django import forms
from django.contrib.auth.mixins import LoginRequiredMixin
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import NON_FIELD_ERRORS, PermissionDenied, ValidationError
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseBase,
    HttpResponseRedirect,
    QueryDict,
)
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.utils.cache import patch_vary_headers
from django.utils.functional import cached_property
from django.views.generic import TemplateView
from django_htmx.http import HttpResponseClientRedirect

from tenants.access import Action, PlatformRole, TenantRole, is_operator, role_in, user_can
from tenants.forms import PlainConfirmationForm
from tenants.models import Tenant, User
from tenants.scoping import tenant_for_action

ServiceResult = TypeVar("ServiceResult")

# --- Requests ------------------------------------------------------------------------------


def current_user(request: HttpRequest) -> User:
    """The signed-in user of a view that already required sign-in."""
    user = request.user
    if not isinstance(user, User):  # pragma: no cover - guarded by SignedInMixin
        raise PermissionDenied("Sign in first.")
    return user


def htmx_target(request: HttpRequest) -> str | None:
    """The id of the element an htmx request will swap, or None for a normal request.

    Boosted requests and history restores want whole pages, so they count as normal.
    """
    details = getattr(request, "htmx", None)
    if not details or details.boosted or details.history_restore_request:
        return None
    target: str | None = details.target
    return target or ""


def is_htmx(request: HttpRequest) -> bool:
    return htmx_target(request) is not None


def redirect_after_post(request: HttpRequest, to: str) -> HttpResponse:
    """Post/redirect/get for both kinds of request.

    An htmx request would follow a plain redirect inside the XHR and swap the next page
    into a fragment; ``HX-Redirect`` makes the browser navigate instead.
    """
    if is_htmx(request):
        return HttpResponseClientRedirect(to)
    return HttpResponseRedirect(to)


# --- Service errors onto forms -------------------------------------------------------------


def apply_service_error(form: forms.BaseForm, error: ValidationError) -> None:
    """Put a service's ValidationError on the form: keyed errors on their fields,
    ``__all__`` and keys the form has no field for as non-field errors."""
    if not hasattr(error, "error_dict"):
        form.add_error(None, error)
        return
    for key, field_errors in error.error_dict.items():
        if key in form.fields:
            form.add_error(key, field_errors)
        elif key == NON_FIELD_ERRORS:
            form.add_error(None, field_errors)
        else:
            form.add_error(None, [f"{key.replace('_', ' ')}: {m}" for e in field_errors for m in e])


def call_service(
    form: forms.Form, service: Callable[..., ServiceResult], **arguments: Any
) -> ServiceResult | None:
    """Run a service; on ValidationError put the errors on ``form`` and return None."""
    try:
        return service(**arguments)
    except ValidationError as error:
        apply_service_error(form, error)
        return None


# --- Views ---------------------------------------------------------------------------------


def _toasts_html(request: HttpRequest) -> str:
    """Pending Django messages as an out-of-band swap into the page's toast region."""
    return render_to_string("components/toasts.html", {"oob": True}, request=request)


class SignedInMixin(LoginRequiredMixin):
    request: HttpRequest

    def handle_no_permission(self) -> HttpResponseRedirect:
        if self.request.user.is_authenticated:
            return super().handle_no_permission()
        details = getattr(self.request, "htmx", None)
        if details:
            # The session expired under an open page: send the whole page to the login
            # screen, coming back to where the user was.
            back_to = details.current_url_abs_path or self.request.get_full_path()
            login = redirect_to_login(back_to)
            return HttpResponseClientRedirect(login.url)  # type: ignore[return-value]
        return super().handle_no_permission()


class PortalView(SignedInMixin, TemplateView):
    """A signed-in page. An htmx request aimed at one of ``partial_templates`` (by target
    element id) gets only that fragment, rendered from the same context."""

    partial_templates: ClassVar[Mapping[str, str]] = {}

    def get_template_names(self) -> list[str]:
        target = htmx_target(self.request)
        if target is not None and target in self.partial_templates:
            return [self.partial_templates[target]]
        return super().get_template_names()

    def render_to_response(self, context: dict[str, Any], **response_kwargs: Any) -> HttpResponse:
        response = super().render_to_response(context, **response_kwargs)
        if self.partial_templates:
            # One URL, two bodies (page or fragment): caches must keep them apart, or the
            # back button can show a bare fragment.
            patch_vary_headers(response, ("HX-Request", "HX-Target"))
        if is_htmx(self.request) and isinstance(response, TemplateResponse):
            # A fragment has no toast region of its own: deliver messages out of band.
            response.add_post_render_callback(self._append_toasts)
        return response

    def _append_toasts(self, response: HttpResponseBase) -> None:
        assert isinstance(response, HttpResponse)
        response.content += _toasts_html(self.request).encode()


@dataclass(frozen=True)
class TenantAccess:
    """What the signed-in user may do in one tenant, worked out once per request."""

    membership_role: str | None
    platform_role: str
    can_operate: bool
    can_admin: bool

    @property
    def label(self) -> str:
        """The role to show in the page header."""
        if self.membership_role:
            return TenantRole(self.membership_role).label
        if self.platform_role:
            return f"{PlatformRole(self.platform_role).label} (platform)"
        return "Operator (platform)"  # a superuser without a platform role

    @classmethod
    def of(cls, user: User, tenant: Tenant) -> TenantAccess:
        return cls(
            membership_role=role_in(user, tenant),
            platform_role=user.platform_role,
            can_operate=user_can(user, tenant, Action.OPERATE),
            can_admin=user_can(user, tenant, Action.ADMIN),
        )


class TenantView(PortalView):
    """Base of every page under ``/t/<slug>/``.

    ``required_action`` is checked before the handler runs; mutations get their own view
    (and URL) with ``Action.OPERATE`` or ``Action.ADMIN``.
    """

    required_action: ClassVar[Action] = Action.VIEW
    tenant: Tenant

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if not request.user.is_authenticated:
            return self.handle_no_permission()
        self.tenant = tenant_for_action(request.user, kwargs["slug"], self.required_action)
        return super().dispatch(request, *args, **kwargs)

    @cached_property
    def access(self) -> TenantAccess:
        return TenantAccess.of(current_user(self.request), self.tenant)

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context.update(tenant=self.tenant, access=self.access)
        return context


class PlatformView(PortalView):
    """Operator console pages: operators and auditors read; only operators change."""

    operators_only: ClassVar[bool] = False

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if not request.user.is_authenticated:
            return self.handle_no_permission()
        user = current_user(request)
        if not user.sees_every_tenant:
            raise PermissionDenied("The operator console is for platform operators and auditors.")
        if self.operators_only and not is_operator(user):
            raise PermissionDenied("Auditors have read-only access to the operator console.")
        return super().dispatch(request, *args, **kwargs)


@dataclass(frozen=True)
class Confirmation:
    """The wording of a confirmation dialog."""

    title: str
    message: str
    button: str
    cancel_url: str
    danger: bool = True


class ConfirmActionView(PortalView):
    """GET asks (a dialog for htmx, a page otherwise); POST performs.

    Subclasses say what to ask (``confirmation``) and what to do (``perform``, which calls
    a service and returns where to go next). A service refusal shows in the dialog.
    """

    template_name = "components/confirm_page.html"
    partial_templates = {"modal-body": "components/confirm.html"}

    def confirmation(self) -> Confirmation:
        raise NotImplementedError

    def perform(self) -> str:
        """Do it (raising ValidationError to refuse) and return the URL to go to next."""
        raise NotImplementedError

    def submitted_data(self) -> QueryDict | None:
        """The posted fields, or None to build an unbound form for the question."""
        return self.request.POST if self.request.method == "POST" else None

    def get_form(self) -> forms.BaseForm:
        return PlainConfirmationForm(self.submitted_data())

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context.setdefault("form", self.get_form())
        context["confirmation"] = self.confirmation()
        return context

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        form = self.get_form()
        if form.is_valid():
            try:
                next_url = self.perform()
            except ValidationError as error:
                apply_service_error(form, error)
            else:
                return redirect_after_post(request, next_url)
        return self.render_to_response(self.get_context_data(form=form))
