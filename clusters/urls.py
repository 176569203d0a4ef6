"""The clusters pages of the browser portal (the REST API is in ``clusters/api/urls.py``)."""

from django.urls import path

from clusters.views import actions, pages

urlpatterns = [
    path("t/<slug:slug>/clusters/", pages.ClusterListView.as_view(), name="cluster-list"),
    path("t/<slug:slug>/clusters/new/", pages.ClusterCreateView.as_view(), name="cluster-create"),
    path(
        "t/<slug:slug>/clusters/summary/",
        pages.ClusterSummaryView.as_view(),
        name="cluster-summary",
    ),
    path(
        "t/<slug:slug>/clusters/<int:pk>/",
        pages.ClusterDetailView.as_view(),
        name="cluster-detail",
    ),
    path(
        "t/<slug:slug>/clusters/<int:pk>/kubeconfig/",
        pages.ClusterKubeconfigView.as_view(),
        name="cluster-kubeconfig",
    ),
    path(
        "t/<slug:slug>/clusters/<int:pk>/scale/",
        actions.ClusterScaleView.as_view(),
        name="cluster-scale",
    ),
    path(
        "t/<slug:slug>/clusters/<int:pk>/upgrade/",
        actions.ClusterUpgradeView.as_view(),
        name="cluster-upgrade",
    ),
    path(
        "t/<slug:slug>/clusters/<int:pk>/hibernate/",
        actions.ClusterHibernateView.as_view(),
        name="cluster-hibernate",
    ),
    path(
        "t/<slug:slug>/clusters/<int:pk>/wake/",
        actions.ClusterWakeView.as_view(),
        name="cluster-wake",
    ),
    path(
        "t/<slug:slug>/clusters/<int:pk>/retry/",
        actions.ClusterRetryView.as_view(),
        name="cluster-retry",
    ),
    path(
        "t/<slug:slug>/clusters/<int:pk>/protect/",
        actions.ClusterProtectionView.as_view(enabled=True),
        name="cluster-protect",
    ),
    path(
        "t/<slug:slug>/clusters/<int:pk>/unprotect/",
        actions.ClusterProtectionView.as_view(enabled=False),
        name="cluster-unprotect",
    ),
    path(
        "t/<slug:slug>/clusters/<int:pk>/delete/",
        actions.ClusterDeleteView.as_view(),
        name="cluster-delete",
    ),
]
