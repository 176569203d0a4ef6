"""The signed-in user's own SSH keys (``/account/ssh-keys/``), chosen when creating a VM.

Keys belong to a person, not a tenant: one's own keys are the whole scope
(``vms.selectors.ssh_keys_of``), so anyone else's key is not found.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse
from django_htmx.http import trigger_client_event

from tenants.audit import Actor
from tenants.views.base import (
    ConfirmActionView,
    Confirmation,
    PortalView,
    call_service,
    current_user,
    is_htmx,
    redirect_after_post,
)
from vms.forms import SSHKeyForm
from vms.models import SSHKey
from vms.selectors import ssh_keys_of
from vms.services import ssh_key_create, ssh_key_delete

SSH_KEYS_CHANGED = "ssh-keys-changed"


def own_keys(request: HttpRequest) -> QuerySet[SSHKey]:
    return ssh_keys_of(current_user(request))


class SSHKeysView(PortalView):
    template_name = "account/ssh_keys.html"
    partial_templates = {
        "ssh-key-create": "account/_ssh_key_create.html",
        "ssh-key-list": "account/_ssh_key_list.html",
    }

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context.setdefault("key_form", SSHKeyForm())
        context["keys"] = own_keys(self.request)
        return context


class SSHKeyCreateView(SSHKeysView):
    """POST the add form: the key's own problems come back on its fields, typed as it was."""

    http_method_names = ["post"]

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        form = SSHKeyForm(request.POST)
        key = (
            call_service(
                form,
                ssh_key_create,
                actor=Actor.from_request(request),
                name=form.cleaned_data["name"],
                public_key=form.cleaned_data["public_key"],
            )
            if form.is_valid()
            else None
        )
        if key is None:
            return self.render_to_response(self.get_context_data(key_form=form))
        messages.success(request, f"SSH key “{key.name}” was added ({key.fingerprint}).")
        if not is_htmx(request):
            return redirect_after_post(request, reverse("ssh-key-list"))
        # A fresh form for the next key; the list below reloads itself.
        response = self.render_to_response(self.get_context_data())
        assert isinstance(response, TemplateResponse)
        return trigger_client_event(response, SSH_KEYS_CHANGED)


class SSHKeyDeleteView(ConfirmActionView):
    def key(self) -> SSHKey:
        found: SSHKey = get_object_or_404(own_keys(self.request), pk=self.kwargs["pk"])
        return found

    def confirmation(self) -> Confirmation:
        key = self.key()
        return Confirmation(
            title=f"Remove the SSH key “{key.name}”?",
            message=(
                f"{key.fingerprint} can no longer be chosen for new virtual machines. Those "
                "created with it keep it: cloud-init installed it when they first booted."
            ),
            button="Remove key",
            cancel_url=reverse("ssh-key-list"),
        )

    def perform(self) -> str:
        key = self.key()
        ssh_key_delete(actor=Actor.from_request(self.request), key=key)
        messages.success(self.request, f"SSH key “{key.name}” was removed.")
        return reverse("ssh-key-list")
