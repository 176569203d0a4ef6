from django.apps import AppConfig


class VmsConfig(AppConfig):
    name = "vms"
    verbose_name = "Virtual machines"

    def ready(self) -> None:
        # The pages plug into the tenant navigation and dashboard like any app's, and
        # its catalogs into the operator console.
        from vms.catalogs import register_vm_catalogs
        from vms.views import register_vm_pages

        register_vm_pages()
        register_vm_catalogs()
