"""Browser forms for virtual machines and SSH keys. They check shape (types, ranges, DNS
labels, the syntax of a port list) and nothing more: quota, catalog, key and state rules
live in ``vms.services``, whose errors the views put back onto these fields (the field
names match the services' error keys).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db.models import QuerySet

from clusters.forms import InstanceTypeChoiceField
from clusters.selectors import offered_instance_types
from tenants.forms import (
    TEXT_INPUT_ATTRS,
    ObjectFilterForm,
    PreviewedForm,
    catalog_cards,
    dataclass_values,
    name_search_field,
    object_name_field,
    state_filter_field,
)
from vms.models import (
    MAX_DISK_GIB,
    MIN_DISK_GIB,
    VM_NAME_MAX_LENGTH,
    SSHKey,
    StorageClass,
    VirtualMachine,
    VMImage,
    VMService,
)
from vms.selectors import (
    offered_images,
    ssh_keys_of,
    storage_classes,
    vm_form_defaults,
    vm_spec_with_defaults,
)
from vms.services import POWER_ACTIONS
from vms.spec import MAX_PORT, MIN_PORT, PortSpec, VMSpec

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser

    from tenants.models import User

    ImageFieldBase = forms.ModelChoiceField[VMImage]
    StorageClassFieldBase = forms.ModelChoiceField[StorageClass]
    SSHKeysFieldBase = forms.ModelMultipleChoiceField[SSHKey]
else:
    ImageFieldBase = StorageClassFieldBase = forms.ModelChoiceField
    SSHKeysFieldBase = forms.ModelMultipleChoiceField

#: A bulk request names at most this many VMs (a page of the list holds fewer).
MAX_BULK_VMS = 100


class ImageChoiceField(ImageFieldBase):
    def label_from_instance(self, obj: VMImage) -> str:
        return obj.display_name or obj.name


class StorageClassChoiceField(StorageClassFieldBase):
    """Storage classes by name; what each is (replicas, speed) goes below the choice."""

    def label_from_instance(self, obj: StorageClass) -> str:
        return obj.name


class SSHKeysChoiceField(SSHKeysFieldBase):
    def label_from_instance(self, obj: SSHKey) -> str:
        return f"{obj.name} · {obj.fingerprint}"


# --- Creating -------------------------------------------------------------------------------


class VMForm(PreviewedForm[VMSpec]):
    # The name, image, keys and user data cost nothing.
    quota_inputs = ("instance_type", "disk_gib")

    name = object_name_field(
        max_length=VM_NAME_MAX_LENGTH,
        afterwards="It becomes the guest's hostname.",
        example="build-runner",
    )
    image = catalog_cards(ImageChoiceField, label="Image")
    instance_type = catalog_cards(InstanceTypeChoiceField, label="Size")
    disk_gib = forms.IntegerField(
        min_value=MIN_DISK_GIB,
        max_value=MAX_DISK_GIB,
        label="Root disk (GiB)",
        help_text="The image is copied onto it; each image needs a minimum size.",
    )
    storage_class = StorageClassChoiceField(
        queryset=StorageClass.objects.none(),
        empty_label=None,
        label="Storage class",
    )
    ssh_keys = SSHKeysChoiceField(
        queryset=SSHKey.objects.none(),
        required=False,
        label="SSH keys",
        widget=forms.CheckboxSelectMultiple,
        help_text="Installed for the image's login user when the VM first boots.",
    )
    user_data = forms.CharField(
        required=False,
        strip=False,
        label="Cloud-init user data (optional)",
        help_text=(
            f"A #cloud-config document (packages:, write_files:, runcmd: ...), up to "
            f"{settings.VM_USER_DATA_MAX_BYTES // 1024} KiB. It is kept encrypted, out of the "
            "VM's specification."
        ),
        widget=forms.Textarea(
            attrs={
                **TEXT_INPUT_ATTRS,
                "rows": 8,
                "class": "mono",
                "placeholder": "#cloud-config\npackages:\n  - htop",
            }
        ),
    )
    start = forms.BooleanField(
        required=False,
        label="Start it once created",
        help_text="Unticked, its disk is prepared and it waits, stopped, for you to start it.",
    )

    def __init__(self, *args: Any, user: User | AnonymousUser, **kwargs: Any) -> None:
        self.user = user
        super().__init__(*args, **kwargs)
        self.fields["storage_class"].help_text = " ".join(
            f"{choice.name}: {choice.description}"
            for choice in self.fields["storage_class"].queryset  # type: ignore[attr-defined]
            if choice.description
        )

    def catalog_defaults(self) -> dict[str, Any]:
        return {**dataclass_values(vm_form_defaults()), "start": True}

    def catalog_choices(self) -> dict[str, QuerySet[Any]]:
        return {
            "image": offered_images(),
            "instance_type": offered_instance_types(),
            "storage_class": storage_classes(),
            # Only one's own keys: anyone else's is "not one of the available choices".
            "ssh_keys": ssh_keys_of(self.user),
        }

    def spec_with_defaults(self, **values: Any) -> VMSpec:
        return vm_spec_with_defaults(**values)


class VMFilterForm(ObjectFilterForm):
    """Search and state filter of the VM list (GET parameters)."""

    state_field = "state"

    q = name_search_field(VM_NAME_MAX_LENGTH)
    state = state_filter_field("State", VirtualMachine.State.choices)


class IdListField(forms.Field):
    """Ids of the ticked rows of a list (one ``name=<id>`` pair per ticked box)."""

    widget = forms.MultipleHiddenInput
    default_error_messages = {
        "required": "Tick at least one virtual machine first.",
        "invalid": "Unknown virtual machines were ticked.",
        "too_many": f"At most {MAX_BULK_VMS} virtual machines at a time.",
    }

    def to_python(self, value: Any) -> list[int]:
        if not value:
            return []
        values = value if isinstance(value, list | tuple) else [value]
        try:
            ids = list(dict.fromkeys(int(item) for item in values))
        except (TypeError, ValueError):
            raise ValidationError(self.error_messages["invalid"], code="invalid") from None
        if len(ids) > MAX_BULK_VMS:
            raise ValidationError(self.error_messages["too_many"], code="too_many")
        return ids


class BulkPowerForm(forms.Form):
    """Start, stop or restart the ticked VMs of the list (each is checked on its own)."""

    ids = IdListField()
    action = forms.ChoiceField(choices=[(action, action) for action in POWER_ACTIONS])


# --- Exposing ports -------------------------------------------------------------------------

# "22", "8080:80", "53/udp", "2222:22/tcp": public port, optional guest port, optional protocol.
PORT_ENTRY = re.compile(r"^(\d{1,5})(?::(\d{1,5}))?(?:/(tcp|udp))?$", re.IGNORECASE)


class ExposeForm(forms.Form):
    """Ports to reach from outside, written as a list: ``22, 8080:80, 53/udp``."""

    ports = forms.CharField(
        max_length=500,
        label="Ports",
        help_text=(
            "Separated by commas. 22 opens port 22; 8080:80 forwards the public port 8080 to "
            "the guest's port 80; add /udp for UDP (TCP otherwise)."
        ),
        widget=forms.TextInput(attrs={**TEXT_INPUT_ATTRS, "placeholder": "22, 443, 8080:80"}),
    )

    def clean_ports(self) -> list[PortSpec]:
        entries = [entry.strip() for entry in self.cleaned_data["ports"].split(",")]
        ports, unreadable = [], []
        for entry in filter(None, entries):
            match = PORT_ENTRY.match(entry.replace(" ", ""))
            if match is None:
                unreadable.append(entry)
                continue
            public, guest, protocol = match.groups()
            ports.append(
                PortSpec(
                    protocol=(protocol or "TCP").upper(),
                    port=int(public),
                    target_port=int(guest or public),
                )
            )
        if unreadable:
            raise ValidationError(
                f"Not a port: {', '.join(unreadable)}. Write 22, 8080:80 or 53/udp."
            )
        numbers = {number for port in ports for number in (port.port, port.target_port)}
        beyond = sorted(number for number in numbers if not MIN_PORT <= number <= MAX_PORT)
        if beyond:
            raise ValidationError(f"Not a port number (1–65535): {', '.join(map(str, beyond))}.")
        # Duplicates and the number of ports are the service's to check.
        return ports


def port_key(port: dict[str, Any]) -> str:
    return f"{port['protocol']}/{port['port']}"


def port_label(port: dict[str, Any]) -> str:
    forward = f" → {port['target_port']}" if port["target_port"] != port["port"] else ""
    return f"{port['port']}/{port['protocol']}{forward}"


class UnexposeForm(forms.Form):
    """The exposed ports to withdraw; all of them take the public address away."""

    ports = forms.MultipleChoiceField(
        label="Ports to withdraw",
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": "Tick the ports to withdraw."},
    )

    def __init__(self, *args: Any, service: VMService | None, **kwargs: Any) -> None:
        exposed = list(service.ports) if service is not None else []
        kwargs.setdefault("initial", {"ports": [port_key(port) for port in exposed]})
        super().__init__(*args, **kwargs)
        self.fields["ports"].choices = [(port_key(port), port_label(port)) for port in exposed]  # type: ignore[attr-defined]
        self.withdraws_all = False

    def clean_ports(self) -> list[tuple[str, int]] | None:
        """(protocol, port) pairs, or None for all of them (the service's convention)."""
        chosen: list[str] = self.cleaned_data["ports"]
        offered = self.fields["ports"].choices  # type: ignore[attr-defined]
        self.withdraws_all = len(chosen) == len(offered)
        if self.withdraws_all:
            return None
        pairs = []
        for key in chosen:
            protocol, port = key.split("/")
            pairs.append((protocol, int(port)))
        return pairs


# --- SSH keys -------------------------------------------------------------------------------


class SSHKeyForm(forms.Form):
    name = forms.CharField(
        max_length=80,
        help_text="To tell your keys apart, e.g. the laptop it lives on.",
        widget=forms.TextInput(attrs={"autocomplete": "off", "placeholder": "e.g. work laptop"}),
    )
    public_key = forms.CharField(
        label="Public key",
        help_text=(
            "One line of your ~/.ssh/id_ed25519.pub (or id_ecdsa.pub, id_rsa.pub): it starts "
            "with ssh-ed25519, ecdsa-sha2-… or ssh-rsa. Never paste a private key."
        ),
        widget=forms.Textarea(
            attrs={
                **TEXT_INPUT_ATTRS,
                "rows": 3,
                "class": "mono",
                "placeholder": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA… you@laptop",
            }
        ),
    )
