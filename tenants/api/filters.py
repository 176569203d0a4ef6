"""Query-string filters of the API lists (django-filter).

They narrow a queryset that is already scoped to the caller (``for_user``); they never widen
it, so filtering by a tenant the caller cannot see simply returns nothing.
"""

from __future__ import annotations

import django_filters

from tenants.access import PlatformRole, TenantRole
from tenants.models import AuditEvent, Invitation, Membership, Tenant, User


def tenant_slug_filter(field_name: str = "tenant__slug") -> django_filters.CharFilter:
    return django_filters.CharFilter(field_name=field_name, help_text="Tenant slug.")


class TenantFilterSet(django_filters.FilterSet):  # type: ignore[misc]  # django-filter is untyped
    state = django_filters.ChoiceFilter(choices=Tenant.State.choices)

    class Meta:
        model = Tenant
        fields = ["state"]


class MembershipFilterSet(django_filters.FilterSet):  # type: ignore[misc]
    tenant = tenant_slug_filter()
    user = django_filters.CharFilter(field_name="user__username", help_text="Username.")
    role = django_filters.ChoiceFilter(choices=TenantRole.choices)

    class Meta:
        model = Membership
        fields = ["tenant", "user", "role"]


class InvitationFilterSet(django_filters.FilterSet):  # type: ignore[misc]
    tenant = tenant_slug_filter()
    role = django_filters.ChoiceFilter(choices=TenantRole.choices)

    class Meta:
        model = Invitation
        fields = ["tenant", "role"]


class AuditEventFilterSet(django_filters.FilterSet):  # type: ignore[misc]
    tenant = tenant_slug_filter("tenant_slug")
    actor = django_filters.CharFilter(field_name="actor_username", help_text="Username.")
    token = django_filters.CharFilter(field_name="token__prefix", help_text="API token prefix.")
    object_type = django_filters.CharFilter(help_text='e.g. "tenant", "membership", "quota".')
    object_id = django_filters.CharFilter()
    action = django_filters.CharFilter(help_text='e.g. "create", "update", "delete", "suspend".')
    since = django_filters.IsoDateTimeFilter(
        field_name="occurred_at", lookup_expr="gte", help_text="At or after this instant."
    )
    until = django_filters.IsoDateTimeFilter(
        field_name="occurred_at", lookup_expr="lt", help_text="Strictly before this instant."
    )

    class Meta:
        model = AuditEvent
        fields = ["tenant", "actor", "token", "object_type", "object_id", "action"]


class UserFilterSet(django_filters.FilterSet):  # type: ignore[misc]
    username = django_filters.CharFilter(lookup_expr="icontains", help_text="Part of the username.")
    platform_role = django_filters.ChoiceFilter(
        choices=[(value, label) for value, label in PlatformRole.choices if value]
    )
    is_active = django_filters.BooleanFilter()
    tenant = django_filters.CharFilter(
        field_name="memberships__tenant__slug", help_text="Members of this tenant (slug)."
    )

    class Meta:
        model = User
        fields = ["username", "platform_role", "is_active", "tenant"]
