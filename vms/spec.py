"""What a VM request asks for, and what it costs in quota.

Shared by the services (which reserve), the selectors (which preview) and the API/UI forms
(which build a ``VMSpec`` from validated input).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import NON_FIELD_ERRORS, ValidationError

from clusters.models import InstanceType
from tenants.models import QuotaResource
from vms.models import MAX_EXPOSED_PORTS, SSHKey, StorageClass, VMImage

PROTOCOLS = ("TCP", "UDP")
MIN_PORT, MAX_PORT = 1, 65535


@dataclass(frozen=True)
class VMSpec:
    name: str
    image: VMImage
    instance_type: InstanceType
    storage_class: StorageClass
    disk_gib: int
    ssh_keys: Sequence[SSHKey] = field(default_factory=tuple)
    user_data: str = ""
    #: False creates it stopped (runStrategy Halted): its disk is still prepared.
    start: bool = True


@dataclass(frozen=True, order=True)
class PortSpec:
    """One exposed port: ``port`` on the public address, forwarded to ``target_port``."""

    protocol: str
    port: int
    target_port: int

    def as_dict(self) -> dict[str, Any]:
        return {"port": self.port, "target_port": self.target_port, "protocol": self.protocol}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PortSpec:
        port = int(data["port"])
        return cls(
            protocol=str(data.get("protocol") or "TCP").upper(),
            port=port,
            target_port=int(data.get("target_port") or port),
        )


def checked_ports(ports: Iterable[PortSpec], *, field_name: str = "ports") -> list[PortSpec]:
    """Ports sorted and free of duplicates, or a ValidationError on ``field_name``."""
    chosen = sorted(set(ports))
    problems = []
    for port in chosen:
        if port.protocol not in PROTOCOLS:
            problems.append(f"{port.protocol}: use TCP or UDP.")
        for number in (port.port, port.target_port):
            if not MIN_PORT <= number <= MAX_PORT:
                problems.append(f"{number} is not a port number (1–65535).")
    public = [(port.protocol, port.port) for port in chosen]
    if len(set(public)) != len(public):
        problems.append("Each public port (and protocol) can forward to one port only.")
    if len(chosen) > MAX_EXPOSED_PORTS:
        problems.append(f"At most {MAX_EXPOSED_PORTS} ports per virtual machine.")
    if problems:
        raise ValidationError({field_name: problems})
    return chosen


#: The form field to blame when a quota resource runs out.
QUOTA_FIELDS: Mapping[str, str] = {
    QuotaResource.VMS: NON_FIELD_ERRORS,
    QuotaResource.VCPU: "instance_type",
    QuotaResource.MEMORY_MIB: "instance_type",
    QuotaResource.STORAGE_GIB: "disk_gib",
    # An exposed VM takes one address of the tenant's MetalLB share.
    QuotaResource.LOAD_BALANCER_IPS: "ports",
}


def vm_quota_amounts(*, instance_type: InstanceType, disk_gib: int) -> dict[str, int]:
    """What a VM holds of its tenant's quota (its load-balancer address is held apart)."""
    return {
        QuotaResource.VMS: 1,
        QuotaResource.VCPU: instance_type.vcpu,
        QuotaResource.MEMORY_MIB: instance_type.memory_mib,
        QuotaResource.STORAGE_GIB: disk_gib,
    }


def spec_quota_amounts(spec: VMSpec) -> dict[str, int]:
    return vm_quota_amounts(instance_type=spec.instance_type, disk_gib=spec.disk_gib)


SERVICE_QUOTA_AMOUNTS: Mapping[str, int] = {QuotaResource.LOAD_BALANCER_IPS: 1}
