"""Websocket routes. Every consumer authenticates and authorises before accepting."""

from django.urls import path

from butler_portal.realtime import PlatformEventsConsumer, TenantEventsConsumer
from vms.consumers import VMConsoleConsumer

websocket_urlpatterns = [
    path("ws/platform/", PlatformEventsConsumer.as_asgi()),
    path("ws/tenants/<slug:slug>/", TenantEventsConsumer.as_asgi()),
    path("ws/tenants/<slug:slug>/vms/<int:pk>/console/", VMConsoleConsumer.as_asgi()),
]
