"""VM routes of the REST API, mounted with the others at /api/v1/ (namespace "api")."""

from clusters.api.urls import ApiRouter
from vms.api.views import SSHKeyViewSet, StorageClassViewSet, VirtualMachineViewSet, VMImageViewSet

router = ApiRouter()
router.register("vms", VirtualMachineViewSet, basename="vm")
router.register("ssh-keys", SSHKeyViewSet, basename="ssh-key")
router.register("vm-images", VMImageViewSet, basename="vm-image")
router.register("storage-classes", StorageClassViewSet, basename="storage-class")

urlpatterns = router.urls
