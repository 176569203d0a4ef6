"""Tenant networks: address allocation (in the database) and their Kubernetes objects.

Allocation happens inside the transaction that creates the tenant or changes its quota, with
the pool rows locked, so two tenants never get the same subnet or address. Applying to
Kubernetes happens later, in a task, from what the database says.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from ipaddress import IPv4Address, IPv4Network
from typing import Any, TypeVar

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone

from butler_portal.explain import Said, explain
from butler_portal.kube.errors import Invalid, KubeError, NotFound
from butler_portal.kube.served import RETRYABLE_ERRORS, waiting_reason
from butler_portal.realtime import publish_tenant_event
from butler_portal.tasks import enqueue_after_commit
from tenants.addressing import AddressSpaceExhausted, Span, carve, next_free_subnet, trim
from tenants.audit import Actor, audit_record, diff
from tenants.manifests import TenantPlan, address_share_manifests, tenant_manifests
from tenants.models import (
    LoadBalancerBlock,
    LoadBalancerRange,
    Quota,
    SubnetPool,
    Tenant,
    TenantNetwork,
    dns_label_validator,
)
from tenants.signals import tenant_namespace_applied

logger = logging.getLogger(__name__)

NETWORK_EVENT = "network.changed"

#: What a failed network says when Kubernetes' words are not known (``explain``): the
#: operators fix it and retry, nothing in the tenant can.
REJECTED = (
    "Kubernetes did not accept the network's settings. The platform operators need to fix them."
)
REFUSED = "Kubernetes refused to set up the network. The platform operators need to look at it."
SUBNET_FAILED = "The subnet could not be set up. The platform operators need to look at it."


def namespace_for(slug: str) -> str:
    return f"{settings.TENANT_NAMESPACE_PREFIX}{slug}"


# --- Allocation (inside the caller's transaction) -----------------------------------------


def network_allocate(*, tenant: Tenant) -> TenantNetwork:
    """Give a new tenant its namespace name, a free subnet and its load-balancer share."""
    pools = list(SubnetPool.objects.select_for_update().order_by("created_at", "id"))
    if not pools:
        # First tenant on a fresh install: start from the configured default supernet.
        pools = [
            SubnetPool.objects.get_or_create(
                name="default",
                defaults={
                    "cidr": settings.TENANT_SUBNET_SUPERNET,
                    "subnet_prefix_length": settings.TENANT_SUBNET_PREFIX_LENGTH,
                },
            )[0]
        ]
    taken = [
        cidr
        for cidr in TenantNetwork.objects.values_list("subnet_cidr", flat=True)
        if cidr is not None
    ]
    for pool in pools:
        try:
            cidr = next_free_subnet(pool.cidr, pool.subnet_prefix_length, taken)
        except AddressSpaceExhausted:
            continue
        network = TenantNetwork.objects.create(
            tenant=tenant, namespace=namespace_for(tenant.slug), subnet_pool=pool, subnet_cidr=cidr
        )
        break
    else:
        raise ValidationError({"__all__": "Every subnet pool is full: an operator must add one."})
    lb_share_resize(tenant=tenant, count=Quota.objects.get(tenant=tenant).load_balancer_ips)
    return network


def lb_share_resize(*, tenant: Tenant, count: int) -> list[LoadBalancerBlock]:
    """Grow or shrink the tenant's MetalLB share to ``count`` addresses.

    Growing adds blocks first-fit (one contiguous block when there is room); shrinking cuts
    from the end, so the addresses handed out first stay put.
    """
    ranges = list(LoadBalancerRange.objects.select_for_update().order_by("created_at", "id"))
    blocks = list(LoadBalancerBlock.objects.filter(tenant=tenant).order_by("first"))
    held = sum(block.size for block in blocks)
    if count < held:
        kept = trim([Span(block.first, block.last) for block in blocks], count)
        for block, span in zip(blocks, kept + [None] * len(blocks), strict=False):
            if span is None:
                block.delete()
            elif span.last != block.last:
                block.last = span.last
                block.save(update_fields=["last"])
    elif count > held:
        taken = [
            (block.address_range_id, Span(block.first, block.last))
            for block in LoadBalancerBlock.objects.filter(address_range__in=ranges)
        ]
        whole = [(r.pk, Span.between(r.first_address, r.last_address)) for r in ranges]
        try:
            picked = carve(whole, taken, count - held)
        except AddressSpaceExhausted as error:
            raise ValidationError(
                {"load_balancer_ips": f"Not enough free load-balancer addresses: {error}."}
            ) from error
        for range_id, span in picked:
            LoadBalancerBlock.objects.create(
                tenant=tenant, address_range_id=range_id, first=span.first, last=span.last
            )
        _merge_adjacent_blocks(tenant)
    return list(LoadBalancerBlock.objects.filter(tenant=tenant).order_by("first"))


def _merge_adjacent_blocks(tenant: Tenant) -> None:
    """Join blocks that touch, so a share that grew in place stays one range."""
    previous: LoadBalancerBlock | None = None
    for block in LoadBalancerBlock.objects.filter(tenant=tenant).order_by("first"):
        touching = (
            previous is not None
            and previous.address_range_id == block.address_range_id
            and previous.last + 1 == block.first
        )
        if previous is not None and touching:
            previous.last = block.last
            previous.save(update_fields=["last"])
            block.delete()
        else:
            previous = block


def tenant_plan(tenant: Tenant) -> TenantPlan:
    network = TenantNetwork.objects.get(tenant=tenant)
    return TenantPlan(
        slug=tenant.slug,
        namespace=network.namespace,
        suspended=tenant.state == Tenant.State.SUSPENDED,
        limits=Quota.objects.get(tenant=tenant).limits(),
        subnet_cidr=network.subnet_cidr,
        lb_ranges=[block.as_range() for block in tenant.lb_blocks.order_by("first")],
    )


def network_request_apply(*, tenant: Tenant) -> None:
    """Ask for the tenant's Kubernetes objects to be (re)applied once this transaction commits."""
    from tenants.tasks import apply_tenant

    TenantNetwork.objects.filter(tenant=tenant).exclude(state=TenantNetwork.State.DELETING).update(
        state=TenantNetwork.State.PROVISIONING, message=""
    )
    enqueue_after_commit(apply_tenant, tenant.pk)


# --- Applying (called by tasks) -----------------------------------------------------------


def network_apply(*, tenant_id: int) -> None:
    """Converge Kubernetes to the tenant's plan. Idempotent; what may pass by itself
    (``RETRYABLE_ERRORS``) propagates for the task to retry."""
    from butler_portal.kube import kube_client

    tenant = Tenant.objects.filter(pk=tenant_id).first()
    if tenant is None or not TenantNetwork.objects.filter(tenant=tenant).exists():
        return
    client = kube_client()
    if client is None:
        _record(tenant, TenantNetwork.State.PENDING, Said("No Kubernetes cluster is configured."))
        return
    plan = tenant_plan(tenant)
    try:
        for manifest in tenant_manifests(plan):
            client.apply(manifest)
        if not plan.lb_ranges:
            for manifest in address_share_manifests(plan):
                client.delete_manifest(manifest)
    except RETRYABLE_ERRORS as error:
        # It goes away without a person (the server is back, the component installed):
        # say what it waits for, and let the task try again with backoff.
        _note_waiting(tenant, waiting_reason(error))
        raise
    except Invalid as error:
        _record(
            tenant,
            TenantNetwork.State.FAILED,
            explain(error.summary, fallback=REJECTED) or Said(REJECTED),
        )
        return
    except KubeError as error:
        _record(
            tenant,
            TenantNetwork.State.FAILED,
            explain(error.message, fallback=REFUSED) or Said(REFUSED),
        )
        return
    first_time = TenantNetwork.objects.filter(tenant=tenant, applied_at__isnull=True).exists()
    TenantNetwork.objects.filter(tenant=tenant).update(applied_at=timezone.now(), message="")
    network_refresh_state(tenant_id=tenant.pk)
    if first_time:
        # Clusters and VMs asked for before the namespace existed go ahead now.
        tenant_namespace_applied.send(sender=TenantNetwork, tenant_id=tenant.pk)


def network_teardown(*, tenant_id: int) -> bool:
    """Delete the tenant's Kubernetes objects; True once they are gone (or going).

    The namespace takes its namespaced objects with it; the cluster-scoped Vpc and Subnet and
    the MetalLB objects in MetalLB's namespace are deleted one by one.
    """
    from butler_portal.kube import kube_client

    tenant = Tenant.objects.filter(pk=tenant_id).first()
    if tenant is None:
        return True
    client = kube_client()
    if client is None or not TenantNetwork.objects.filter(tenant=tenant).exists():
        return True
    plan = tenant_plan(tenant)
    manifests = tenant_manifests(plan) + address_share_manifests(plan)
    for manifest in reversed(manifests):
        client.delete_manifest(manifest)
    for manifest in manifests:
        try:
            found = client.get_manifest(manifest)
        except NotFound:
            continue
        # Without a namespace controller (a bare API server) a namespace stays Terminating;
        # deletion is under way, which is all the portal needs to know.
        if not found.get("metadata", {}).get("deletionTimestamp"):
            return False
    return True


# --- Observed status (called by the watcher) ----------------------------------------------


def _condition(obj: dict[str, Any], kind: str) -> dict[str, Any]:
    for condition in obj.get("status", {}).get("conditions") or []:
        if condition.get("type") == kind:
            return dict(condition)
    return {}


def network_observe(*, kind: str, obj: dict[str, Any]) -> int | None:
    """Store what Kube-OVN or MetalLB reports about a tenant's object; returns the tenant id."""
    name = obj.get("metadata", {}).get("name", "")
    network = TenantNetwork.objects.filter(namespace=name).first()
    if network is None:
        return None
    status = obj.get("status") or {}
    updates: dict[str, Any] = {}
    if kind == "Vpc":
        updates["vpc_ready"] = bool(status.get("standby"))
    elif kind == "Subnet":
        ready, error = _condition(obj, "Ready"), _condition(obj, "Error")
        updates["subnet_ready"] = ready.get("status") == "True"
        updates["subnet_available_ips"] = status.get("v4availableIPs")
        updates["subnet_used_ips"] = status.get("v4usingIPs")
        if error.get("status") == "True":
            said = explain(error.get("message") or error.get("reason"), fallback=SUBNET_FAILED)
            logger.warning("tenant network %s: Kube-OVN reports: %s", name, said.raw)
            updates["message"] = said.text
    elif kind == "IPAddressPool":
        updates["address_pool_ready"] = "availableIPv4" in status
        updates["lb_assigned_ips"] = status.get("assignedIPv4")
        updates["lb_available_ips"] = status.get("availableIPv4")
    # A relist hands every object over again: only real changes reach the browsers.
    changed = {field: value for field, value in updates.items() if getattr(network, field) != value}
    if changed:
        with transaction.atomic():
            _lock_tenant(network.tenant_id)
            TenantNetwork.objects.filter(pk=network.pk).update(**changed)
            network_refresh_state(tenant_id=network.tenant_id)
    return network.tenant_id


def _lock_tenant(tenant_id: int) -> None:
    """Lock the tenant row before its network row, the order quota_update takes them in.

    Updating the network row twice in one transaction makes Postgres check its foreign key
    at commit, which needs a share lock on the tenant: taken the other way round, the watcher
    and a quota change deadlocked (seen under the console benchmark).
    """
    Tenant.objects.select_for_update().only("pk").get(pk=tenant_id)


def network_refresh_state(*, tenant_id: int) -> None:
    """Derive the overall state from the parts, and tell the tenant's browsers."""
    with transaction.atomic():
        _lock_tenant(tenant_id)
        # Locked: the watcher, a task and a request may derive the state at the same time.
        network = (
            TenantNetwork.objects.select_for_update(of=("self",))
            .select_related("tenant")
            .get(tenant_id=tenant_id)
        )
        state = _derived_state(network)
        TenantNetwork.objects.filter(pk=network.pk).update(state=state)
    toast = _state_toast(network.tenant, network.state, state, network.message)
    publish_tenant_event(tenant_id, NETWORK_EVENT, network.pk, state=state, **toast)


def _derived_state(network: TenantNetwork) -> str:
    if network.state in {TenantNetwork.State.FAILED, TenantNetwork.State.DELETING}:
        state = network.state
    else:
        needs_pool = network.tenant.lb_blocks.exists()
        ready = network.vpc_ready and network.subnet_ready
        ready = ready and (network.address_pool_ready or not needs_pool)
        state = TenantNetwork.State.READY if ready else TenantNetwork.State.PROVISIONING
    return state


def _record(tenant: Tenant, state: str, said: Said) -> None:
    """Store the state and why in plain words; Kubernetes' own words go to the log, for the
    operators who fix it."""
    logger.warning("tenant %s network %s: %s", tenant.slug, state, said.raw or said.text)
    message = said.text
    network = TenantNetwork.objects.filter(tenant=tenant).values("pk", "state").first()
    if network is None:
        return
    TenantNetwork.objects.filter(pk=network["pk"]).update(state=state, message=message)
    toast = _state_toast(tenant, network["state"], state, message)
    # The event names the network, as network_refresh_state's do.
    publish_tenant_event(tenant.pk, NETWORK_EVENT, network["pk"], state=state, **toast)


def _note_waiting(tenant: Tenant, message: str) -> None:
    """Say why applying waits, without changing the state (it is still on its way)."""
    network = TenantNetwork.objects.filter(tenant=tenant).values("pk", "state", "message").first()
    if network is None or network["message"] == message:
        return
    TenantNetwork.objects.filter(pk=network["pk"]).update(message=message)
    publish_tenant_event(tenant.pk, NETWORK_EVENT, network["pk"], state=network["state"])


def _state_toast(tenant: Tenant, before: str, after: str, message: str) -> dict[str, str]:
    """A notification for the tenant's open pages (``live.js``) when the network becomes
    ready or fails; nothing for steps in between or a state that did not change."""
    if before == after:
        return {}
    if after == TenantNetwork.State.READY:
        return {"toast": f"The network of {tenant.name} is ready.", "level": "success"}
    if after == TenantNetwork.State.FAILED:
        reason = f": {message}" if message else "."
        return {"toast": f"The network of {tenant.name} failed{reason}", "level": "error"}
    return {}


# --- Operator services: subnet pools and load-balancer ranges ------------------------------
#
# Operators shape the address plan; ``network_allocate`` and ``lb_share_resize`` carve the
# tenants' subnets and shares out of it. The rules: IPv4 only; no two pools or ranges
# overlap (a pool overlapping a public range would hand one address out twice); nothing
# shrinks or goes away while a tenant holds addresses in it.

#: The smallest tenant subnet: Kube-OVN keeps the first ten addresses out of automatic
#: assignment (``reserved_range``), so a /28 leaves four for workloads.
MAX_SUBNET_PREFIX_LENGTH = 28
#: Key of the advisory lock that serialises changes to the address plan (any constant does).
ADDRESS_PLAN_LOCK = 0x4255544C
#: How many tenants a refusal names before "and others".
TENANTS_NAMED = 5

_Checked = TypeVar("_Checked")


def _lock_address_plan() -> None:
    """Serialise pool and range changes: the row two changes would conflict on may not
    exist yet, so row locks cannot do it. (SQLite already serialises writers.)"""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [ADDRESS_PLAN_LOCK])


def _collect(errors: dict[str, list[str]], check: Callable[[], _Checked]) -> _Checked | None:
    """Run one check, adding its field errors to ``errors``: a form shows them all at once."""
    try:
        return check()
    except ValidationError as error:
        for field, messages in error.message_dict.items():
            errors.setdefault(field, []).extend(messages)
        return None


def _checked_name(
    model: type[SubnetPool | LoadBalancerRange], name: str, exclude_pk: int | None = None
) -> str:
    name = name.strip()
    try:
        dns_label_validator(name)
    except ValidationError as error:
        raise ValidationError({"name": error.messages}) from error
    if model._default_manager.filter(name=name).exclude(pk__in=_ids(exclude_pk)).exists():
        raise ValidationError({"name": f"There is already one named {name}."})
    return name


def _checked_network(cidr: str) -> IPv4Network:
    text = cidr.strip()
    try:
        return IPv4Network(text)
    except ValueError:
        pass
    try:
        meant = IPv4Network(text, strict=False)
    except ValueError:
        raise ValidationError(
            {"cidr": "Enter an IPv4 network in CIDR notation, e.g. 10.200.0.0/16."}
        ) from None
    raise ValidationError({"cidr": f"{text} has host bits set: did you mean {meant}?"})


def _checked_prefix_length(network: IPv4Network, prefix_length: int) -> int:
    if not network.prefixlen <= prefix_length <= MAX_SUBNET_PREFIX_LENGTH:
        raise ValidationError(
            {
                "subnet_prefix_length": (
                    f"Choose a size from /{network.prefixlen} (the whole pool) "
                    f"to /{MAX_SUBNET_PREFIX_LENGTH}."
                )
            }
        )
    return prefix_length


def _checked_address(field: str, text: str) -> IPv4Address:
    try:
        address = IPv4Address(text.strip())
    except ValueError:
        raise ValidationError({field: "Enter an IPv4 address, e.g. 192.0.2.10."}) from None
    if (
        address.is_unspecified
        or address.is_loopback
        or address.is_multicast
        or address.is_link_local
        or address.is_reserved
    ):
        raise ValidationError({field: f"{address} cannot be given to a load balancer."})
    return address


def _span_of(network: IPv4Network) -> Span:
    return Span(int(network.network_address), int(network.broadcast_address))


def _ids(pk: int | None) -> list[int]:
    """``exclude(pk__in=...)`` of "the row being changed", if any."""
    return [] if pk is None else [pk]


def _overlap(span: Span, *, pool_pk: int | None = None) -> str:
    """What ``span`` overlaps among the pools (but the one being changed) and ranges, or ""."""
    for pool in SubnetPool.objects.exclude(pk__in=_ids(pool_pk)):
        other = _span_of(IPv4Network(pool.cidr))
        if other.first <= span.last and span.first <= other.last:
            return f"Overlaps the subnet pool {pool.name} ({pool.cidr})."
    for address_range in LoadBalancerRange.objects.all():
        other = Span.between(address_range.first_address, address_range.last_address)
        if other.first <= span.last and span.first <= other.last:
            return f"Overlaps the load-balancer range {address_range.name} ({other})."
    return ""


def _named(slugs: list[str]) -> str:
    """Tenant slugs for a message, the first few of them."""
    shown = ", ".join(slugs[:TENANTS_NAMED])
    return f"{shown} and others" if len(slugs) > TENANTS_NAMED else shown


def _pool_room(network: IPv4Network, pool: SubnetPool | None) -> None:
    """Refuse a pool that overlaps others or (when changing one) leaves out its tenants."""
    overlap = _overlap(_span_of(network), pool_pk=pool.pk if pool else None)
    if overlap:
        raise ValidationError({"cidr": overlap})
    if pool is None:
        return
    held = TenantNetwork.objects.filter(subnet_pool=pool, subnet_cidr__isnull=False)
    left_out = [
        slug
        for slug, cidr in held.order_by("tenant__slug").values_list("tenant__slug", "subnet_cidr")
        if cidr is not None and not IPv4Network(cidr).subnet_of(network)
    ]
    if left_out:
        raise ValidationError(
            {
                "cidr": (
                    f"{network} would leave out the subnets of {_named(left_out)}: "
                    "a pool cannot shrink below what tenants hold."
                )
            }
        )


def _pool_fields(pool: SubnetPool) -> dict[str, Any]:
    return {
        "name": pool.name,
        "cidr": pool.cidr,
        "subnet_prefix_length": pool.subnet_prefix_length,
    }


def _checked_pool(
    name: str, cidr: str, prefix_length: int, pool: SubnetPool | None
) -> tuple[str, IPv4Network, int]:
    """A pool's fields as they may be saved, or every reason they may not, by field."""
    errors: dict[str, list[str]] = {}
    checked_name = _collect(
        errors, lambda: _checked_name(SubnetPool, name, exclude_pk=pool.pk if pool else None)
    )
    network = _collect(errors, lambda: _checked_network(cidr))
    checked_length = None
    if network is not None:
        checked_length = _collect(errors, lambda: _checked_prefix_length(network, prefix_length))
        _collect(errors, lambda: _pool_room(network, pool=pool))
    if errors or checked_name is None or network is None or checked_length is None:
        raise ValidationError(errors)
    return checked_name, network, checked_length


@transaction.atomic
def subnet_pool_create(
    *, actor: Actor, name: str, cidr: str, subnet_prefix_length: int
) -> SubnetPool:
    """Add a supernet that new tenants' subnets are taken from (after the older pools)."""
    _lock_address_plan()
    checked_name, network, prefix_length = _checked_pool(
        name, cidr, subnet_prefix_length, pool=None
    )
    pool = SubnetPool.objects.create(
        name=checked_name, cidr=str(network), subnet_prefix_length=prefix_length
    )
    audit_record(
        actor=actor,
        action="create",
        tenant=None,
        target=pool,
        object_type="subnet_pool",
        changes=_pool_fields(pool),
    )
    return pool


@transaction.atomic
def subnet_pool_update(
    *,
    actor: Actor,
    pool: SubnetPool,
    name: str | None = None,
    cidr: str | None = None,
    subnet_prefix_length: int | None = None,
) -> SubnetPool:
    """Rename, grow or shrink a pool, or change the size of the subnets it gives from now on
    (fields left None stay). Tenants keep their subnets: shrinking below one is refused."""
    _lock_address_plan()
    locked = SubnetPool.objects.select_for_update().get(pk=pool.pk)
    before = _pool_fields(locked)
    checked_name, network, prefix_length = _checked_pool(
        locked.name if name is None else name,
        locked.cidr if cidr is None else cidr,
        locked.subnet_prefix_length if subnet_prefix_length is None else subnet_prefix_length,
        pool=locked,
    )
    locked.name = checked_name
    locked.cidr = str(network)
    locked.subnet_prefix_length = prefix_length
    locked.save(update_fields=["name", "cidr", "subnet_prefix_length"])
    changes = diff(before, _pool_fields(locked))
    if changes:
        audit_record(
            actor=actor,
            action="update",
            tenant=None,
            target=locked,
            object_type="subnet_pool",
            changes=changes,
        )
    return locked


@transaction.atomic
def subnet_pool_delete(*, actor: Actor, pool: SubnetPool) -> None:
    """Remove an empty pool. One that tenants hold subnets in, or the last one, stays."""
    _lock_address_plan()
    locked = SubnetPool.objects.select_for_update().get(pk=pool.pk)
    holders = list(
        TenantNetwork.objects.filter(subnet_pool=locked)
        .order_by("tenant__slug")
        .values_list("tenant__slug", flat=True)[: TENANTS_NAMED + 1]
    )
    if holders:
        raise ValidationError(
            {
                "__all__": (
                    f"Tenants hold subnets in {locked.name} ({_named(holders)}): "
                    "it can be deleted once they are gone."
                )
            }
        )
    if not SubnetPool.objects.exclude(pk=locked.pk).exists():
        raise ValidationError(
            {"__all__": "This is the last subnet pool: add another one before deleting it."}
        )
    audit_record(
        actor=actor,
        action="delete",
        tenant=None,
        target=locked,
        object_type="subnet_pool",
        changes=_pool_fields(locked),
    )
    locked.delete()


def _range_room(first: IPv4Address, last: IPv4Address) -> None:
    if last < first:
        raise ValidationError({"last_address": "Must not come before the first address."})
    overlap = _overlap(Span(int(first), int(last)))
    if overlap:
        # On the end that lies inside the other range, or on the last if it swallows one.
        inside = _overlap(Span(int(first), int(first)))
        raise ValidationError({"first_address" if inside else "last_address": overlap})


@transaction.atomic
def lb_range_create(
    *, actor: Actor, name: str, first_address: str, last_address: str
) -> LoadBalancerRange:
    """Add public addresses that tenants' MetalLB shares are taken from (after older ranges)."""
    _lock_address_plan()
    errors: dict[str, list[str]] = {}
    checked_name = _collect(errors, lambda: _checked_name(LoadBalancerRange, name))
    first = _collect(errors, lambda: _checked_address("first_address", first_address))
    last = _collect(errors, lambda: _checked_address("last_address", last_address))
    if first is not None and last is not None:
        _collect(errors, lambda: _range_room(first, last))
    if errors or checked_name is None or first is None or last is None:
        raise ValidationError(errors)
    address_range = LoadBalancerRange.objects.create(
        name=checked_name, first_address=str(first), last_address=str(last)
    )
    audit_record(
        actor=actor,
        action="create",
        tenant=None,
        target=address_range,
        object_type="load_balancer_range",
        changes={"first_address": str(first), "last_address": str(last)},
    )
    return address_range


@transaction.atomic
def lb_range_delete(*, actor: Actor, address_range: LoadBalancerRange) -> None:
    """Remove a range no tenant holds addresses in."""
    _lock_address_plan()
    locked = LoadBalancerRange.objects.select_for_update().get(pk=address_range.pk)
    holders = list(
        LoadBalancerBlock.objects.filter(address_range=locked)
        .order_by("tenant__slug")
        .values_list("tenant__slug", flat=True)
        .distinct()[: TENANTS_NAMED + 1]
    )
    if holders:
        raise ValidationError(
            {
                "__all__": (
                    f"Tenants hold addresses in {locked.name} ({_named(holders)}): "
                    "it can be deleted once they have none there."
                )
            }
        )
    audit_record(
        actor=actor,
        action="delete",
        tenant=None,
        target=locked,
        object_type="load_balancer_range",
        changes={"first_address": locked.first_address, "last_address": locked.last_address},
    )
    locked.delete()
