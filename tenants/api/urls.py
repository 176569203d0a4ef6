"""Routes of the REST API, mounted at /api/v1/ (names live in the "api" namespace)."""

from django.urls import path
from rest_framework.routers import DefaultRouter

from tenants.api.drift import DriftRepairView, DriftView
from tenants.api.network import (
    LoadBalancerRangeViewSet,
    SubnetPoolViewSet,
    TenantNetworkRetryView,
    TenantNetworkView,
)
from tenants.api.views import (
    ApiTokenViewSet,
    AuditEventViewSet,
    InvitationViewSet,
    MembershipViewSet,
    MeView,
    TenantViewSet,
    UserViewSet,
)

app_name = "api"


class ApiRouter(DefaultRouter):
    # No ".json" suffix routes: `?format=` selects a representation where one exists (CSV).
    include_format_suffixes = False


router = ApiRouter()
router.register("tenants", TenantViewSet, basename="tenant")
router.register("memberships", MembershipViewSet, basename="membership")
router.register("invitations", InvitationViewSet, basename="invitation")
router.register("tokens", ApiTokenViewSet, basename="token")
router.register("audit-events", AuditEventViewSet, basename="audit-event")
router.register("users", UserViewSet, basename="user")
router.register("subnet-pools", SubnetPoolViewSet, basename="subnet-pool")
router.register("load-balancer-ranges", LoadBalancerRangeViewSet, basename="load-balancer-range")

urlpatterns = [
    path("me/", MeView.as_view(), name="me"),
    path("drift/", DriftView.as_view(), name="drift"),
    path("drift/repair/", DriftRepairView.as_view(), name="drift-repair"),
    path("tenants/<slug:slug>/network/", TenantNetworkView.as_view(), name="tenant-network"),
    path(
        "tenants/<slug:slug>/network/retry/",
        TenantNetworkRetryView.as_view(),
        name="tenant-network-retry",
    ),
    *router.urls,
]
