"""Template context every page needs: the tenants the user can switch between.

Pages under ``/t/<slug>/`` get their tenant from their view (``TenantView``); pages rendered
outside those views, the error pages, ask ``tenant_in_path`` instead.
"""

from __future__ import annotations

import re
from typing import Any

from django.http import HttpRequest

from tenants.access import Action, is_operator, is_platform_reader
from tenants.models import Tenant, User
from tenants.views.base import TenantAccess

#: A tenant's pages all live under /t/<slug>/ (the slug as Django's ``slug`` converter takes it).
TENANT_PATH = re.compile(r"^/t/(?P<slug>[-a-zA-Z0-9_]+)/")


def portal(request: HttpRequest) -> dict[str, Any]:
    user = request.user
    if not user.is_authenticated:
        return {}
    return {
        # Lazy: evaluated only by templates that render the switcher.
        "switchable_tenants": Tenant.objects.for_user(user, Action.VIEW).only(
            "slug", "name", "state"
        ),
        "user_is_operator": is_operator(user),
        "user_is_platform_reader": is_platform_reader(user),
    }


def tenant_in_path(request: HttpRequest) -> dict[str, Any]:
    """``tenant`` and ``access`` for a page under ``/t/<slug>/`` that no tenant view rendered
    (an error page), so the switcher and the tenant's menu stay; empty unless the user may
    view that tenant: another tenant's URL must look exactly like one that does not exist."""
    user = getattr(request, "user", None)
    found = TENANT_PATH.match(request.path_info)
    if not isinstance(user, User) or not user.is_authenticated or found is None:
        return {}
    tenant = Tenant.objects.for_user(user, Action.VIEW).filter(slug=found["slug"]).first()
    if tenant is None:
        return {}
    return {"tenant": tenant, "access": TenantAccess.of(user, tenant)}
