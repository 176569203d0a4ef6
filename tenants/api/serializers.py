"""API shapes: validation of the request's form and rendering of responses, nothing more.

Business rules (who may, last admin, quota below usage, token expiry limits) live in
``tenants.services``; the viewsets pass validated data to them. Model serializers here never
save: ``ServiceModelSerializer`` refuses, so a forgotten ``perform_create`` fails loudly
instead of writing around the services and the audit trail.
"""

from __future__ import annotations

from typing import Any, ClassVar

from django.core.exceptions import NON_FIELD_ERRORS
from django.db import models
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.settings import api_settings

from tenants.access import PlatformRole, TenantRole
from tenants.models import (
    ApiToken,
    AuditEvent,
    Invitation,
    Membership,
    Quota,
    QuotaResource,
    Tenant,
    User,
)
from tenants.selectors import QuotaPreview, QuotaUsage, quota_usage, quota_usage_for_tenants

#: Status words of invitations and tokens (named enums in the schema: ENUM_NAME_OVERRIDES).
INVITATION_STATUSES = ["pending", "accepted", "revoked", "expired"]
API_TOKEN_STATUSES = ["active", "expired", "revoked"]

# The largest value a PositiveIntegerField holds on every supported database.
MAX_QUOTA_AMOUNT = 2_147_483_647


class ServiceModelSerializer(serializers.ModelSerializer[Any]):
    def create(self, validated_data: Any) -> Any:
        raise NotImplementedError("API writes go through tenants.services (perform_create).")

    def update(self, instance: Any, validated_data: Any) -> Any:
        raise NotImplementedError("API writes go through tenants.services (perform_update).")


class TenantSlugField(serializers.SlugField):
    """A tenant named by its slug.

    Only the shape is checked here: the viewset resolves the slug through
    ``tenants.scoping``, so a tenant the caller cannot see is a 404, never a telling 400.
    """

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("help_text", "Slug of the tenant this belongs to.")
        super().__init__(max_length=40, **kwargs)

    def to_representation(self, value: Any) -> str:
        tenant: Tenant = value
        return tenant.slug


def username_field(**kwargs: Any) -> serializers.SlugRelatedField[User]:
    return serializers.SlugRelatedField(slug_field="username", read_only=True, **kwargs)


@extend_schema_field(OpenApiTypes.STR)
class ContextValueField(serializers.Field[Any, Any, str, Any]):
    """A read-only value the view hands over in the serializer context.

    For one-time secrets: they exist only in the response that creates them, never on a model.
    """

    def __init__(self, key: str, **kwargs: Any) -> None:
        self.key = key
        super().__init__(read_only=True, source="*", **kwargs)

    def to_representation(self, value: Any) -> str:
        return str(self.context[self.key])


# --- Quotas -------------------------------------------------------------------------------


class QuotaUsageSerializer(serializers.Serializer[Any]):
    resource = serializers.ChoiceField(choices=QuotaResource.choices)
    name = serializers.CharField(source="label", help_text='For people, e.g. "Worker nodes".')
    limit = serializers.IntegerField()
    used = serializers.IntegerField()
    available = serializers.IntegerField(help_text="What is left: limit minus used, never below 0.")
    percent = serializers.IntegerField(help_text="Share of the limit in use, 0–100.")
    over_limit = serializers.BooleanField(
        help_text="Usage exceeds the limit (after a forced decrease)."
    )


class QuotaSerializer(serializers.Serializer[Quota]):
    """A tenant's quota as limit, used and available per resource."""

    tenant = TenantSlugField(read_only=True)
    updated_at = serializers.DateTimeField(read_only=True)
    resources = serializers.SerializerMethodField()

    @extend_schema_field(QuotaUsageSerializer(many=True))
    def get_resources(self, quota: Quota) -> Any:
        return QuotaUsageSerializer(quota_usage(quota.tenant), many=True).data


def quota_help_text(resource: str) -> str:
    field = Quota._meta.get_field(resource)
    return str(field.help_text) if isinstance(field, models.Field) else ""


class QuotaLimitsSerializer(serializers.Serializer[dict[str, int]]):
    """New limits, one field per quota resource.

    PUT needs every resource; PATCH (``partial=True``) takes any subset.
    """

    every_limit_required: ClassVar[bool] = True

    def get_fields(self) -> dict[str, serializers.Field[Any, Any, Any, Any]]:
        fields = super().get_fields()
        for resource in QuotaResource.values:
            fields[resource] = serializers.IntegerField(
                min_value=0,
                max_value=MAX_QUOTA_AMOUNT,
                required=self.every_limit_required,
                help_text=quota_help_text(resource),
            )
        return fields


class InitialQuotaLimitsSerializer(QuotaLimitsSerializer):
    """A new tenant's limits: resources left out start at zero."""

    every_limit_required = False


class QuotaUpdateSerializer(QuotaLimitsSerializer):
    force = serializers.BooleanField(
        default=False,
        help_text="Allow limits below what the tenant already uses (nothing is deleted).",
    )


# --- Tenants ------------------------------------------------------------------------------


class TenantListSerializer(serializers.ListSerializer[Tenant]):
    """Loads the quota usage of the whole page in two queries, whatever its length."""

    quota_usage: dict[int, list[QuotaUsage]]

    def to_representation(self, data: Any) -> list[Any]:
        tenants = list(data.all() if hasattr(data, "all") else data)
        self.quota_usage = quota_usage_for_tenants(tenants)
        return super().to_representation(tenants)


class TenantSerializer(ServiceModelSerializer):
    quota = serializers.SerializerMethodField(help_text="Limit and usage per quota resource.")
    limits = InitialQuotaLimitsSerializer(
        write_only=True, required=False, help_text="Initial quota; resources left out are 0."
    )

    class Meta:
        model = Tenant
        fields = ["slug", "name", "state", "created_at", "quota", "limits"]
        read_only_fields = ["state", "created_at"]
        list_serializer_class = TenantListSerializer

    @extend_schema_field(QuotaUsageSerializer(many=True))
    def get_quota(self, tenant: Tenant) -> Any:
        prefetched = getattr(self.parent, "quota_usage", {})
        usage = prefetched.get(tenant.pk) or quota_usage(tenant)
        return QuotaUsageSerializer(usage, many=True).data


class TenantUpdateSerializer(TenantSerializer):
    """Only the display name changes: the slug names the tenant's namespace for good."""

    limits = None  # type: ignore[assignment]  # quotas change through tenants/{slug}/quota

    class Meta(TenantSerializer.Meta):
        fields = ["slug", "name", "state", "created_at", "quota"]
        read_only_fields = ["slug", "state", "created_at"]


# --- Members and invitations --------------------------------------------------------------


class MembershipSerializer(ServiceModelSerializer):
    tenant = TenantSlugField(read_only=True)
    user = username_field()

    class Meta:
        model = Membership
        fields = ["id", "tenant", "user", "role", "created_at"]
        read_only_fields = ["created_at"]


class InvitationSerializer(ServiceModelSerializer):
    tenant = TenantSlugField()
    status = serializers.ChoiceField(choices=INVITATION_STATUSES, read_only=True)
    created_by = username_field()
    accepted_by = username_field()

    class Meta:
        model = Invitation
        fields = [
            "id",
            "tenant",
            "email",
            "role",
            "status",
            "created_by",
            "created_at",
            "expires_at",
            "accepted_by",
            "accepted_at",
            "revoked_at",
        ]
        read_only_fields = ["created_at", "expires_at", "accepted_at", "revoked_at"]


class InvitationCreatedSerializer(InvitationSerializer):
    """The invitation as created: the only response that ever carries its secret."""

    token = ContextValueField("token", help_text="The invitation's secret, shown only once.")
    url = ContextValueField("url", help_text="The link to send; shown only once.")

    class Meta(InvitationSerializer.Meta):
        fields = [*InvitationSerializer.Meta.fields, "token", "url"]


class InvitationAcceptSerializer(serializers.Serializer[dict[str, str]]):
    token = serializers.CharField(help_text="The secret from the invitation link.")


# --- API tokens ---------------------------------------------------------------------------


class ApiTokenSerializer(ServiceModelSerializer):
    status = serializers.ChoiceField(choices=API_TOKEN_STATUSES, read_only=True)

    class Meta:
        model = ApiToken
        fields = [
            "id",
            "name",
            "prefix",
            "scope",
            "status",
            "created_at",
            "expires_at",
            "last_used_at",
            "revoked_at",
        ]
        read_only_fields = ["prefix", "created_at", "last_used_at", "revoked_at"]


class ApiTokenCreatedSerializer(ApiTokenSerializer):
    token = ContextValueField(
        "token",
        help_text="Send as `Authorization: Bearer <token>`. Shown only once: only its hash is kept.",
    )

    class Meta(ApiTokenSerializer.Meta):
        fields = [*ApiTokenSerializer.Meta.fields, "token"]


# --- Audit trail --------------------------------------------------------------------------


class AuditEventSerializer(serializers.ModelSerializer[AuditEvent]):
    actor = serializers.CharField(
        source="actor_username", read_only=True, help_text="Empty for system actions."
    )
    token: serializers.SlugRelatedField[ApiToken] = serializers.SlugRelatedField(
        slug_field="prefix",
        read_only=True,
        help_text="Prefix of the API token used, if the change came through one.",
    )
    tenant = serializers.CharField(source="tenant_slug", read_only=True)

    class Meta:
        model = AuditEvent
        fields = [
            "id",
            "occurred_at",
            "actor",
            "token",
            "tenant",
            "object_type",
            "object_id",
            "object_repr",
            "action",
            "changes",
            "source_ip",
        ]
        read_only_fields = fields


# --- Users and the caller -----------------------------------------------------------------


class UserMembershipSerializer(serializers.ModelSerializer[Membership]):
    tenant = TenantSlugField(read_only=True)
    tenant_name = serializers.CharField(source="tenant.name", read_only=True)

    class Meta:
        model = Membership
        fields = ["tenant", "tenant_name", "role"]
        read_only_fields = fields


class UserSerializer(serializers.ModelSerializer[User]):
    memberships = UserMembershipSerializer(many=True, read_only=True)

    class Meta:
        model = User
        fields = [
            "id",
            "username",
            "email",
            "first_name",
            "last_name",
            "platform_role",
            "is_active",
            "date_joined",
            "last_login",
            "memberships",
        ]
        read_only_fields = fields


class VisibleTenantSerializer(serializers.Serializer[Tenant]):
    slug = serializers.SlugField()
    name = serializers.CharField()
    state = serializers.ChoiceField(choices=Tenant.State.choices)
    role = serializers.ChoiceField(
        source="caller_role",
        choices=TenantRole.choices,
        allow_null=True,
        help_text="The caller's role in the tenant; null when they see it as a platform role.",
    )


class ProfileSerializer(serializers.Serializer[Any]):
    """The caller: who they are, where they are a member, and every tenant they can see."""

    id = serializers.IntegerField(source="user.id")
    username = serializers.CharField(source="user.username")
    email = serializers.EmailField(source="user.email")
    platform_role = serializers.ChoiceField(
        source="user.platform_role", choices=PlatformRole.choices
    )
    memberships = UserMembershipSerializer(many=True)
    tenants = VisibleTenantSerializer(
        many=True, source="visible_tenants", help_text="Every tenant the caller can see."
    )


# --- Quota previews (clusters, VMs) ---------------------------------------------------------


class QuotaLineSerializer(serializers.Serializer[Any]):
    resource = serializers.ChoiceField(choices=QuotaResource.choices)
    name = serializers.CharField(source="label")
    requested = serializers.IntegerField(help_text="What the request would take.")
    used = serializers.IntegerField(help_text="What the tenant uses now.")
    limit = serializers.IntegerField()
    available = serializers.IntegerField()
    used_after = serializers.IntegerField(help_text="Usage if the request were granted.")
    fits = serializers.BooleanField()
    field = serializers.CharField(help_text="The form field that sets this amount.")


class QuotaPreviewSerializer(serializers.Serializer[QuotaPreview]):
    fits = serializers.BooleanField(help_text="Whether the whole request fits the quota.")
    resources = QuotaLineSerializer(source="lines", many=True)
    field_errors = serializers.SerializerMethodField(
        help_text="Refusals by form field, as creating would answer them."
    )

    @extend_schema_field(
        serializers.DictField(child=serializers.ListField(child=serializers.CharField()))
    )
    def get_field_errors(self, preview: QuotaPreview) -> dict[str, list[str]]:
        # The same keys as the 400 a refused create answers.
        return {
            (api_settings.NON_FIELD_ERRORS_KEY if field == NON_FIELD_ERRORS else field): messages
            for field, messages in preview.errors().items()
        }
