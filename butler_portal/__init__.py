"""Butler Portal: self-service Kubernetes clusters and virtual machines on bare metal."""

from butler_portal.celery import app as celery_app

__all__ = ["celery_app"]
