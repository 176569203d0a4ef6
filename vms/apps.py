from django.apps import AppConfig


class VmsConfig(AppConfig):
    name = "vms"
    verbose_name = "Virtual machines"

    def ready(self) -> None:
        # Work that waited for the tenant's namespace goes ahead once it is applied.
        from tenants.signals import tenant_namespace_applied
        from vms.tasks import provision_those_waiting_for_namespace

        tenant_namespace_applied.connect(
            provision_those_waiting_for_namespace, dispatch_uid="vms-waiting-for-namespace"
        )
        # The pages plug into the tenant navigation and dashboard like any app's, and
        # its catalogs into the operator console.
        from vms.catalogs import register_vm_catalogs
        from vms.views import register_vm_pages

        register_vm_pages()
        register_vm_catalogs()
