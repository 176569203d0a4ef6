from importlib import import_module

from django.contrib import admin
from django.urls import URLPattern, URLResolver, include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from butler_portal.health import healthz, readyz


def api_routes(*modules: str) -> list[URLPattern | URLResolver]:
    return [route for module in modules for route in import_module(module).urlpatterns]


urlpatterns = [
    # Normally answered by ProbeMiddleware before host checks; the routes name them.
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    path("django-admin/", admin.site.urls),
    # Every app's API routes share the one "api" namespace (api:<basename>-list, ...).
    path(
        "api/v1/",
        include((api_routes("tenants.api.urls", "clusters.api.urls", "vms.api.urls"), "api")),
    ),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="api-schema"), name="api-redoc"),
    path("", include("clusters.urls")),
    path("", include("vms.urls")),
    path("", include("tenants.urls")),
]

# The portal's own pages, with the tenant context kept (butler_portal/errors.py; with DEBUG on
# its middleware answers 403 and 404 as well).
handler403 = "butler_portal.errors.permission_denied"
handler404 = "butler_portal.errors.page_not_found"
handler500 = "butler_portal.errors.server_error"
