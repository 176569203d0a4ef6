"""The VM pages of the browser portal (``pages``: list, summary, create, detail;
``actions``: power, exposed ports, deletion, bulk power; ``display``: how they are
presented; ``sshkeys``: the user's SSH keys; ``console``: the serial console)."""

from __future__ import annotations

from tenants.views.extensions import (
    TenantNavItem,
    register_dashboard_panel,
    register_tenant_nav_item,
)

#: URL names under the "Virtual machines" navigation entry (it stays highlighted on all of them).
VM_PAGES = (
    "vm-create",
    "vm-detail",
    "vm-start",
    "vm-stop",
    "vm-restart",
    "vm-retry",
    "vm-expose",
    "vm-unexpose",
    "vm-delete",
    "vm-console",
)


def register_vm_pages() -> None:
    """Put VMs into every tenant's navigation and dashboard (``AppConfig.ready``)."""
    register_tenant_nav_item(
        TenantNavItem("Virtual machines", "vm-list", icon="vm", order=30, also_active_for=VM_PAGES)
    )
    register_dashboard_panel("vms/dashboard_card.html", order=6)

    # ...and into the operators' fleet.
    from tenants.views.fleet import FleetKind, register_fleet_kind
    from vms.forms import VMFilterForm
    from vms.models import VirtualMachine
    from vms.selectors import vms_for
    from vms.views.display import vm_rows
    from vms.views.pages import VMS

    def describe(vm: VirtualMachine) -> str:
        return f"{vm.image.display_name} · {vm.instance_type.name} · {vm.disk_gib} GiB"

    register_fleet_kind(
        FleetKind(
            key="vms",
            kind=VMS,
            objects=vms_for,
            rows=vm_rows,
            filter_form=VMFilterForm,
            describe=describe,
            order=20,
        )
    )
