"""Resolving "the tenant in this request" for views, viewsets and consumers alike.

Outside the caller's reach is 404 (a tenant they cannot see does not exist for them);
visible but not allowed is 403.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.core.exceptions import PermissionDenied
from django.http import Http404

from tenants.access import Action, user_can
from tenants.models import Tenant

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser

    from tenants.models import User

DENIED_MESSAGES = {
    Action.VIEW: "You cannot view this tenant.",
    Action.OPERATE: "Your role in this tenant is read-only.",
    Action.ADMIN: "Only tenant admins can do this.",
}


def visible_tenant(user: User | AnonymousUser, slug: str) -> Tenant:
    tenant = Tenant.objects.for_user(user, Action.VIEW).filter(slug=slug).first()
    if tenant is None:
        raise Http404("No such tenant.")
    return tenant


def require(user: User | AnonymousUser, tenant: Tenant, action: Action) -> None:
    if not user_can(user, tenant, action):
        raise PermissionDenied(DENIED_MESSAGES[action])


def tenant_for_action(user: User | AnonymousUser, slug: str, action: Action) -> Tenant:
    tenant = visible_tenant(user, slug)
    require(user, tenant, action)
    return tenant
