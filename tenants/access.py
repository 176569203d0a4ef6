"""Who may do what: the one place that turns roles into query filters and yes/no answers.

Tenant roles (per membership): admin ⊃ member ⊃ viewer.
Platform roles (per user): operator may do everything everywhere; auditor may view everything.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING

from django.db import models
from django.db.models import Q

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser

    from tenants.models import Tenant, User


class Action(StrEnum):
    VIEW = "view"  # read the tenant and everything in it
    OPERATE = "operate"  # create, change and delete clusters, VMs and the like
    ADMIN = "admin"  # members, invitations, tenant settings


class TenantRole(models.TextChoices):
    ADMIN = "admin", "Admin"
    MEMBER = "member", "Member"
    VIEWER = "viewer", "Viewer"


class PlatformRole(models.TextChoices):
    NONE = "", "None"
    OPERATOR = "operator", "Operator"
    AUDITOR = "auditor", "Auditor"


ROLES_ALLOWED: dict[Action, frozenset[str]] = {
    Action.VIEW: frozenset({TenantRole.ADMIN, TenantRole.MEMBER, TenantRole.VIEWER}),
    Action.OPERATE: frozenset({TenantRole.ADMIN, TenantRole.MEMBER}),
    Action.ADMIN: frozenset({TenantRole.ADMIN}),
}

NOTHING = Q(pk__in=[])


def tenant_filter_for(user: User | AnonymousUser, action: Action, *, tenant_path: str) -> Q:
    """A filter selecting the rows whose tenant ``user`` may act on with ``action``.

    ``tenant_path`` is the lookup prefix from the queried model to Tenant, ending in "__"
    ("" when querying Tenant itself).
    """
    if not user.is_authenticated or not user.is_active:
        return NOTHING
    if user.is_operator or (user.is_auditor and action == Action.VIEW):
        return Q()
    return Q(
        **{
            f"{tenant_path}memberships__user": user,
            f"{tenant_path}memberships__role__in": sorted(ROLES_ALLOWED[action]),
        }
    )


def role_in(user: User | AnonymousUser, tenant: Tenant) -> str | None:
    """The user's membership role in the tenant, or None."""
    if not user.is_authenticated:
        return None
    return tenant.memberships.filter(user=user).values_list("role", flat=True).first()


def user_can(user: User | AnonymousUser, tenant: Tenant, action: Action) -> bool:
    if not user.is_authenticated or not user.is_active:
        return False
    if user.is_operator or (user.is_auditor and action == Action.VIEW):
        return True
    return role_in(user, tenant) in ROLES_ALLOWED[action]


def is_platform_reader(user: User | AnonymousUser) -> bool:
    return bool(user.is_authenticated and user.is_active and user.sees_every_tenant)


def is_operator(user: User | AnonymousUser) -> bool:
    return bool(user.is_authenticated and user.is_active and user.is_operator)
