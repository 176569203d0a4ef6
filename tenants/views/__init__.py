"""The browser portal's views, one module per area (see ``tenants/urls.py``).

``tenants.views.base`` holds what other apps' pages reuse (``TenantView``,
``ConfirmActionView``, htmx and form helpers); ``tenants.views.extensions`` is where they
plug into the tenant navigation and dashboard.
"""
