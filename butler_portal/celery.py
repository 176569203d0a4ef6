"""The Celery app. Tasks live in each app's ``tasks.py`` and stay thin: ids in, service call."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "butler_portal.settings")

app = Celery("butler_portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
