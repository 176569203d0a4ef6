"""Kube-OVN: ``Vpc`` and ``Subnet`` status, and the ``IP`` objects of VM addresses (STATUS.md §7).

The address bookkeeping lives here and KubeVirt's simulation calls ``allocate``/``release``:
a VM's pod-network address comes from the Subnet bound to its namespace, is recorded as an
``IP`` object named ``<vm>.<namespace>`` (keep-vm-ip: the VM name, so it survives restarts)
and counts in the Subnet's ``v4usingIPs``. A cluster's workers are KubeVirt VMs in the
tenant's namespace too (STATUS.md §10.8, made by CAPK): ``worker_address`` gives each
worker Machine its address the same way.
"""

from __future__ import annotations

from collections.abc import Iterable

from butler_portal.simulator.addresses import AddressSet, usable_hosts
from butler_portal.simulator.base import Api, Controller, Reader
from butler_portal.simulator.objects import (
    Manifest,
    Ref,
    condition,
    dig,
    fingerprint,
    is_true,
    merge_conditions,
    name_of,
)

API_VERSION = "kubeovn.io/v1"
SUBNET_LABEL = "ovn.kubernetes.io/subnet"
DEFAULT_VPC = "ovn-cluster"
DEFAULT_PROVIDER = "ovn"
# Kube-OVN conditions carry both timestamps.
STAMPS = ("lastUpdateTime", "lastTransitionTime")


class VpcController(Controller):
    """§7 Vpc: ``status.standby: true`` once the logical router exists."""

    api_version = API_VERSION
    kind = "Vpc"
    wakes_on = ((API_VERSION, "Subnet"),)

    def reconcile(self, vpc: Manifest) -> float | None:
        if not dig(vpc, "status", "standby") and (wait := self.wait(vpc, "creating", "network")):
            return wait
        name = name_of(vpc)
        subnets = [
            name_of(subnet)
            for subnet in self.cache.list(API_VERSION, "Subnet")
            if dig(subnet, "spec", "vpc", default=DEFAULT_VPC) == name
        ]
        self.api.write_status(
            vpc,
            {
                **self.status_of(vpc),
                "standby": True,
                "default": name == DEFAULT_VPC,
                "defaultLogicalSwitch": "ovn-default" if name == DEFAULT_VPC else "",
                "router": name,
                "subnets": sorted(subnets),
                "enableExternal": bool(dig(vpc, "spec", "enableExternal")),
                "enableBfd": bool(dig(vpc, "spec", "enableBfd")),
                **{
                    f"{protocol}{kind}LoadBalancer": f"vpc-{name}-{protocol}-{suffix}"
                    for protocol in ("tcp", "udp", "sctp")
                    for kind, suffix in (("", "load"), ("Session", "sess-load"))
                },
            },
        )
        return None

    def wake(self, subnet: Manifest) -> Iterable[Ref]:
        yield self.ref(dig(subnet, "spec", "vpc", default=DEFAULT_VPC), None)


class SubnetController(Controller):
    """§7 Subnet: Validated/Ready/Error conditions and the IP accounting."""

    api_version = API_VERSION
    kind = "Subnet"
    wakes_on = ((API_VERSION, "IP"),)

    def reconcile(self, subnet: Manifest) -> float | None:
        previous = dig(subnet, "status", "conditions")
        desired = [condition(type_, None, "Init") for type_ in ("Ready", "Validated", "Error")]
        wait = 0.0
        if not is_true(subnet, "Ready") and (wait := self.wait(subnet, "validating", "network")):
            desired = previous or desired  # still validating: keep what is there
        elif failure := self.failure(subnet):
            reason = "ValidateLogicalSwitchFailed"
            desired = [
                condition("Validated", False, reason, failure.text),
                condition("Ready", False, reason, failure.text),
                condition("Error", True, reason, failure.text),
            ]
        else:
            desired = [
                condition("Validated", True, "ValidateLogicalSwitchSuccess"),
                condition("Ready", True, ready_reason(subnet)),
                condition("Error", False, ready_reason(subnet)),
            ]
        status = {
            **self.status_of(subnet),
            **accounting(subnet, addresses_in_use(self.api, name_of(subnet))),
            "conditions": merge_conditions(previous, desired, stamp_fields=STAMPS),
        }
        self.api.write_status(subnet, status)
        return wait or None

    def wake(self, ip: Manifest) -> Iterable[Ref]:
        if subnet := dig(ip, "spec", "subnet"):
            yield self.ref(subnet, None)


def ready_reason(subnet: Manifest) -> str:
    """Which success Kube-OVN reports depends on the kind of subnet (§7)."""
    spec = subnet.get("spec") or {}
    provider = spec.get("provider", DEFAULT_PROVIDER)
    if provider != DEFAULT_PROVIDER and not provider.endswith(".ovn"):
        return "SetNonOvnSubnetSuccess"
    if spec.get("gatewayType") == "centralized":
        return "ReconcileCentralizedGatewaySuccess"
    if spec.get("private"):
        return "SetPrivateLogicalSwitchSuccess"
    return "ResetLogicalSwitchAclSuccess"


def cidr_blocks(subnet: Manifest) -> list[str]:
    return [block for block in dig(subnet, "spec", "cidrBlock", default="").split(",") if block]


def excluded(subnet: Manifest, version: int) -> AddressSet:
    """``excludeIps`` plus the gateway, which Kube-OVN always keeps for itself."""
    gateways = dig(subnet, "spec", "gateway", default="").split(",")
    return AddressSet.parse([*dig(subnet, "spec", "excludeIps", default=[]), *gateways], version)


def free_addresses(subnet: Manifest, in_use: Iterable[str], version: int) -> AddressSet:
    blocks = [block for block in cidr_blocks(subnet) if AddressSet.parse([block], version).spans]
    usable = AddressSet(version)
    for block in blocks:
        usable = usable | usable_hosts(block)
    return usable - excluded(subnet, version) - AddressSet.parse(in_use, version)


def accounting(subnet: Manifest, in_use: list[str]) -> Manifest:
    """``v4availableIPs``/``v4usingIPs`` and their range strings (and the v6 twins)."""
    status: Manifest = {}
    for version in (4, 6):
        prefix = f"v{version}"
        if not any(AddressSet.parse([block], version).spans for block in cidr_blocks(subnet)):
            status |= {f"{prefix}availableIPs": 0, f"{prefix}usingIPs": 0}
            continue
        using = AddressSet.parse(in_use, version)
        available = free_addresses(subnet, in_use, version)
        status |= {
            f"{prefix}availableIPs": available.count,
            f"{prefix}usingIPs": using.count,
            f"{prefix}availableIPrange": str(available),
            f"{prefix}usingIPrange": str(using),
        }
    return status


def addresses_in_use(api: Api, subnet_name: str) -> list[str]:
    addresses = []
    for ip in api.list(API_VERSION, "IP", labels={SUBNET_LABEL: subnet_name}):
        addresses += [each for each in dig(ip, "spec", "ipAddress", default="").split(",") if each]
    return addresses


def subnet_for(reader: Reader, namespace: str, provider: str | None = None) -> Manifest | None:
    """The pod-network Subnet bound to ``namespace``, or the Subnet of a secondary network's
    provider (``<nad>.<namespace>.ovn``), Ready or not."""
    for subnet in sorted(reader.list(API_VERSION, "Subnet"), key=name_of):
        spec = subnet.get("spec") or {}
        if provider is None:
            matches = namespace in (spec.get("namespaces") or ()) and spec.get(
                "provider", DEFAULT_PROVIDER
            ) in (DEFAULT_PROVIDER, "")
        else:
            matches = spec.get("provider") == provider
        if matches:
            return subnet
    return None


def ip_name(pod: str, namespace: str, provider: str | None = None) -> str:
    """§7: ``<pod>.<namespace>``, or ``<pod>.<namespace>.<provider>`` on a secondary network."""
    return f"{pod}.{namespace}" + (f".{provider}" if provider else "")


def allocate(
    api: Api, subnet: Manifest, *, pod: str, namespace: str, node: str, provider: str | None = None
) -> Manifest | None:
    """The ``IP`` object of ``pod`` in ``subnet``: the existing one, or a new one holding the
    lowest free address of each IP version the subnet has. None when the subnet is full."""
    name = ip_name(pod, namespace, provider)
    if existing := api.find(API_VERSION, "IP", name):
        return existing
    in_use = addresses_in_use(api, name_of(subnet))
    chosen: dict[int, str] = {}
    for version in (4, 6):
        if any(AddressSet.parse([block], version).spans for block in cidr_blocks(subnet)):
            free = free_addresses(subnet, in_use, version).first_free()
            if free is None:
                return None
            chosen[version] = free
    mac = "00:00:00:" + ":".join(fingerprint(name, 6)[i : i + 2] for i in (0, 2, 4))
    return api.own(
        {
            "apiVersion": API_VERSION,
            "kind": "IP",
            "metadata": {"name": name, "labels": {SUBNET_LABEL: name_of(subnet)}},
            "spec": {
                "podName": pod,
                "namespace": namespace,
                "subnet": name_of(subnet),
                "nodeName": node,
                "podType": "VirtualMachine",
                "ipAddress": ",".join(chosen.values()),
                "v4IpAddress": chosen.get(4, ""),
                "v6IpAddress": chosen.get(6, ""),
                "macAddress": mac,
                "containerID": "",
                "attachIps": [],
                "attachMacs": [],
                "attachSubnets": [],
            },
        }
    )


def worker_address(api: Api, cache: Reader, machine: str, namespace: str) -> str:
    """The pod-network address of a worker's VM (named like its Machine, §10.8): taken from
    the namespace's Subnet once it is Ready, "" without one (a cluster outside any tenant
    network, or a full subnet)."""
    existing = cache.find(API_VERSION, "IP", ip_name(machine, namespace))
    subnet = subnet_for(cache, namespace)
    if existing is None and (subnet is None or not is_true(subnet, "Ready")):
        return ""
    ip = existing or (
        subnet and allocate(api, subnet, pod=machine, namespace=namespace, node=machine)
    )
    return str(dig(ip, "spec", "v4IpAddress", default="")) if ip else ""


def release(api: Api, pod: str, namespace: str) -> None:
    """Drop every address ``pod`` holds (its VM is deleted, not merely stopped)."""
    for ip in api.list(API_VERSION, "IP"):
        spec = ip.get("spec") or {}
        if spec.get("podName") == pod and spec.get("namespace") == namespace:
            api.delete(Ref.of(ip))
