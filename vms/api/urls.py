"""VM routes of the REST API, mounted with the others at /api/v1/ (namespace "api")."""

from rest_framework.routers import SimpleRouter

from vms.api.views import SSHKeyViewSet, StorageClassViewSet, VirtualMachineViewSet, VMImageViewSet

# A SimpleRouter: no root view (the tenants' router brings the API's) and no format suffixes.
router = SimpleRouter()
router.register("vms", VirtualMachineViewSet, basename="vm")
router.register("ssh-keys", SSHKeyViewSet, basename="ssh-key")
router.register("vm-images", VMImageViewSet, basename="vm-image")
router.register("storage-classes", StorageClassViewSet, basename="storage-class")

urlpatterns = router.urls
