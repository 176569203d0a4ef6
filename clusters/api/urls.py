"""Cluster routes of the REST API, mounted with the others at /api/v1/ (namespace "api")."""

from rest_framework.routers import SimpleRouter

from clusters.api.views import (
    ClusterAddonViewSet,
    ClusterViewSet,
    InstanceTypeViewSet,
    KubernetesVersionViewSet,
)


class ApiRouter(SimpleRouter):
    # No ".json" suffix routes; the API root view comes with the tenants' router.
    include_format_suffixes = False


router = ApiRouter()
router.register("clusters", ClusterViewSet, basename="cluster")
router.register("kubernetes-versions", KubernetesVersionViewSet, basename="kubernetes-version")
router.register("instance-types", InstanceTypeViewSet, basename="instance-type")
router.register("cluster-addons", ClusterAddonViewSet, basename="cluster-addon")

urlpatterns = router.urls
