"""``/t/<slug>/vms/<pk>/console/``: the VM's serial console in the browser.

The page holds an xterm.js terminal (``static/js/console.js``); the bytes flow over the
websocket ``/ws/tenants/<slug>/vms/<pk>/console/`` (``vms.consumers``), which checks the
same rights again before it opens anything upstream.
"""

from __future__ import annotations

from typing import Any

from tenants.access import Action
from vms.models import VirtualMachine
from vms.selectors import vm_allowed_actions
from vms.views.pages import VMView


def console_refusal(vm: VirtualMachine) -> str:
    """Why the console cannot open right now ("" when it can)."""
    if "console" in vm_allowed_actions(vm):
        return ""
    return (
        f"The console opens while the VM is running; {vm.name} is "
        f"{vm.get_state_display().lower()}. This page connects by itself when it runs."
    )


class VMConsoleView(VMView):
    """The terminal page, for the people who may operate the VM (members and admins)."""

    required_action = Action.OPERATE
    template_name = "vms/console.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        refusal = console_refusal(self.vm)
        context.update(console_open=not refusal, closed_reason=refusal)
        return context
