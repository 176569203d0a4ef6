"""The REST API under /api/v1/: thin viewsets over ``tenants.services`` and ``tenants.selectors``.

Who may do what is decided by the querysets (``for_user``) and ``tenants.api.base``; every
write is one service call with ``actor=self.actor``, which also writes the audit trail.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from django.db.models import OuterRef, Prefetch, QuerySet, Subquery
from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.exceptions import NotAuthenticated
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer
from rest_framework.views import APIView

from tenants.access import Action, TenantRole
from tenants.api.base import ApiViewSet, OperatorWrites, PlatformReaders, TenantOwnedViewSet
from tenants.api.exports import CsvRenderer, streaming_csv_response
from tenants.api.filters import (
    AuditEventFilterSet,
    InvitationFilterSet,
    MembershipFilterSet,
    TenantFilterSet,
    UserFilterSet,
)
from tenants.api.serializers import (
    ApiTokenCreatedSerializer,
    ApiTokenSerializer,
    AuditEventSerializer,
    InvitationAcceptSerializer,
    InvitationCreatedSerializer,
    InvitationSerializer,
    MembershipSerializer,
    ProfileSerializer,
    QuotaSerializer,
    QuotaUpdateSerializer,
    TenantSerializer,
    TenantUpdateSerializer,
    UserSerializer,
)
from tenants.models import ApiToken, AuditEvent, Invitation, Membership, Tenant, User
from tenants.services import (
    invitation_accept,
    invitation_create,
    invitation_revoke,
    membership_change_role,
    membership_remove,
    quota_update,
    tenant_create,
    tenant_delete,
    tenant_set_state,
    tenant_update,
    token_create,
    token_revoke,
    user_set_active,
)

if TYPE_CHECKING:
    from rest_framework.permissions import _SupportsHasPermission

#: The browser page that accepts an invitation is ``/invitations/<secret>/``.
INVITATION_LINK_PATH = "/invitations/"


def created_with_secrets(
    serializer_class: type[BaseSerializer[Any]],
    instance: Any,
    context: Mapping[str, Any],
    **secrets: str,
) -> Response:
    """The 201 of a create that reveals one-time secrets: they are in this response only."""
    serializer = serializer_class(instance, context={**context, **secrets})
    return Response(serializer.data, status=status.HTTP_201_CREATED)


# --- Tenants and quotas -------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(summary="Tenants the caller can see, with their quota usage"),
    create=extend_schema(summary="Onboard a tenant (operators)"),
    update=extend_schema(summary="Rename a tenant (operators)"),
    partial_update=extend_schema(summary="Rename a tenant (operators)"),
    destroy=extend_schema(summary="Delete an empty tenant (operators)"),
)
class TenantViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    ApiViewSet[Tenant],
):
    queryset = Tenant.objects.all()
    serializer_class = TenantSerializer
    lookup_field = "slug"
    filterset_class = TenantFilterSet

    def get_permissions(self) -> Sequence[_SupportsHasPermission]:
        return [*super().get_permissions(), OperatorWrites()]

    def get_queryset(self) -> QuerySet[Tenant]:
        return Tenant.objects.for_user(self.request.user, Action.VIEW)

    def get_serializer_class(self) -> type[BaseSerializer[Any]]:
        if self.action in {"update", "partial_update"}:
            return TenantUpdateSerializer
        return super().get_serializer_class()

    def perform_create(self, serializer: BaseSerializer[Any]) -> None:
        data = serializer.validated_data
        serializer.instance = tenant_create(
            actor=self.actor, slug=data["slug"], name=data["name"], limits=data.get("limits")
        )

    def perform_update(self, serializer: BaseSerializer[Any]) -> None:
        tenant = cast("Tenant", serializer.instance)
        name = serializer.validated_data.get("name", tenant.name)
        serializer.instance = tenant_update(actor=self.actor, tenant=tenant, name=name)

    def perform_destroy(self, instance: Tenant) -> None:
        tenant_delete(actor=self.actor, tenant=instance)

    @extend_schema(
        request=None,
        responses=TenantSerializer,
        summary="Suspend (operators)",
        operation_id="tenants_suspend",
    )
    @action(detail=True, methods=["post"])
    def suspend(self, request: Request, slug: str) -> Response:
        return self._set_state(Tenant.State.SUSPENDED)

    @extend_schema(
        request=None,
        responses=TenantSerializer,
        summary="Resume (operators)",
        operation_id="tenants_resume",
    )
    @action(detail=True, methods=["post"])
    def resume(self, request: Request, slug: str) -> Response:
        return self._set_state(Tenant.State.ACTIVE)

    def _set_state(self, state: str) -> Response:
        tenant = tenant_set_state(actor=self.actor, tenant=self.get_object(), state=state)
        return Response(TenantSerializer(tenant, context=self.get_serializer_context()).data)

    @extend_schema(
        methods=["GET"], responses=QuotaSerializer, summary="Quota limits and usage (viewers)"
    )
    @extend_schema(
        methods=["PUT", "PATCH"],
        request=QuotaUpdateSerializer,
        responses=QuotaSerializer,
        summary="Change quota limits (operators)",
        description=(
            "A limit below what the tenant already uses is refused (400, naming each such "
            "resource) unless `force` is true."
        ),
    )
    @action(detail=True, methods=["get", "put", "patch"], serializer_class=QuotaUpdateSerializer)
    def quota(self, request: Request, slug: str) -> Response:
        tenant = self.get_object()
        quota = tenant.quota
        if request.method != "GET":
            form = self.get_serializer(data=request.data, partial=request.method == "PATCH")
            form.is_valid(raise_exception=True)
            limits = dict(form.validated_data)
            force = bool(limits.pop("force", False))
            quota = quota_update(actor=self.actor, tenant=tenant, limits=limits, force=force)
        return Response(QuotaSerializer(quota).data)


# --- Members and invitations --------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(summary="Members of the tenants the caller can see"),
    update=extend_schema(summary="Change a member's role (tenant admins, operators)"),
    partial_update=extend_schema(summary="Change a member's role (tenant admins, operators)"),
    destroy=extend_schema(summary="Remove a member (tenant admins, operators)"),
)
class MembershipViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    TenantOwnedViewSet[Membership],
):
    queryset = Membership.objects.select_related("tenant", "user")
    serializer_class = MembershipSerializer
    filterset_class = MembershipFilterSet
    write_action = Action.ADMIN

    def perform_update(self, serializer: BaseSerializer[Any]) -> None:
        membership = cast("Membership", serializer.instance)
        role = serializer.validated_data.get("role", membership.role)
        serializer.instance = membership_change_role(
            actor=self.actor, membership=membership, role=role
        )

    def perform_destroy(self, instance: Membership) -> None:
        membership_remove(actor=self.actor, membership=instance)


@extend_schema_view(
    list=extend_schema(summary="Invitations of the tenants the caller administers"),
)
class InvitationViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    TenantOwnedViewSet[Invitation],
):
    queryset = Invitation.objects.select_related("tenant", "created_by", "accepted_by")
    serializer_class = InvitationSerializer
    filterset_class = InvitationFilterSet
    # Invitations are member management: tenant admins only, for reading too.
    read_action = Action.ADMIN
    write_action = Action.ADMIN
    lookup_value_regex = r"[0-9]+"

    @extend_schema(
        responses={201: InvitationCreatedSerializer},
        summary="Invite someone (tenant admins, operators)",
        description="The response carries the invitation link; it is never shown again.",
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        tenant = self.tenant_for_create(serializer)
        link_base = request.build_absolute_uri(INVITATION_LINK_PATH)
        invitation, secret = invitation_create(
            actor=self.actor,
            tenant=tenant,
            role=serializer.validated_data.get("role", TenantRole.MEMBER),
            email=serializer.validated_data.get("email", ""),
            invite_url_base=link_base,
        )
        return created_with_secrets(
            InvitationCreatedSerializer,
            invitation,
            self.get_serializer_context(),
            token=secret,
            url=f"{link_base}{secret}/",
        )

    @extend_schema(
        request=None,
        responses=InvitationSerializer,
        summary="Revoke an invitation",
        operation_id="invitations_revoke",
    )
    @action(detail=True, methods=["post"])
    def revoke(self, request: Request, pk: str) -> Response:
        invitation = invitation_revoke(actor=self.actor, invitation=self.get_object())
        return Response(self.get_serializer(invitation).data)

    @extend_schema(
        request=InvitationAcceptSerializer,
        responses=MembershipSerializer,
        summary="Accept an invitation (any signed-in user)",
        operation_id="invitations_accept",
    )
    @action(detail=False, methods=["post"])
    def accept(self, request: Request) -> Response:
        form = InvitationAcceptSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        membership = invitation_accept(actor=self.actor, secret=form.validated_data["token"])
        return Response(MembershipSerializer(membership).data)


# --- API tokens ---------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(summary="The caller's API tokens"),
    destroy=extend_schema(summary="Revoke a token (it stays listed, as revoked)"),
)
class ApiTokenViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.DestroyModelMixin,
    ApiViewSet[ApiToken],
):
    """Only ever the caller's own tokens; a read-only token can neither create nor revoke."""

    queryset = ApiToken.objects.all()
    serializer_class = ApiTokenSerializer

    def get_queryset(self) -> QuerySet[ApiToken]:
        user = self.request.user
        return (
            ApiToken.objects.filter(user=user)
            if isinstance(user, User)
            else ApiToken.objects.none()
        )

    @extend_schema(
        responses={201: ApiTokenCreatedSerializer},
        summary="Create a token",
        description="The response carries the secret; only its hash is stored.",
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        token, secret = token_create(
            actor=self.actor,
            name=data["name"],
            scope=data.get("scope", ApiToken.Scope.READ),
            expires_at=data.get("expires_at"),
        )
        return created_with_secrets(
            ApiTokenCreatedSerializer, token, self.get_serializer_context(), token=secret
        )

    def perform_destroy(self, instance: ApiToken) -> None:
        token_revoke(actor=self.actor, token=instance)

    @extend_schema(
        request=None,
        responses=ApiTokenSerializer,
        summary="Revoke a token",
        operation_id="tokens_revoke",
    )
    @action(detail=True, methods=["post"])
    def revoke(self, request: Request, pk: str) -> Response:
        token = token_revoke(actor=self.actor, token=self.get_object())
        return Response(self.get_serializer(token).data)


# --- Audit trail --------------------------------------------------------------------------

#: CSV column → the field it is read from (values_list keeps the export cheap per row).
AUDIT_CSV_COLUMNS = {
    "occurred_at": "occurred_at",
    "actor": "actor_username",
    "token": "token__prefix",
    "tenant": "tenant_slug",
    "object_type": "object_type",
    "object_id": "object_id",
    "object_repr": "object_repr",
    "action": "action",
    "changes": "changes",
    "source_ip": "source_ip",
}


@extend_schema_view(
    list=extend_schema(
        summary="Audit events the caller may read",
        description="`?format=csv` returns every matching event (unpaginated) as CSV.",
        responses={
            (200, "application/json"): AuditEventSerializer(many=True),
            (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="CSV"),
        },
    ),
)
class AuditEventViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ApiViewSet[AuditEvent]):
    """Operators and auditors read every event; tenant admins their tenants' events."""

    queryset = AuditEvent.objects.all()
    serializer_class = AuditEventSerializer
    filterset_class = AuditEventFilterSet

    def get_renderers(self) -> list[BaseRenderer]:
        if self.action in {"list", "export"}:
            return [*super().get_renderers(), CsvRenderer()]
        return super().get_renderers()

    def get_queryset(self) -> QuerySet[AuditEvent]:
        return AuditEvent.objects.for_user(self.request.user).select_related("token")

    # A CSV export streams (StreamingHttpResponse), which DRF passes through unrendered.
    def list(  # type: ignore[override]
        self, request: Request, *args: Any, **kwargs: Any
    ) -> Response | StreamingHttpResponse:
        if request.accepted_renderer.format == CsvRenderer.format:
            return self._csv_export()
        return super().list(request, *args, **kwargs)

    @extend_schema(
        responses={(200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="CSV")},
        summary="Export the (filtered) audit events as CSV",
        operation_id="audit_events_export",
        filters=True,
    )
    @action(detail=False, methods=["get"])
    def export(self, request: Request) -> StreamingHttpResponse:
        return self._csv_export()

    def _csv_export(self) -> StreamingHttpResponse:
        events = self.filter_queryset(self.get_queryset())
        rows = events.values_list(*AUDIT_CSV_COLUMNS.values()).iterator(chunk_size=2000)
        return streaming_csv_response("audit-events.csv", AUDIT_CSV_COLUMNS, rows)


# --- Users and the caller -----------------------------------------------------------------


@extend_schema_view(list=extend_schema(summary="User accounts (operators and auditors)"))
class UserViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ApiViewSet[User]):
    queryset = User.objects.prefetch_related(
        Prefetch("memberships", queryset=Membership.objects.select_related("tenant"))
    ).order_by("username")
    serializer_class = UserSerializer
    filterset_class = UserFilterSet

    def get_permissions(self) -> Sequence[_SupportsHasPermission]:
        return [*super().get_permissions(), PlatformReaders()]

    @extend_schema(
        request=None,
        responses=UserSerializer,
        summary="Disable an account (operators); its API tokens are revoked",
        operation_id="users_disable",
    )
    @action(detail=True, methods=["post"])
    def disable(self, request: Request, pk: str) -> Response:
        return self._set_active(False)

    @extend_schema(
        request=None,
        responses=UserSerializer,
        summary="Re-enable an account",
        operation_id="users_enable",
    )
    @action(detail=True, methods=["post"])
    def enable(self, request: Request, pk: str) -> Response:
        return self._set_active(True)

    def _set_active(self, active: bool) -> Response:
        user = user_set_active(actor=self.actor, user=self.get_object(), active=active)
        return Response(self.get_serializer(user).data)


@dataclass(frozen=True)
class Profile:
    user: User
    memberships: list[Membership]
    visible_tenants: list[Tenant]


class MeView(APIView):
    """Who the caller is, their memberships and every tenant they can see."""

    @extend_schema(responses=ProfileSerializer, summary="The caller")
    def get(self, request: Request) -> Response:
        user = request.user
        if not isinstance(user, User):
            raise NotAuthenticated()
        memberships = Membership.objects.for_user(user, Action.VIEW).filter(user=user)
        caller_role = Membership.objects.filter(tenant=OuterRef("pk"), user=user).values("role")
        visible_tenants = Tenant.objects.for_user(user, Action.VIEW).annotate(
            caller_role=Subquery(caller_role[:1])
        )
        profile = Profile(
            user=user,
            memberships=list(memberships.select_related("tenant")),
            visible_tenants=list(visible_tenants),
        )
        return Response(ProfileSerializer(profile).data)
