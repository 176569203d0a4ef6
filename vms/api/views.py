"""/api/v1/vms/, /ssh-keys/ and the VM catalog: thin viewsets over ``vms.services``.

Who may see and touch a VM is ``TenantOwnedViewSet``'s business (viewers read, members and
admins act); SSH keys are their owner's alone; the catalog is read by everyone signed in and
written by operators. Every write is one service call with ``actor=self.actor``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import (
    extend_schema,
    extend_schema_view,
)
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer

from tenants.api.base import (
    ApiViewSet,
    CatalogViewSet,
    TenantResourceViewSet,
    ViewMethod,
    action_schema,
    catalog_schema,
    typed_name_deletion,
)
from tenants.api.serializers import QuotaPreviewSerializer
from tenants.models import Tenant
from tenants.scoping import visible_tenant
from vms.api.filters import VirtualMachineFilterSet
from vms.api.serializers import (
    BulkPowerResponseSerializer,
    BulkPowerSerializer,
    ExposeSerializer,
    SSHKeyRenameSerializer,
    SSHKeySerializer,
    StorageClassSerializer,
    UnexposeSerializer,
    VirtualMachineSerializer,
    VMImageSerializer,
    VMPreviewRequestSerializer,
    spec_from,
)
from vms.models import SSHKey, StorageClass, VirtualMachine, VMImage
from vms.selectors import power_targets, ssh_keys_of, vm_quota_preview, with_vm_details
from vms.services import (
    ssh_key_create,
    ssh_key_delete,
    ssh_key_rename,
    storage_class_save,
    vm_bulk_power,
    vm_create,
    vm_delete,
    vm_expose,
    vm_image_save,
    vm_restart,
    vm_retry,
    vm_start,
    vm_stop,
    vm_unexpose,
)

# --- Catalog --------------------------------------------------------------------------------


@catalog_schema(listed="VM images of the catalog", added="Add an image", changed="Change an image")
class VMImageViewSet(CatalogViewSet[VMImage]):
    queryset = VMImage.objects.all()
    serializer_class = VMImageSerializer
    lookup_field = "name"
    lookup_value_regex = r"[a-z0-9][a-z0-9.-]*"
    filterset_fields = ["active", "os"]

    def save_row(self, row: VMImage) -> VMImage:
        return vm_image_save(actor=self.actor, image=row)


@catalog_schema(
    listed="Storage classes for VM disks (the default first)",
    added="Add a storage class",
    changed="Change a storage class",
)
class StorageClassViewSet(CatalogViewSet[StorageClass]):
    queryset = StorageClass.objects.all()
    serializer_class = StorageClassSerializer
    lookup_field = "name"
    lookup_value_regex = r"[a-z0-9][a-z0-9.-]*"

    def save_row(self, row: StorageClass) -> StorageClass:
        return storage_class_save(actor=self.actor, storage_class=row)


# --- SSH keys -------------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(summary="Your SSH keys"),
    retrieve=extend_schema(summary="One of your SSH keys"),
    create=extend_schema(
        summary="Add an SSH key",
        description="An OpenSSH public key (ssh-ed25519, ecdsa-sha2-nistp256/384/521, ssh-rsa "
        "of 2048 bits or more, or a FIDO sk- key); its SHA-256 fingerprint is computed as "
        "ssh-keygen -l shows it.",
    ),
    update=extend_schema(summary="Rename an SSH key"),
    partial_update=extend_schema(summary="Rename an SSH key"),
    destroy=extend_schema(summary="Remove an SSH key (VMs created with it keep it)"),
)
class SSHKeyViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    ApiViewSet[SSHKey],
):
    """Each person's own keys: nobody, operators included, sees anyone else's."""

    queryset = SSHKey.objects.all()
    serializer_class = SSHKeySerializer
    lookup_value_regex = r"[0-9]+"

    def get_queryset(self) -> QuerySet[SSHKey]:
        return ssh_keys_of(self.request.user)

    def get_serializer_class(self) -> type[BaseSerializer[Any]]:
        if self.action in {"update", "partial_update"}:
            return SSHKeyRenameSerializer
        return SSHKeySerializer

    def perform_create(self, serializer: BaseSerializer[Any]) -> None:
        data = serializer.validated_data
        serializer.instance = ssh_key_create(
            actor=self.actor, name=data["name"], public_key=data["public_key"]
        )

    def perform_update(self, serializer: BaseSerializer[Any]) -> None:
        key = serializer.instance
        assert isinstance(key, SSHKey)
        name = serializer.validated_data.get("name", key.name)
        serializer.instance = ssh_key_rename(actor=self.actor, key=key, name=name)

    def perform_destroy(self, instance: SSHKey) -> None:
        ssh_key_delete(actor=self.actor, key=instance)


# --- Virtual machines -----------------------------------------------------------------------


def _vm_action(
    summary: str, request: type[BaseSerializer[Any]] | None = None, description: str = ""
) -> Callable[[ViewMethod], ViewMethod]:
    return action_schema(VirtualMachineSerializer, summary, request, description)


@extend_schema_view(
    list=extend_schema(summary="Virtual machines the caller can see"),
    retrieve=extend_schema(summary="A virtual machine, with its state and addresses"),
    create=extend_schema(
        summary="Create a virtual machine (tenant members and admins)",
        description="Reserves the VM's quota at once (a refusal names the field to change) "
        "and starts provisioning; follow `state`, `reason` and `timeline`.",
    ),
    destroy=typed_name_deletion(
        "VM",
        VirtualMachineSerializer,
        summary="Delete a virtual machine, its name typed to confirm",
        description="The VM goes to `deleting`; its quota is released once Kubernetes "
        "confirms the VM, its disk, its cloud-init Secret and its Service are gone.",
    ),
)
class VirtualMachineViewSet(TenantResourceViewSet[VirtualMachine]):
    queryset = with_vm_details(VirtualMachine.objects.all())
    serializer_class = VirtualMachineSerializer
    filterset_class = VirtualMachineFilterSet

    def create_row(self, tenant: Tenant, data: Mapping[str, Any]) -> VirtualMachine:
        return vm_create(actor=self.actor, tenant=tenant, spec=spec_from(data))

    def delete_row(self, row: VirtualMachine, confirm_name: str) -> bool:
        return vm_delete(actor=self.actor, vm=row, confirm_name=confirm_name)

    @_vm_action("Start a stopped virtual machine")
    @action(detail=True, methods=["post"])
    def start(self, request: Request, pk: str) -> Response:
        return self.rendered(vm_start(actor=self.actor, vm=self.get_object()))

    @_vm_action("Stop a virtual machine (its quota stays reserved)")
    @action(detail=True, methods=["post"])
    def stop(self, request: Request, pk: str) -> Response:
        return self.rendered(vm_stop(actor=self.actor, vm=self.get_object()))

    @_vm_action("Restart a running virtual machine")
    @action(detail=True, methods=["post"])
    def restart(self, request: Request, pk: str) -> Response:
        return self.rendered(vm_restart(actor=self.actor, vm=self.get_object()))

    @_vm_action(
        "Retry a virtual machine Kubernetes refused (reserves its quota again)",
        description="Only for a `failed` VM (see `allowed_actions`). Its quota is reserved "
        "again: a refusal names the field to change. Exposed ports dropped with the failure "
        "are not restored; expose them again once it runs.",
    )
    @action(detail=True, methods=["post"])
    def retry(self, request: Request, pk: str) -> Response:
        return self.rendered(vm_retry(actor=self.actor, vm=self.get_object()))

    @_vm_action(
        "Expose ports on a public address",
        ExposeSerializer,
        "The first exposed port takes one load-balancer IP of the tenant's quota (a refusal "
        "is on `ports`); more ports share the address. Follow `service.public_ip`.",
    )
    @action(detail=True, methods=["post"])
    def expose(self, request: Request, pk: str) -> Response:
        form = self.validated(ExposeSerializer)
        vm = self.get_object()
        vm_expose(actor=self.actor, vm=vm, ports=form.port_specs())
        return self.rendered(vm)

    @_vm_action(
        "Withdraw exposed ports",
        UnexposeSerializer,
        "Without `ports`, all of them: the Service goes and its address returns to the quota "
        "once Kubernetes confirms it is gone.",
    )
    @action(detail=True, methods=["post"])
    def unexpose(self, request: Request, pk: str) -> Response:
        form = self.validated(UnexposeSerializer)
        vm = self.get_object()
        vm_unexpose(actor=self.actor, vm=vm, ports=form.port_refs())
        return self.rendered(vm)

    @extend_schema(
        request=BulkPowerSerializer,
        responses=BulkPowerResponseSerializer,
        summary="Start, stop or restart several virtual machines",
        description="Each VM is handled on its own: the answer lists, per id, whether it "
        "worked and, if not, why (400 not possible in its state, 403 read-only role, "
        "404 unknown or out of reach).",
    )
    @action(detail=False, methods=["post"], url_path="bulk-power")
    def bulk_power(self, request: Request) -> Response:
        form = self.validated(BulkPowerSerializer)
        ids, power = form.validated_data["ids"], form.validated_data["action"]
        targets = power_targets(request.user, ids)
        done = {
            outcome.vm_id: outcome
            for outcome in vm_bulk_power(actor=self.actor, vms=targets.vms, action=power)
        }
        results = []
        for pk in dict.fromkeys(ids):
            if pk in targets.refused:
                code, message = targets.refused[pk]
                results.append(_result(pk, code, message))
            else:
                outcome = done[pk]
                results.append(
                    _result(pk, outcome.status, outcome.message, outcome.vm if outcome.ok else None)
                )
        return Response(BulkPowerResponseSerializer({"results": results}).data)

    @extend_schema(
        request=VMPreviewRequestSerializer,
        responses=QuotaPreviewSerializer,
        summary="What a virtual machine would take of the tenant's quota (nothing is created)",
    )
    @action(detail=False, methods=["post"])
    def preview(self, request: Request) -> Response:
        form = self.validated(VMPreviewRequestSerializer)
        tenant = visible_tenant(request.user, form.validated_data["tenant"])
        preview = vm_quota_preview(
            tenant, spec_from(form.validated_data), expose=form.validated_data["expose"]
        )
        return Response(QuotaPreviewSerializer(preview).data)


def _result(pk: int, code: int, message: str, vm: VirtualMachine | None = None) -> dict[str, Any]:
    return {
        "id": pk,
        "ok": code == status.HTTP_200_OK,
        "status": code,
        "message": message,
        "state": vm.state if vm else None,
        "run_strategy": vm.run_strategy if vm else None,
    }
