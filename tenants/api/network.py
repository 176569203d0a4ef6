"""Networks in the REST API: a tenant's network, and the operators' address plan.

- ``GET /api/v1/tenants/{slug}/network/``: the tenant's network, for whoever may view the
  tenant (404 outside their reach).
- ``POST /api/v1/tenants/{slug}/network/retry/``: apply a Failed network again, for
  operators only (403 for everyone else who can see the tenant, 404 for the rest).
- ``/api/v1/subnet-pools/`` and ``/api/v1/load-balancer-ranges/``: operators list, add,
  change (pools) and remove them; auditors read; everyone else is refused (403).

Every write is one call to ``tenants.network`` with ``actor=self.actor``; the services
validate (IPv4, no overlap, nothing shrinks under a tenant) and write the audit trail.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

from django.conf import settings
from drf_spectacular.utils import extend_schema, extend_schema_field, extend_schema_view
from rest_framework import mixins, serializers
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from tenants.access import is_operator
from tenants.api.base import ApiViewSet, OperatorWrites, PlatformReaders
from tenants.api.serializers import ServiceModelSerializer
from tenants.audit import Actor
from tenants.models import LoadBalancerRange, SubnetPool, TenantNetwork
from tenants.network import (
    lb_range_create,
    lb_range_delete,
    subnet_pool_create,
    subnet_pool_delete,
    subnet_pool_update,
)
from tenants.scoping import visible_tenant
from tenants.selectors import (
    LoadBalancerRangeUsage,
    SubnetPoolUsage,
    TenantNetworkSummary,
    lb_range_usages,
    subnet_pool_usages,
    tenant_network_summary,
)
from tenants.services import tenant_network_retry

if TYPE_CHECKING:
    from rest_framework.permissions import _SupportsHasPermission
    from rest_framework.serializers import BaseSerializer

# --- A tenant's network --------------------------------------------------------------------


class AddressCountSerializer(serializers.Serializer[Any]):
    used = serializers.IntegerField()
    free = serializers.IntegerField()
    total = serializers.IntegerField()


class TenantNetworkSerializer(serializers.Serializer[TenantNetworkSummary]):
    tenant = serializers.CharField(source="network.tenant.slug")
    namespace = serializers.CharField(source="network.namespace")
    state = serializers.ChoiceField(choices=TenantNetwork.State.choices)
    message = serializers.CharField(
        source="explanation", help_text="Why the network is not ready, in plain words."
    )
    subnet_cidr = serializers.CharField(source="network.subnet_cidr", allow_null=True)
    gateway = serializers.CharField(allow_null=True)
    vpc_ready = serializers.BooleanField(source="network.vpc_ready")
    subnet_ready = serializers.BooleanField(source="network.subnet_ready")
    address_pool_ready = serializers.BooleanField(
        allow_null=True,
        help_text="MetalLB's pool of the tenant's addresses; null when it holds none.",
    )
    subnet_addresses = AddressCountSerializer(
        source="subnet_usage",
        allow_null=True,
        help_text="Addresses in use in the subnet; null until Kube-OVN reports them.",
    )
    load_balancer_ranges = serializers.ListField(
        source="lb_ranges",
        child=serializers.CharField(),
        help_text='The tenant\'s load-balancer addresses, as "first-last" ranges.',
    )
    load_balancer_addresses = serializers.IntegerField(
        source="lb_share_size", help_text="How many addresses the ranges hold."
    )
    load_balancer_quota = serializers.IntegerField(source="lb_quota")
    load_balancer_usage = AddressCountSerializer(
        source="lb_usage",
        allow_null=True,
        help_text="Addresses assigned to services; null until MetalLB reports them.",
    )
    updated_at = serializers.DateTimeField(source="network.updated_at")


class TenantNetworkView(APIView):
    @extend_schema(
        responses=TenantNetworkSerializer,
        summary="A tenant's network: subnet, readiness, load-balancer addresses (viewers)",
    )
    def get(self, request: Request, slug: str) -> Response:
        summary = tenant_network_summary(visible_tenant(request.user, slug))
        if summary is None:
            raise NotFound("No network has been allocated to this tenant.")
        return Response(TenantNetworkSerializer(summary).data)


class TenantNetworkRetryView(APIView):
    @extend_schema(
        request=None,
        responses=TenantNetworkSerializer,
        summary="Apply a failed tenant network again (operators)",
        description="Only for a network in `failed` (Kubernetes rejected or refused it for a "
        "reason that does not pass by itself; fix that first). It goes back to "
        "`provisioning`; follow `state` and `message`. Any other state is a 400.",
    )
    def post(self, request: Request, slug: str) -> Response:
        tenant = visible_tenant(request.user, slug)  # outside the caller's reach: 404
        if not is_operator(request.user):
            raise PermissionDenied(OperatorWrites.message)
        tenant_network_retry(actor=Actor.from_request(request), tenant=tenant)
        summary = tenant_network_summary(tenant)
        if summary is None:  # deleted in between
            raise NotFound("No network has been allocated to this tenant.")
        return Response(TenantNetworkSerializer(summary).data)


# --- Subnet pools --------------------------------------------------------------------------


class SubnetPoolUsageSerializer(serializers.Serializer[SubnetPoolUsage]):
    tenants = serializers.IntegerField(
        source="tenant_count", help_text="Tenants with a subnet here."
    )
    capacity = serializers.IntegerField(
        help_text="Tenants the pool holds at its subnet size: those here plus those that fit."
    )
    total_addresses = serializers.IntegerField()
    allocated_addresses = serializers.IntegerField(help_text="In the tenants' subnets.")
    free_addresses = serializers.IntegerField()
    addresses_in_use = serializers.IntegerField(
        help_text="Reported in use by Kube-OVN, over all the tenants' subnets."
    )


class UsageListSerializer(serializers.ListSerializer[Any]):
    """Works out the usage of a whole page of pools or ranges at once (constant queries)."""

    usages: dict[int, Any]

    def to_representation(self, data: Any) -> list[Any]:
        rows = list(data.all() if hasattr(data, "all") else data)
        child = cast("WithUsageSerializer", self.child)
        # The selectors answer in the order they were asked.
        self.usages = dict(zip((row.pk for row in rows), child.usages_of(rows), strict=True))
        return super().to_representation(rows)


class WithUsageSerializer(ServiceModelSerializer):
    """A pool or range with its ``usage``, which a selector works out for many at once."""

    usage = serializers.SerializerMethodField()

    def usages_of(self, rows: list[Any]) -> list[Any]:
        raise NotImplementedError

    def usage_of(self, row: Any) -> Any:
        prefetched: dict[int, Any] | None = getattr(self.parent, "usages", None)
        return prefetched[row.pk] if prefetched is not None else self.usages_of([row])[0]


class SubnetPoolSerializer(WithUsageSerializer):
    """A private supernet that new tenants' subnets are taken from, with what they hold."""

    # Validation is the service's: the model's own validators would answer first, in other words.
    name = serializers.CharField(max_length=63)
    cidr = serializers.CharField(
        max_length=43, help_text="IPv4 supernet in CIDR notation, e.g. 10.201.0.0/16."
    )
    subnet_prefix_length = serializers.IntegerField(
        required=False,
        help_text=(
            "Size of each new tenant's subnet (24 gives 254 addresses); "
            f"{settings.TENANT_SUBNET_PREFIX_LENGTH} if left out."
        ),
    )

    class Meta:
        model = SubnetPool
        fields = ["id", "name", "cidr", "subnet_prefix_length", "created_at", "usage"]
        read_only_fields = ["created_at"]
        list_serializer_class = UsageListSerializer

    def usages_of(self, rows: list[Any]) -> list[Any]:
        return subnet_pool_usages(rows)

    @extend_schema_field(SubnetPoolUsageSerializer)
    def get_usage(self, pool: SubnetPool) -> Any:
        return SubnetPoolUsageSerializer(self.usage_of(pool)).data


@extend_schema_view(
    list=extend_schema(summary="Subnet pools with their usage (operators and auditors)"),
    retrieve=extend_schema(summary="A subnet pool with its usage (operators and auditors)"),
    create=extend_schema(summary="Add a subnet pool (operators)"),
    update=extend_schema(summary="Rename, resize or re-cut a subnet pool (operators)"),
    partial_update=extend_schema(summary="Rename, resize or re-cut a subnet pool (operators)"),
    destroy=extend_schema(summary="Delete an empty subnet pool (operators)"),
)
class SubnetPoolViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    ApiViewSet[SubnetPool],
):
    queryset = SubnetPool.objects.order_by("created_at", "id")
    serializer_class = SubnetPoolSerializer

    def get_permissions(self) -> Sequence[_SupportsHasPermission]:
        return [*super().get_permissions(), PlatformReaders()]

    def perform_create(self, serializer: BaseSerializer[Any]) -> None:
        data = serializer.validated_data
        serializer.instance = subnet_pool_create(
            actor=self.actor,
            name=data["name"],
            cidr=data["cidr"],
            subnet_prefix_length=data.get(
                "subnet_prefix_length", settings.TENANT_SUBNET_PREFIX_LENGTH
            ),
        )

    def perform_update(self, serializer: BaseSerializer[Any]) -> None:
        data = serializer.validated_data
        serializer.instance = subnet_pool_update(
            actor=self.actor,
            pool=cast("SubnetPool", serializer.instance),
            name=data.get("name"),
            cidr=data.get("cidr"),
            subnet_prefix_length=data.get("subnet_prefix_length"),
        )

    def perform_destroy(self, instance: SubnetPool) -> None:
        subnet_pool_delete(actor=self.actor, pool=instance)


# --- Load-balancer ranges ------------------------------------------------------------------


class RangeHoldingSerializer(serializers.Serializer[Any]):
    tenant = serializers.CharField(source="tenant.slug")
    ranges = serializers.ListField(source="blocks", child=serializers.CharField())
    addresses = serializers.IntegerField(source="size")


class LoadBalancerRangeUsageSerializer(serializers.Serializer[LoadBalancerRangeUsage]):
    size = serializers.IntegerField(help_text="Addresses in the range.")
    allocated = serializers.IntegerField(help_text="Held by tenants' MetalLB shares.")
    free = serializers.IntegerField()
    holders = RangeHoldingSerializer(source="holdings", many=True)


class LoadBalancerRangeSerializer(WithUsageSerializer):
    """Public addresses that tenants' MetalLB shares are taken from, with who holds which."""

    # Validation is the service's (IPv4, usable, no overlap), with its messages.
    name = serializers.CharField(max_length=63)
    first_address = serializers.CharField(max_length=15, help_text="e.g. 192.0.2.10")
    last_address = serializers.CharField(max_length=15, help_text="e.g. 192.0.2.99")

    class Meta:
        model = LoadBalancerRange
        fields = ["id", "name", "first_address", "last_address", "created_at", "usage"]
        read_only_fields = ["created_at"]
        list_serializer_class = UsageListSerializer

    def usages_of(self, rows: list[Any]) -> list[Any]:
        return lb_range_usages(rows)

    @extend_schema_field(LoadBalancerRangeUsageSerializer)
    def get_usage(self, address_range: LoadBalancerRange) -> Any:
        return LoadBalancerRangeUsageSerializer(self.usage_of(address_range)).data


@extend_schema_view(
    list=extend_schema(summary="Load-balancer ranges and who holds them (operators, auditors)"),
    retrieve=extend_schema(summary="A load-balancer range and who holds it (operators, auditors)"),
    create=extend_schema(summary="Add a load-balancer range (operators)"),
    destroy=extend_schema(summary="Delete a range no tenant holds addresses in (operators)"),
)
class LoadBalancerRangeViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.DestroyModelMixin,
    ApiViewSet[LoadBalancerRange],
):
    queryset = LoadBalancerRange.objects.order_by("created_at", "id")
    serializer_class = LoadBalancerRangeSerializer

    def get_permissions(self) -> Sequence[_SupportsHasPermission]:
        return [*super().get_permissions(), PlatformReaders()]

    def perform_create(self, serializer: BaseSerializer[Any]) -> None:
        data = serializer.validated_data
        serializer.instance = lb_range_create(
            actor=self.actor,
            name=data["name"],
            first_address=data["first_address"],
            last_address=data["last_address"],
        )

    def perform_destroy(self, instance: LoadBalancerRange) -> None:
        lb_range_delete(actor=self.actor, address_range=instance)
