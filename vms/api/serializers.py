"""API shapes of VMs, SSH keys and the VM catalog: validation of the request's form and
rendering. Business rules live in ``vms.services``; model serializers here never save
(``ServiceModelSerializer``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.core.exceptions import ValidationError
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from butler_portal.lifecycle import STEP_ACTIVE, STEP_DONE, STEP_FAILED, STEP_PENDING
from clusters.models import InstanceType
from tenants.api.serializers import ServiceModelSerializer, TenantSlugField, username_field
from tenants.services import suspension_refusal
from vms.lifecycle import ACTIONS
from vms.models import (
    RunStrategy,
    SSHKey,
    StorageClass,
    VirtualMachine,
    VMImage,
    VMService,
)
from vms.selectors import (
    ssh_keys_of,
    vm_allowed_actions,
    vm_spec_with_defaults,
    vm_timeline,
)
from vms.services import STORAGE_CLASS_FIELDS, VM_IMAGE_FIELDS
from vms.spec import MAX_PORT, MIN_PORT, PROTOCOLS, PortSpec, VMSpec
from vms.sshkeys import parse_public_key

MAX_BULK_VMS = 100
POWER_ACTIONS = ["start", "stop", "restart"]

# --- Catalog --------------------------------------------------------------------------------


class VMImageSerializer(ServiceModelSerializer):
    class Meta:
        model = VMImage
        fields = [*VM_IMAGE_FIELDS, "created_at"]
        read_only_fields = ["created_at"]


class StorageClassSerializer(ServiceModelSerializer):
    # Declared rather than generated: the generated field would refuse a second default,
    # but "one default" is the service's rule, where a new default takes over.
    is_default = serializers.BooleanField(
        default=False, help_text="Used when a VM names none; one class is the default."
    )

    class Meta:
        model = StorageClass
        fields = [*STORAGE_CLASS_FIELDS, "created_at"]
        read_only_fields = ["created_at"]


# --- SSH keys -------------------------------------------------------------------------------


class SSHKeySerializer(ServiceModelSerializer):
    class Meta:
        model = SSHKey
        fields = ["id", "name", "public_key", "key_type", "bits", "fingerprint", "created_at"]
        read_only_fields = ["key_type", "bits", "fingerprint", "created_at"]
        extra_kwargs = {
            "public_key": {"help_text": "One line of ~/.ssh/id_*.pub: type, key data, comment."}
        }
        # Name clashes are the service's to find (per user).
        validators: list[Any] = []


class SSHKeyRenameSerializer(SSHKeySerializer):
    """Changing a key means renaming it: a different key is a new key."""

    class Meta(SSHKeySerializer.Meta):
        read_only_fields = [*SSHKeySerializer.Meta.read_only_fields, "public_key"]


# --- Virtual machines -----------------------------------------------------------------------


class PortSerializer(serializers.Serializer[dict[str, Any]]):
    port = serializers.IntegerField(min_value=MIN_PORT, max_value=MAX_PORT)
    target_port = serializers.IntegerField(
        min_value=MIN_PORT,
        max_value=MAX_PORT,
        required=False,
        help_text="The guest's port; the public port when left out.",
    )
    protocol = serializers.ChoiceField(choices=list(PROTOCOLS), default="TCP")


class VMServiceSerializer(serializers.ModelSerializer[VMService]):
    ports = PortSerializer(many=True, read_only=True)

    class Meta:
        model = VMService
        fields = ["ports", "state", "message", "public_ip"]
        read_only_fields = fields


class StepSerializer(serializers.Serializer[Any]):
    """One step of a VM's timeline (the same shape as a cluster's, without timestamps)."""

    def get_fields(self) -> dict[str, serializers.Field[Any, Any, Any, Any]]:
        # Built here: a field named "label" cannot be a class attribute (Field.label).
        return {
            "key": serializers.CharField(),
            "label": serializers.CharField(),
            "state": serializers.ChoiceField(
                choices=[STEP_PENDING, STEP_ACTIVE, STEP_DONE, STEP_FAILED]
            ),
            "message": serializers.CharField(),
        }


class AuthorizedKeySerializer(serializers.Serializer[Any]):
    key_type = serializers.CharField()
    fingerprint = serializers.CharField()
    comment = serializers.CharField()


def _slug_field(model: type[Any], **kwargs: Any) -> serializers.SlugRelatedField[Any]:
    return serializers.SlugRelatedField(
        slug_field="name", queryset=model.objects.all(), required=False, **kwargs
    )


class VirtualMachineSerializer(ServiceModelSerializer):
    tenant = TenantSlugField()
    image: serializers.SlugRelatedField[VMImage] = _slug_field(
        VMImage, help_text="Image from the catalog; the first offered one when left out."
    )
    instance_type: serializers.SlugRelatedField[InstanceType] = _slug_field(
        InstanceType, help_text="Size from the catalog; the default size when left out."
    )
    storage_class: serializers.SlugRelatedField[StorageClass] = _slug_field(
        StorageClass, help_text="Where the root disk lives; the default class when left out."
    )
    disk_gib = serializers.IntegerField(
        required=False,
        help_text="Root disk size; at least the image's minimum (the default size when left out).",
    )
    ssh_keys = serializers.PrimaryKeyRelatedField(
        many=True,
        queryset=SSHKey.objects.none(),  # the caller's own keys: see get_fields
        required=False,
        write_only=True,
        help_text="Ids of your own SSH keys to install for the image's login user.",
    )
    user_data = serializers.CharField(
        required=False,
        allow_blank=True,
        write_only=True,
        trim_whitespace=False,
        style={"base_template": "textarea.html"},
        help_text="Optional #cloud-config (YAML), merged with the portal's. Kept encrypted and "
        "never shown again.",
    )
    start = serializers.BooleanField(
        default=True, write_only=True, help_text="Start it once created (false: create stopped)."
    )
    login_user = serializers.CharField(
        source="image.default_login_user", read_only=True, help_text="ssh <login_user>@<ip>."
    )
    authorized_keys = serializers.SerializerMethodField(
        help_text="The SSH keys installed in the VM when it was created."
    )
    ip_address = serializers.CharField(read_only=True, help_text="The primary address.")
    disk_progress_percent = serializers.FloatField(read_only=True, allow_null=True)
    service = VMServiceSerializer(
        read_only=True, allow_null=True, help_text="Exposed ports and public address, if any."
    )
    created_by = username_field()
    allowed_actions = serializers.SerializerMethodField(
        help_text="Actions the VM's state and its tenant's allow now (the caller's role aside)."
    )
    timeline = serializers.SerializerMethodField()

    class Meta:
        model = VirtualMachine
        fields = [
            "id",
            "tenant",
            "name",
            "image",
            "instance_type",
            "storage_class",
            "disk_gib",
            "ssh_keys",
            "user_data",
            "start",
            "run_strategy",
            "state",
            "reason",
            "printable_status",
            "ready",
            "ip_address",
            "ip_addresses",
            "node_name",
            "disk_phase",
            "disk_progress",
            "disk_progress_percent",
            "login_user",
            "authorized_keys",
            "has_user_data",
            "service",
            "running_since",
            "created_by",
            "created_at",
            "updated_at",
            "allowed_actions",
            "timeline",
        ]
        read_only_fields = [
            "run_strategy",
            "state",
            "reason",
            "printable_status",
            "ready",
            "ip_addresses",
            "node_name",
            "disk_phase",
            "disk_progress",
            "has_user_data",
            "running_since",
            "created_at",
            "updated_at",
        ]
        # Name clashes are the service's to find: the tenant here is only a slug.
        validators: list[Any] = []

    def get_fields(self) -> dict[str, serializers.Field[Any, Any, Any, Any]]:
        fields = super().get_fields()
        request = self.context.get("request")
        keys = fields["ssh_keys"]
        if request is not None and isinstance(keys, serializers.ManyRelatedField):
            own: Any = keys.child_relation  # the stubs type its queryset as a descriptor
            own.queryset = ssh_keys_of(request.user)
        return fields

    @extend_schema_field(AuthorizedKeySerializer(many=True))
    def get_authorized_keys(self, vm: VirtualMachine) -> Any:
        parsed = []
        for line in vm.authorized_keys:
            try:
                parsed.append(parse_public_key(line))
            except ValidationError:  # a key stored before a stricter rule: not shown
                continue
        return AuthorizedKeySerializer(parsed, many=True).data

    @extend_schema_field(serializers.ListField(child=serializers.ChoiceField(list(ACTIONS))))
    def get_allowed_actions(self, vm: VirtualMachine) -> list[str]:
        return sorted(
            action for action in vm_allowed_actions(vm) if not suspension_refusal(vm.tenant, action)
        )

    @extend_schema_field(StepSerializer(many=True))
    def get_timeline(self, vm: VirtualMachine) -> Any:
        return StepSerializer(vm_timeline(vm), many=True).data


def spec_from(data: Mapping[str, Any]) -> VMSpec:
    """A ``VMSpec`` from a validated ``VirtualMachineSerializer``, defaults filled in."""
    return vm_spec_with_defaults(
        name=data.get("name", ""),
        image=data.get("image"),
        instance_type=data.get("instance_type"),
        storage_class=data.get("storage_class"),
        disk_gib=data.get("disk_gib"),
        ssh_keys=data.get("ssh_keys", ()),
        user_data=data.get("user_data", ""),
        start=data.get("start", True),
    )


class VMPreviewRequestSerializer(VirtualMachineSerializer):
    """A would-be VM: the create form, where the name may still be missing."""

    expose = serializers.BooleanField(
        default=False, write_only=True, help_text="Count a public address too."
    )

    class Meta(VirtualMachineSerializer.Meta):
        fields = [*VirtualMachineSerializer.Meta.fields, "expose"]
        extra_kwargs = {"name": {"required": False}}


class ExposeSerializer(serializers.Serializer[dict[str, Any]]):
    ports = PortSerializer(many=True, allow_empty=False)

    def port_specs(self) -> list[PortSpec]:
        return [PortSpec.from_dict(port) for port in self.validated_data["ports"]]


class PortRefSerializer(serializers.Serializer[dict[str, Any]]):
    port = serializers.IntegerField(min_value=MIN_PORT, max_value=MAX_PORT)
    protocol = serializers.ChoiceField(choices=list(PROTOCOLS), default="TCP")


class UnexposeSerializer(serializers.Serializer[dict[str, Any]]):
    ports = PortRefSerializer(
        many=True, required=False, help_text="Ports to withdraw; all of them when left out."
    )

    def port_refs(self) -> list[tuple[str, int]] | None:
        ports = self.validated_data.get("ports")
        if not ports:
            return None
        return [(port["protocol"], port["port"]) for port in ports]


class BulkPowerSerializer(serializers.Serializer[dict[str, Any]]):
    ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1), min_length=1, max_length=MAX_BULK_VMS
    )
    action = serializers.ChoiceField(choices=POWER_ACTIONS)


class BulkPowerResultSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    ok = serializers.BooleanField()
    status = serializers.IntegerField(
        help_text="200 done; 400 not possible in the VM's state; 403 read-only role; 404 unknown."
    )
    message = serializers.CharField()
    state = serializers.ChoiceField(
        choices=VirtualMachine.State.choices,
        allow_null=True,
        help_text="The VM's state after the action (null when it was refused).",
    )
    run_strategy = serializers.ChoiceField(choices=RunStrategy.choices, allow_null=True)


class BulkPowerResponseSerializer(serializers.Serializer[Any]):
    results = BulkPowerResultSerializer(many=True)
