"""Websocket routes. Every consumer authenticates and authorises before accepting."""

from django.urls import path

from butler_portal.realtime import TenantEventsConsumer

websocket_urlpatterns = [
    path("ws/tenants/<slug:slug>/", TenantEventsConsumer.as_asgi()),
]
