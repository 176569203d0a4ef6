"""The base viewsets and permissions every API resource builds on.

``TenantOwnedViewSet`` is THE base for anything that belongs to a tenant (memberships,
invitations, and later clusters and VMs). It applies the portal's access rules once:

- **Reads** go through ``Model.objects.for_user(user, action)``: a row outside the caller's
  reach does not exist for them (404), in lists and on detail routes alike.
- **Writes to an object** (any unsafe method on a detail route, custom actions included)
  need ``write_action`` on the object's tenant; visible but not allowed is 403.
- **Creation** names the tenant by slug in the body (``"tenant": "acme"``) and resolves it
  through ``tenants.scoping``: a tenant the caller cannot see is 404, one they can see but
  not write to is 403.

A subclass lists the DRF mixins it offers and implements ``perform_create`` /
``perform_update`` / ``perform_destroy`` by calling a service with ``actor=self.actor``::

    class MembershipViewSet(mixins.ListModelMixin, ..., TenantOwnedViewSet[Membership]):
        queryset = Membership.objects.select_related("tenant", "user")
        serializer_class = MembershipSerializer
        write_action = Action.ADMIN

        def perform_update(self, serializer: MembershipSerializer) -> None:
            serializer.instance = membership_change_role(actor=self.actor, ...)

Two families share more and have a base of their own: ``TenantResourceViewSet`` (clusters,
VMs: created from a spec, deleted with their name typed to confirm) and ``CatalogViewSet``
(versions, instance types, images...: read by everyone signed in, written by operators).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from operator import attrgetter
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, cast

from django.core.exceptions import ImproperlyConfigured
from django.db import models
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import mixins, serializers, status
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.viewsets import GenericViewSet

from tenants.access import Action, is_operator, is_platform_reader
from tenants.audit import Actor
from tenants.models import Tenant, TenantOwnedQuerySet
from tenants.scoping import require, tenant_for_action

if TYPE_CHECKING:
    from django.db.models import QuerySet
    from rest_framework.permissions import _SupportsHasPermission
    from rest_framework.request import Request
    from rest_framework.serializers import BaseSerializer

ModelT = TypeVar("ModelT", bound=models.Model)
ViewSetT = TypeVar("ViewSetT", bound=type[GenericViewSet[Any]])
ViewMethod = TypeVar("ViewMethod", bound=Callable[..., Any])
FormT = TypeVar("FormT", bound=serializers.BaseSerializer[Any])

TENANT_FIELD = "tenant"


class ApiViewSet(GenericViewSet[ModelT]):
    """What every viewset needs, tenant-owned or not: the actor to hand to services."""

    @property
    def actor(self) -> Actor:
        return Actor.from_request(self.request)


class TenantOwnedViewSet(ApiViewSet[ModelT]):
    """Base for tenant-owned resources; see the module docstring for the rules it applies.

    ``queryset`` must be the model's ``TenantOwnedQuerySet`` (``Model.objects.all()`` or
    with ``select_related``); the tenant of a row is found through its ``tenant_path``.
    """

    #: What a tenant member needs to see these rows. Invitations raise it to ADMIN.
    #: Platform readers (operators, auditors) see every tenant's rows whatever it is.
    read_action: ClassVar[Action] = Action.VIEW
    #: What it takes to create, change, delete or act on a row.
    write_action: ClassVar[Action] = Action.OPERATE

    def get_queryset(self) -> QuerySet[ModelT]:
        user = self.request.user
        action = Action.VIEW if is_platform_reader(user) else self.read_action
        return self._tenant_owned_queryset().for_user(user, action)

    def check_object_permissions(self, request: Request, obj: Any) -> None:
        super().check_object_permissions(request, obj)
        if request.method not in SAFE_METHODS:
            require(request.user, self.tenant_of(obj), self.write_action)

    def tenant_of(self, obj: ModelT) -> Tenant:
        path = self._tenant_owned_queryset().tenant_path
        tenant: Tenant = attrgetter(path.replace("__", "."))(obj)
        return tenant

    def tenant_for_create(self, serializer: BaseSerializer[Any]) -> Tenant:
        """The tenant named in the body, if the caller may write there (else 404 / 403)."""
        slug = serializer.validated_data[TENANT_FIELD]
        return tenant_for_action(self.request.user, slug, self.write_action)

    def _tenant_owned_queryset(self) -> TenantOwnedQuerySet[Any]:
        queryset = super().get_queryset()
        if not isinstance(queryset, TenantOwnedQuerySet):
            raise ImproperlyConfigured(
                f"{type(self).__name__}.queryset must be a TenantOwnedQuerySet."
            )
        return queryset


class TenantResourceViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.DestroyModelMixin,
    TenantOwnedViewSet[ModelT],
):
    # A tenant's resource that Kubernetes runs (clusters, VMs): created by its service from
    # the request's spec (``create_row``), deleted with its name typed to confirm
    # (``delete_row``), and every action answers with the row as it now stands (``rendered``).
    # ``queryset`` loads what the serializer shows in one go. No docstring: the OpenAPI schema
    # would show it as the description of every endpoint of every such resource.

    lookup_value_regex = r"[0-9]+"

    def create_row(self, tenant: Tenant, data: Mapping[str, Any]) -> ModelT:
        raise NotImplementedError

    def delete_row(self, row: ModelT, confirm_name: str) -> bool:
        """Ask the service to delete ``row``: True when it is gone at once, False while
        Kubernetes takes its objects down."""
        raise NotImplementedError

    def perform_create(self, serializer: BaseSerializer[Any]) -> None:
        tenant = self.tenant_for_create(serializer)
        serializer.instance = self.create_row(tenant, serializer.validated_data)

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        row = self.get_object()
        if self.delete_row(row, typed_confirmation(request)):
            return Response(status=status.HTTP_204_NO_CONTENT)
        return self.rendered(row, status.HTTP_202_ACCEPTED)

    def rendered(self, row: ModelT, status_code: int = status.HTTP_200_OK) -> Response:
        """The row re-read (a service may have changed it, or what it refers to), serialized."""
        fresh = self._tenant_owned_queryset().filter(pk=row.pk).get()
        return Response(self.get_serializer(fresh).data, status=status_code)

    def validated(self, serializer_class: type[FormT]) -> FormT:
        """The request's body checked by ``serializer_class`` (a 400 naming the fields if not)."""
        form = serializer_class(data=self.request.data, context=self.get_serializer_context())
        form.is_valid(raise_exception=True)
        return form


def typed_name_deletion(
    noun: str, answer: type[BaseSerializer[Any]], *, summary: str, description: str
) -> Callable[[ViewMethod], ViewMethod]:
    """The OpenAPI entry of a ``TenantResourceViewSet``'s deletion (``noun``: "cluster")."""
    return extend_schema(
        parameters=[
            OpenApiParameter(
                "confirm_name",
                str,
                description=f"The {noun}'s name, typed to confirm (also accepted as "
                '`{"confirm_name": ...}` in a JSON body).',
            )
        ],
        responses={
            202: OpenApiResponse(answer, description="Deletion under way."),
            204: OpenApiResponse(description="Deleted."),
        },
        summary=summary,
        description=description,
    )


def action_schema(
    answer: type[BaseSerializer[Any]],
    summary: str,
    request: type[BaseSerializer[Any]] | None = None,
    description: str | None = None,
) -> Callable[[ViewMethod], ViewMethod]:
    """The OpenAPI entry of an action that answers with the changed row (``answer``)."""
    return extend_schema(
        request=request, responses=answer, summary=summary, description=description
    )


class OperatorWrites(BasePermission):
    """Anyone may read what the queryset lets them see; only operators may change it.

    On detail routes the operator check waits for the object, so a row outside the
    caller's reach stays a 404 rather than becoming a 403.
    """

    message = "Only platform operators can do this."

    def has_permission(self, request: Request, view: Any) -> bool:
        if request.method in SAFE_METHODS or getattr(view, "detail", False):
            return True
        return is_operator(request.user)

    def has_object_permission(self, request: Request, view: Any, obj: Any) -> bool:
        return request.method in SAFE_METHODS or is_operator(request.user)


class CatalogViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    ApiViewSet[ModelT],
):
    """Anyone signed in reads the catalog; operators add and change entries.

    Entries are never deleted here: retire them (end of life, inactive) instead, so the
    clusters built from them keep their history.
    """

    # The docstring above is each catalog endpoint's description in the OpenAPI schema.
    # A catalog (versions, instance types, images...) saves through its service: ``save_row``.

    def get_permissions(self) -> Sequence[_SupportsHasPermission]:
        return [*super().get_permissions(), OperatorWrites()]

    def save_row(self, row: ModelT) -> ModelT:
        raise NotImplementedError

    def perform_create(self, serializer: BaseSerializer[Any]) -> None:
        model = self.get_queryset().model
        serializer.instance = self.save_row(model(**serializer.validated_data))

    def perform_update(self, serializer: BaseSerializer[Any]) -> None:
        row = cast("ModelT", serializer.instance)
        for field, value in serializer.validated_data.items():
            setattr(row, field, value)
        serializer.instance = self.save_row(row)


def catalog_schema(*, listed: str, added: str, changed: str) -> Callable[[ViewSetT], ViewSetT]:
    """A catalog viewset's summaries in the OpenAPI schema; its writes are the operators'."""
    return extend_schema_view(
        list=extend_schema(summary=listed),
        create=extend_schema(summary=f"{added} (operators)"),
        update=extend_schema(summary=f"{changed} (operators)"),
        partial_update=extend_schema(summary=f"{changed} (operators)"),
    )


class PlatformReaders(BasePermission):
    """Platform-level resources (user accounts): operators and auditors read, operators act."""

    def has_permission(self, request: Request, view: Any) -> bool:
        if request.method in SAFE_METHODS:
            self.message = "Only platform operators and auditors can see this."
            return is_platform_reader(request.user)
        self.message = OperatorWrites.message
        return is_operator(request.user)


class ConfirmNameSerializer(serializers.Serializer[dict[str, str]]):
    confirm_name = serializers.CharField(
        allow_blank=True, help_text="The object's name, typed to confirm."
    )


def typed_confirmation(request: Request) -> str:
    """The name typed to confirm a deletion: ``{"confirm_name": ...}`` or ``?confirm_name=``."""
    body = request.data if isinstance(request.data, Mapping) else {}
    form = ConfirmNameSerializer(
        data={"confirm_name": request.query_params.get("confirm_name", ""), **body}
    )
    form.is_valid(raise_exception=True)
    return str(form.validated_data["confirm_name"])
