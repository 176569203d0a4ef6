from django.apps import AppConfig


class TenantsConfig(AppConfig):
    name = "tenants"
    verbose_name = "Tenants, access and quotas"

    def ready(self) -> None:
        # The tenant network's page and dashboard panel plug in like any other app's.
        from tenants.views.network import register_network_pages

        register_network_pages()
