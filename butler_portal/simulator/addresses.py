"""Sets of IP addresses, for the two address allocators (Kube-OVN subnets, MetalLB pools).

A set is kept as sorted, merged integer spans, so a /16 costs one span, and prints the way
both projects print ranges: ``"10.100.0.11-10.100.0.254"`` (single addresses alone, spans
joined by commas).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Iterator
from dataclasses import dataclass


def address_version(text: str) -> int:
    head = text.replace("..", "-").split("-")[0].split("/")[0].strip()
    return ipaddress.ip_address(head).version


@dataclass(frozen=True)
class AddressSet:
    version: int
    spans: tuple[tuple[int, int], ...] = ()

    @classmethod
    def parse(cls, entries: Iterable[str], version: int) -> AddressSet:
        """CIDRs, ``a-b`` (MetalLB) or ``a..b`` (Kube-OVN) ranges and single addresses;
        entries of the other IP version are skipped."""
        spans = []
        for entry in entries:
            text = entry.strip().replace("..", "-")
            if not text or address_version(text) != version:
                continue
            if "/" in text:
                network = ipaddress.ip_network(text, strict=False)
                spans.append((int(network.network_address), int(network.broadcast_address)))
            elif "-" in text:
                first, last = (ipaddress.ip_address(part.strip()) for part in text.split("-", 1))
                spans.append((int(first), int(last)))
            else:
                spans.append((int(ipaddress.ip_address(text)),) * 2)
        return cls(version, _merged(spans))

    def __or__(self, other: AddressSet) -> AddressSet:
        return AddressSet(self.version, _merged([*self.spans, *other.spans]))

    def __sub__(self, other: AddressSet) -> AddressSet:
        remaining: list[tuple[int, int]] = []
        for first, last in self.spans:
            for cut_first, cut_last in other.spans:
                if cut_last < first or cut_first > last:
                    continue
                if cut_first > first:
                    remaining.append((first, cut_first - 1))
                first = cut_last + 1
                if first > last:
                    break
            if first <= last:
                remaining.append((first, last))
        return AddressSet(self.version, tuple(remaining))

    def __and__(self, other: AddressSet) -> AddressSet:
        return self - (self - other)

    def __contains__(self, address: object) -> bool:
        if not isinstance(address, str):
            return False
        try:
            value = ipaddress.ip_address(address)
        except ValueError:
            return False
        return value.version == self.version and any(
            first <= int(value) <= last for first, last in self.spans
        )

    def __iter__(self) -> Iterator[str]:
        for first, last in self.spans:
            for value in range(first, last + 1):
                yield str(ipaddress.ip_address(value))

    @property
    def count(self) -> int:
        return sum(last - first + 1 for first, last in self.spans)

    def first_free(self) -> str | None:
        return next(iter(self), None)

    def without_buggy_addresses(self) -> AddressSet:
        """Without IPv4 addresses ending in .0 or .255 (MetalLB's ``avoidBuggyIPs``)."""
        if self.version != 4:
            return self
        buggy = [
            (value, value)
            for first, last in self.spans
            for block in range(first - first % 256, last + 1, 256)
            for value in (block, block + 255)
            if first <= value <= last
        ]
        return self - AddressSet(4, tuple(buggy))

    def __str__(self) -> str:
        def text(value: int) -> str:
            return str(ipaddress.ip_address(value))

        return ",".join(
            text(first) if first == last else f"{text(first)}-{text(last)}"
            for first, last in self.spans
        )


def usable_hosts(cidr: str) -> AddressSet:
    """The addresses of a subnet a host can take: not the network address, nor (IPv4) the
    broadcast address."""
    network = ipaddress.ip_network(cidr.strip(), strict=False)
    first, last = int(network.network_address), int(network.broadcast_address)
    if network.num_addresses > 2:
        first += 1
        last -= 1 if network.version == 4 else 0
    return AddressSet(network.version, ((first, last),))


def _merged(spans: Iterable[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    merged: list[tuple[int, int]] = []
    for first, last in sorted(spans):
        if merged and first <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], last))
        else:
            merged.append((first, last))
    return tuple(merged)
