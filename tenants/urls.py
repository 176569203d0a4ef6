"""The browser portal's pages. The REST API lives under ``api/v1/`` (tenants/api/urls.py)."""

from django.urls import path

from tenants.models import Tenant
from tenants.views import (
    audit,
    catalogs,
    dashboard,
    drift,
    fleet,
    home,
    invitations,
    members,
    network,
    operator,
    tokens,
)

urlpatterns = [
    path("", home.HomeView.as_view(), name="home"),
    path("login/", home.LoginView.as_view(), name="login"),
    path("logout/", home.LogoutView.as_view(), name="logout"),
    # --- A tenant's pages ---------------------------------------------------------------
    path("t/<slug:slug>/", dashboard.TenantDashboardView.as_view(), name="tenant-dashboard"),
    path("t/<slug:slug>/members/", members.MembersView.as_view(), name="members"),
    path("t/<slug:slug>/network/", network.TenantNetworkView.as_view(), name="tenant-network"),
    path(
        "t/<slug:slug>/members/<int:pk>/role/",
        members.MemberRoleView.as_view(),
        name="member-role",
    ),
    path(
        "t/<slug:slug>/members/<int:pk>/remove/",
        members.MemberRemoveView.as_view(),
        name="member-remove",
    ),
    path(
        "t/<slug:slug>/invitations/new/",
        members.InvitationCreateView.as_view(),
        name="invitation-create",
    ),
    path(
        "t/<slug:slug>/invitations/<int:pk>/revoke/",
        members.InvitationRevokeView.as_view(),
        name="invitation-revoke",
    ),
    # --- Invitation links (open to anonymous visitors) -----------------------------------
    path(
        "invitations/<str:secret>/", invitations.InvitationLandingView.as_view(), name="invitation"
    ),
    path(
        "invitations/<str:secret>/accept/",
        invitations.InvitationAcceptView.as_view(),
        name="invitation-accept",
    ),
    path(
        "invitations/<str:secret>/sign-up/",
        invitations.InvitationSignUpView.as_view(),
        name="invitation-signup",
    ),
    # --- The signed-in user's account ----------------------------------------------------
    path("account/tokens/", tokens.TokensView.as_view(), name="tokens"),
    path("account/tokens/new/", tokens.TokenCreateView.as_view(), name="token-create"),
    path("account/tokens/<int:pk>/revoke/", tokens.TokenRevokeView.as_view(), name="token-revoke"),
    # --- Audit log -----------------------------------------------------------------------
    path("audit/", audit.AuditLogView.as_view(), name="audit"),
    path("audit/export.csv", audit.AuditExportView.as_view(), name="audit-export"),
    # --- Operator console ----------------------------------------------------------------
    path("operator/", operator.OperatorTenantsView.as_view(), name="operator-tenants"),
    path(
        "operator/tenants/new/",
        operator.OperatorTenantCreateView.as_view(),
        name="operator-tenant-create",
    ),
    path(
        "operator/tenants/<slug:slug>/",
        operator.OperatorTenantDetailView.as_view(),
        name="operator-tenant",
    ),
    path(
        "operator/tenants/<slug:slug>/quota/",
        operator.OperatorQuotaUpdateView.as_view(),
        name="operator-quota",
    ),
    path(
        "operator/tenants/<slug:slug>/suspend/",
        operator.OperatorTenantStateView.as_view(target_state=Tenant.State.SUSPENDED),
        name="operator-tenant-suspend",
    ),
    path(
        "operator/tenants/<slug:slug>/resume/",
        operator.OperatorTenantStateView.as_view(target_state=Tenant.State.ACTIVE),
        name="operator-tenant-resume",
    ),
    path(
        "operator/tenants/<slug:slug>/network/retry/",
        operator.OperatorNetworkRetryView.as_view(),
        name="operator-tenant-network-retry",
    ),
    path(
        "operator/tenants/<slug:slug>/delete/",
        operator.OperatorTenantDeleteView.as_view(),
        name="operator-tenant-delete",
    ),
    path("operator/networks/", network.OperatorNetworksView.as_view(), name="operator-networks"),
    path(
        "operator/networks/pools/new/",
        network.SubnetPoolCreateView.as_view(),
        name="operator-network-pool-create",
    ),
    path(
        "operator/networks/pools/<int:pk>/delete/",
        network.SubnetPoolDeleteView.as_view(),
        name="operator-network-pool-delete",
    ),
    path(
        "operator/networks/ranges/new/",
        network.LoadBalancerRangeCreateView.as_view(),
        name="operator-network-range-create",
    ),
    path(
        "operator/networks/ranges/<int:pk>/delete/",
        network.LoadBalancerRangeDeleteView.as_view(),
        name="operator-network-range-delete",
    ),
    path("operator/catalogs/", catalogs.OperatorCatalogsView.as_view(), name="operator-catalogs"),
    path(
        "operator/catalogs/<slug:catalog>/new/",
        catalogs.CatalogEntryView.as_view(),
        name="operator-catalog-add",
    ),
    path(
        "operator/catalogs/<slug:catalog>/<int:pk>/",
        catalogs.CatalogEntryView.as_view(),
        name="operator-catalog-change",
    ),
    path("operator/fleet/", fleet.OperatorFleetView.as_view(), name="operator-fleet"),
    path("operator/drift/", drift.OperatorDriftView.as_view(), name="operator-drift"),
    path(
        "operator/platform-health/",
        drift.OperatorPlatformHealthView.as_view(),
        name="operator-platform-health",
    ),
    path(
        "operator/drift/repair/",
        drift.OperatorDriftRepairView.as_view(),
        name="operator-drift-repair",
    ),
    path("operator/users/", operator.OperatorUsersView.as_view(), name="operator-users"),
    path(
        "operator/users/<int:pk>/disable/",
        operator.OperatorUserActiveView.as_view(active=False),
        name="operator-user-disable",
    ),
    path(
        "operator/users/<int:pk>/enable/",
        operator.OperatorUserActiveView.as_view(active=True),
        name="operator-user-enable",
    ),
]
