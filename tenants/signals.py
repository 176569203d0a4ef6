"""Signals other apps listen to, so that ``tenants`` never imports them.

``tenant_namespace_applied(tenant_id)``: the tenant's namespace and network were applied for
the first time; work that waited for them (clusters, VMs) may go ahead. Sent by
``tenants.network.network_apply``; the apps connect in their ``AppConfig.ready()``.
"""

from django.dispatch import Signal

tenant_namespace_applied = Signal()
