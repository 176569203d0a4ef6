from django.apps import AppConfig


class ClustersConfig(AppConfig):
    name = "clusters"
    verbose_name = "Kubernetes clusters"

    def ready(self) -> None:
        # The clusters pages plug into the tenant navigation and dashboard like any app's.
        from clusters.views import register_cluster_pages

        register_cluster_pages()
