from django.apps import AppConfig


class ClustersConfig(AppConfig):
    name = "clusters"
    verbose_name = "Kubernetes clusters"

    def ready(self) -> None:
        # The pages plug into the tenant navigation and dashboard like any app's, and
        # its catalogs into the operator console.
        from clusters.catalogs import register_cluster_catalogs
        from clusters.views import register_cluster_pages

        register_cluster_pages()
        register_cluster_catalogs()
