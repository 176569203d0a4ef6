"""MetalLB: load-balancer addresses for Services, and pool status (STATUS.md §8).

A ``LoadBalancer`` Service gets one address per IP family from the first pool that allows
its namespace (``serviceAllocation``), in MetalLB's preference order, honouring the
``metallb.io/loadBalancerIPs`` and ``metallb.io/address-pool`` annotations. The result shows
on the Service: ``status.loadBalancer.ingress[].ip`` and the annotation
``metallb.io/ip-allocated-from-pool``; a Service that cannot get one gets a Warning event
``AllocationFailed`` and no address, as with the real controller.
"""

from __future__ import annotations

from collections.abc import Iterable

from butler_portal.simulator.addresses import AddressSet
from butler_portal.simulator.base import Controller
from butler_portal.simulator.objects import (
    Manifest,
    Ref,
    annotations_of,
    dig,
    labels_of,
    name_of,
    namespace_of,
    selector_matches,
)

API_VERSION = "metallb.io/v1beta1"
ALLOCATED_FROM = "metallb.io/ip-allocated-from-pool"
REQUESTED_IPS = "metallb.io/loadBalancerIPs"
REQUESTED_POOL = "metallb.io/address-pool"
COMPONENT = "metallb-controller"
FAMILIES = {"IPv4": 4, "IPv6": 6}


class AllocationFailed(Exception):
    pass


class LoadBalancerController(Controller):
    """MetalLB's controller: assigns Service addresses (§8)."""

    api_version = "v1"
    kind = "Service"
    wakes_on = ((API_VERSION, "IPAddressPool"),)

    def reconcile(self, service: Manifest) -> float | None:
        if not handled_by_metallb(service):
            if ALLOCATED_FROM in annotations_of(service):  # no longer a LoadBalancer: let go
                self.api.patch(service, "metallb", {"metadata": {"annotations": {}}})
                self.api.write_status(service, {"loadBalancer": {}})
            return None
        pools = self.cache.list(API_VERSION, "IPAddressPool", self.config.metallb_namespace)
        if self.keeps_its_address(service, pools):
            return None
        if wait := self.wait(service, "allocating", "network"):
            return wait
        try:
            pool, addresses = self.choose(service, pools)
        except AllocationFailed as failure:
            key = f"{namespace_of(service)}/{name_of(service)}"
            message = f"Failed to allocate IP for {key!r}: {failure}".replace("'", '"')
            self.api.event(service, "AllocationFailed", message, component=COMPONENT, warning=True)
            self.api.write_status(service, {"loadBalancer": {}})
            return None
        self.api.patch(service, "metallb", {"metadata": {"annotations": {ALLOCATED_FROM: pool}}})
        ingress = [{"ip": address} for address in addresses]
        self.api.write_status(service, {"loadBalancer": {"ingress": ingress}})
        message = "Assigned IP [" + ", ".join(f'"{address}"' for address in addresses) + "]"
        self.api.event(service, "IPAllocated", message, component=COMPONENT)
        return None

    def keeps_its_address(self, service: Manifest, pools: list[Manifest]) -> bool:
        """An assigned address stays while its pool still holds it."""
        pool = pool_named(pools, annotations_of(service).get(ALLOCATED_FROM))
        addresses = ingress_addresses(service)
        return (
            pool is not None
            and bool(addresses)
            and all(address in pool_addresses(pool, version) for address, version in addresses)
        )

    def choose(self, service: Manifest, pools: list[Manifest]) -> tuple[str, list[str]]:
        """The pool and one address per family; ``AllocationFailed`` says why not."""
        annotations = annotations_of(service)
        requested = [
            each.strip()
            for each in annotations.get(
                REQUESTED_IPS, dig(service, "spec", "loadBalancerIP", default="")
            ).split(",")
            if each.strip()
        ]
        candidates = self.pools_for(
            service, pools, annotations.get(REQUESTED_POOL), bool(requested)
        )
        if not candidates:
            raise AllocationFailed("no available IPs")
        in_use = self.addresses_in_use(exclude=service)
        families = [
            FAMILIES.get(family, 4)
            for family in dig(service, "spec", "ipFamilies", default=["IPv4"])
        ]
        for pool in candidates:
            chosen = []
            for version in families:
                free = pool_addresses(pool, version) - AddressSet.parse(in_use, version)
                wanted = [
                    address
                    for address in requested
                    if address in AddressSet.parse([address], version)
                ]
                if wanted:
                    if wanted[0] not in free:
                        raise AllocationFailed(
                            f"{wanted[0]!r} is not allowed in config or already in use"
                        )
                    chosen.append(wanted[0])
                elif (address := free.first_free()) is not None:
                    chosen.append(address)
            if len(chosen) == len(families):
                return name_of(pool), chosen
        raise AllocationFailed("no available IPs")

    def pools_for(
        self, service: Manifest, pools: list[Manifest], named: str | None, pinned: bool
    ) -> list[Manifest]:
        """Pools the Service may draw from, most preferred first: pools whose
        ``serviceAllocation`` matches, by priority (lower first), then unrestricted pools."""
        namespace = self.api.find("v1", "Namespace", namespace_of(service))
        namespace_labels = labels_of(namespace) if namespace else {}
        usable = []
        for pool in pools:
            spec = pool.get("spec") or {}
            if named is not None and name_of(pool) != named:
                continue
            if named is None and not pinned and spec.get("autoAssign") is False:
                continue
            allocation = spec.get("serviceAllocation")
            if allocation and not allows(allocation, service, namespace_labels):
                continue
            priority = (allocation or {}).get("priority") or float("inf")
            usable.append(((allocation is None, priority, name_of(pool)), pool))
        return [pool for _, pool in sorted(usable, key=lambda entry: entry[0])]

    def addresses_in_use(self, *, exclude: Manifest) -> list[str]:
        return [
            address
            for service in self.api.list("v1", "Service")
            if Ref.of(service) != Ref.of(exclude)
            for address, _ in ingress_addresses(service)
        ]

    def wake(self, pool: Manifest) -> Iterable[Ref]:
        """A pool appeared or changed: Services still waiting for an address may fit now."""
        if namespace_of(pool) != self.config.metallb_namespace:
            return
        for service in self.runtime.store.list("v1", "Service"):
            if handled_by_metallb(service) and not ingress_addresses(service):
                yield Ref.of(service)


class AddressPoolController(Controller):
    """MetalLB's pool-status controller: assigned and available counts (§8)."""

    api_version = API_VERSION
    kind = "IPAddressPool"
    wakes_on = (("v1", "Service"),)

    def reconcile(self, pool: Manifest) -> float | None:
        if namespace_of(pool) != self.config.metallb_namespace:
            return None  # MetalLB does not read pools outside its namespace
        assigned = [
            address
            for service in self.api.list("v1", "Service")
            if annotations_of(service).get(ALLOCATED_FROM) == name_of(pool)
            for address, _ in ingress_addresses(service)
        ]
        status: Manifest = {}
        for version in (4, 6):
            total = pool_addresses(pool, version)
            taken = (total & AddressSet.parse(assigned, version)).count
            status |= {
                f"assignedIPv{version}": taken,
                f"availableIPv{version}": total.count - taken,
            }
        self.api.write_status(pool, status)
        return None

    def wake(self, service: Manifest) -> Iterable[Ref]:
        if name := annotations_of(service).get(ALLOCATED_FROM):
            yield self.ref(name, self.config.metallb_namespace)


def handled_by_metallb(service: Manifest) -> bool:
    """MetalLB serves LoadBalancer Services that name no other load-balancer class."""
    spec = service.get("spec") or {}
    return spec.get("type") == "LoadBalancer" and not spec.get("loadBalancerClass")


def allows(allocation: Manifest, service: Manifest, namespace_labels: dict[str, str]) -> bool:
    namespaces = allocation.get("namespaces") or []
    namespace_selectors = allocation.get("namespaceSelectors") or []
    service_selectors = allocation.get("serviceSelectors") or []
    namespace_ok = (not namespaces and not namespace_selectors) or (
        namespace_of(service) in namespaces
        or any(selector_matches(each, namespace_labels) for each in namespace_selectors)
    )
    service_ok = not service_selectors or any(
        selector_matches(each, labels_of(service)) for each in service_selectors
    )
    return namespace_ok and service_ok


def pool_addresses(pool: Manifest, version: int) -> AddressSet:
    addresses = AddressSet.parse(dig(pool, "spec", "addresses", default=[]), version)
    return addresses.without_buggy_addresses() if dig(pool, "spec", "avoidBuggyIPs") else addresses


def pool_named(pools: list[Manifest], name: str | None) -> Manifest | None:
    return next((pool for pool in pools if name_of(pool) == name), None)


def ingress_addresses(service: Manifest) -> list[tuple[str, int]]:
    found = []
    for entry in dig(service, "status", "loadBalancer", "ingress", default=[]):
        if address := entry.get("ip"):
            found.append((address, 6 if ":" in address else 4))
    return found
