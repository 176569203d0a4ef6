"""The portal's own error pages: 403, 404, 500 and the expired form (CSRF), in every mode.

With DEBUG on (the embedded mode) Django answers a 404 with its technical page, which lists
every URL pattern and names the view that refused: ``ErrorPagesMiddleware`` renders the
portal's page instead, for a missing page, a deleted object and another tenant's URL alike.
Only unexpected exceptions (500) keep Django's traceback page under DEBUG, for development.

Every page keeps the person's tenant context where they have one: under ``/t/<slug>/`` of a
tenant they may view, the switcher names it and its menu stays (``tenant_in_path``). An htmx
request gets one plain sentence instead of a page (``portal.js`` shows it as a toast):
a fragment target is no place for a whole page.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase
from django.middleware.csrf import REASON_NO_CSRF_COOKIE
from django.shortcuts import render
from django.template import loader
from django.utils.deprecation import MiddlewareMixin
from django.utils.log import log_response

from tenants.context_processors import tenant_in_path
from tenants.views.base import is_htmx

logger = logging.getLogger(__name__)

NOT_FOUND = "This page does not exist: what it showed may have been deleted."
FORBIDDEN = "Your account does not have access to this."
SERVER_ERROR = "Something went wrong on our side. Please try again in a moment."
FORM_EXPIRED = "This form has expired. Reload the page and try again."


def error_response(
    request: HttpRequest,
    status: int,
    template: str,
    sentence: str,
    context: dict[str, Any] | None = None,
) -> HttpResponse:
    """The error as a page (with the tenant context), or as ``sentence`` for htmx."""
    if is_htmx(request):
        return HttpResponse(sentence, status=status, content_type="text/plain; charset=utf-8")
    return render(request, template, {**tenant_in_path(request), **(context or {})}, status=status)


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """``handler404``; the exception's message is never shown (it names models and views)."""
    return error_response(request, 404, "404.html", NOT_FOUND)


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """``handler403``: the refusal's own words (``DENIED_MESSAGES``) when it has some."""
    reason = str(exception or "") or FORBIDDEN
    return error_response(request, 403, "403.html", reason, {"exception": reason})


def server_error(request: HttpRequest) -> HttpResponse:
    """``handler500``. Whatever broke may break this page too (the database, a template):
    then the plain page, rendered without the request, as Django's own handler does."""
    try:
        return error_response(request, 500, "500.html", SERVER_ERROR)
    except Exception:
        logger.exception("the error page failed as well; serving the plain one")
        return HttpResponse(loader.get_template("500.html").render(), status=500)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """``CSRF_FAILURE_VIEW``: a form posted without its token, or with a stale one."""
    context = {"no_cookie": reason == REASON_NO_CSRF_COOKIE}
    return error_response(request, 403, "403_csrf.html", FORM_EXPIRED, context)


class ErrorPagesMiddleware(MiddlewareMixin):
    """The portal's 404 and 403 pages whatever DEBUG says.

    A view's ``Http404`` or ``PermissionDenied`` is answered here, before Django's handler
    would pick its technical page; a URL that matches no route never reaches a view, so its
    technical 404 is replaced on the way out. Sits after the session, authentication and
    htmx middleware: the page needs the user and whether htmx asked.
    """

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, Http404):
            response = page_not_found(request, exception)
            log_response("Not Found: %s", request.path, response=response, request=request)
            return response
        if isinstance(exception, PermissionDenied):
            response = permission_denied(request, exception)
            log_response(
                "Forbidden (Permission denied): %s",
                request.path,
                response=response,
                request=request,
                exception=exception,
            )
            return response
        return None

    def process_response(
        self, request: HttpRequest, response: HttpResponseBase
    ) -> HttpResponseBase:
        matched_no_route = getattr(request, "resolver_match", None) is None
        if settings.DEBUG and response.status_code == 404 and matched_no_route:
            return page_not_found(request)
        return response
