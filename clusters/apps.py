from django.apps import AppConfig


class ClustersConfig(AppConfig):
    name = "clusters"
    verbose_name = "Kubernetes clusters"

    def ready(self) -> None:
        # Work that waited for the tenant's namespace goes ahead once it is applied.
        from clusters.tasks import provision_those_waiting_for_namespace
        from tenants.signals import tenant_namespace_applied

        tenant_namespace_applied.connect(
            provision_those_waiting_for_namespace, dispatch_uid="clusters-waiting-for-namespace"
        )
        # The pages plug into the tenant navigation and dashboard like any app's, and
        # its catalogs into the operator console.
        from clusters.catalogs import register_cluster_catalogs
        from clusters.views import register_cluster_pages

        register_cluster_pages()
        register_cluster_catalogs()
