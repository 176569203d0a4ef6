"""Address arithmetic for tenant networks: pure functions, no database, no Kubernetes.

The services lock the pool rows, read what is taken, and ask these functions for the next
free subnet or the next free addresses; the functions never allocate twice because they
only ever pick from what the caller says is free.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network


class AddressSpaceExhausted(Exception):
    """No room left: the operator has to add a pool or a range."""


def next_free_subnet(supernet: str, prefix_length: int, taken: Iterable[str]) -> str:
    """The first ``/prefix_length`` inside ``supernet`` that overlaps nothing in ``taken``."""
    network = IPv4Network(supernet)
    if prefix_length < network.prefixlen:
        raise ValueError(f"/{prefix_length} is larger than the pool {supernet}")
    taken_networks = [IPv4Network(cidr) for cidr in taken]
    for candidate in network.subnets(new_prefix=prefix_length):
        if not any(candidate.overlaps(other) for other in taken_networks):
            return str(candidate)
    raise AddressSpaceExhausted(f"no free /{prefix_length} left in {supernet}")


def gateway_of(cidr: str) -> str:
    """Kube-OVN's convention: the first host address is the gateway."""
    return str(next(IPv4Network(cidr).hosts()))


def reserved_range(cidr: str, count: int = 10) -> str:
    """The first ``count`` hosts (gateway included), kept out of automatic assignment."""
    network = IPv4Network(cidr)
    first = network.network_address + 1
    last = min(first + count - 1, network.broadcast_address - 1)
    return f"{first}..{last}"


@dataclass(frozen=True)
class Span:
    """An inclusive run of IPv4 addresses, as integers."""

    first: int
    last: int

    @property
    def size(self) -> int:
        return self.last - self.first + 1

    @classmethod
    def between(cls, first: str, last: str) -> Span:
        return cls(int(IPv4Address(first)), int(IPv4Address(last)))

    def __str__(self) -> str:
        return f"{IPv4Address(self.first)}-{IPv4Address(self.last)}"


def free_spans(whole: Span, taken: Iterable[Span]) -> list[Span]:
    """The gaps of ``whole`` not covered by ``taken``, in address order."""
    gaps: list[Span] = []
    cursor = whole.first
    for used in sorted(taken, key=lambda span: span.first):
        if used.last < cursor or used.first > whole.last:
            continue
        if used.first > cursor:
            gaps.append(Span(cursor, used.first - 1))
        cursor = max(cursor, used.last + 1)
    if cursor <= whole.last:
        gaps.append(Span(cursor, whole.last))
    return gaps


def carve(
    ranges: Sequence[tuple[int, Span]], taken: Sequence[tuple[int, Span]], count: int
) -> list[tuple[int, Span]]:
    """Pick ``count`` free addresses from ``ranges`` (keyed by range id), first fit.

    Prefers one contiguous block; falls back to several blocks when no single gap is big
    enough (a MetalLB pool takes a list of ranges, so a share may be fragmented).
    """
    if count <= 0:
        return []
    gaps = [
        (range_id, gap)
        for range_id, whole in ranges
        for gap in free_spans(whole, [span for owner, span in taken if owner == range_id])
    ]
    for range_id, gap in gaps:
        if gap.size >= count:
            return [(range_id, Span(gap.first, gap.first + count - 1))]
    picked: list[tuple[int, Span]] = []
    remaining = count
    for range_id, gap in gaps:
        size = min(gap.size, remaining)
        picked.append((range_id, Span(gap.first, gap.first + size - 1)))
        remaining -= size
        if remaining == 0:
            return picked
    free = count - remaining
    raise AddressSpaceExhausted(f"{count} load-balancer addresses needed, only {free} free")


def trim(blocks: Sequence[Span], keep: int) -> list[Span]:
    """The blocks shortened from the end so that they hold ``keep`` addresses in all."""
    kept: list[Span] = []
    remaining = keep
    for block in blocks:
        if remaining <= 0:
            break
        size = min(block.size, remaining)
        kept.append(Span(block.first, block.first + size - 1))
        remaining -= size
    return kept
