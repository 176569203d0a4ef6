"""Cluster routes of the REST API, mounted with the others at /api/v1/ (namespace "api")."""

from rest_framework.routers import SimpleRouter

from clusters.api.views import (
    ClusterAddonViewSet,
    ClusterViewSet,
    InstanceTypeViewSet,
    KubernetesVersionViewSet,
)

# A SimpleRouter: no root view (the tenants' router brings the API's) and no format suffixes.
router = SimpleRouter()
router.register("clusters", ClusterViewSet, basename="cluster")
router.register("kubernetes-versions", KubernetesVersionViewSet, basename="kubernetes-version")
router.register("instance-types", InstanceTypeViewSet, basename="instance-type")
router.register("cluster-addons", ClusterAddonViewSet, basename="cluster-addon")

urlpatterns = router.urls
