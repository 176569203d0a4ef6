from django.apps import AppConfig


class VmsConfig(AppConfig):
    name = "vms"
    verbose_name = "Virtual machines"

    def ready(self) -> None:
        # The VM pages plug into the tenant navigation and dashboard like any app's.
        from vms.views import register_vm_pages

        register_vm_pages()
