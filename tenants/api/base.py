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

    class ClusterViewSet(mixins.ListModelMixin, ..., TenantOwnedViewSet[Cluster]):
        queryset = Cluster.objects.select_related("tenant")
        serializer_class = ClusterSerializer
        write_action = Action.OPERATE

        def perform_create(self, serializer: ClusterSerializer) -> None:
            serializer.instance = cluster_request(
                actor=self.actor, tenant=self.tenant_for_create(serializer), spec=...
            )
"""

from __future__ import annotations

from collections.abc import Mapping
from operator import attrgetter
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from django.core.exceptions import ImproperlyConfigured
from django.db import models
from rest_framework import serializers
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request
from rest_framework.viewsets import GenericViewSet

from tenants.access import Action, is_operator, is_platform_reader
from tenants.audit import Actor
from tenants.models import Tenant, TenantOwnedQuerySet
from tenants.scoping import require, tenant_for_action

if TYPE_CHECKING:
    from django.db.models import QuerySet
    from rest_framework.request import Request
    from rest_framework.serializers import BaseSerializer

ModelT = TypeVar("ModelT", bound=models.Model)

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
