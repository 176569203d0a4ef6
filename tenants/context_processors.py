"""Template context every page needs: the tenants the user can switch between."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from tenants.access import Action, is_operator, is_platform_reader
from tenants.models import Tenant


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
