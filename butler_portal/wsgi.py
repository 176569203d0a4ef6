"""WSGI entry point, for management tooling only: the portal itself is served over ASGI."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "butler_portal.settings")
application = get_wsgi_application()
