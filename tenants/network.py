"""Tenant networks: address allocation (in the database) and their Kubernetes objects.

Allocation happens inside the transaction that creates the tenant or changes its quota, with
the pool rows locked, so two tenants never get the same subnet or address. Applying to
Kubernetes happens later, in a task, from what the database says.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from butler_portal.kube.errors import Invalid, KubeError, NotFound, Transient
from butler_portal.realtime import publish_tenant_event
from tenants.addressing import AddressSpaceExhausted, Span, carve, next_free_subnet, trim
from tenants.manifests import TenantPlan, address_share_manifests, tenant_manifests
from tenants.models import (
    LoadBalancerBlock,
    LoadBalancerRange,
    Quota,
    SubnetPool,
    Tenant,
    TenantNetwork,
)

logger = logging.getLogger(__name__)

NETWORK_EVENT = "network.changed"


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
    transaction.on_commit(lambda: apply_tenant.delay(tenant.pk))


# --- Applying (called by tasks) -----------------------------------------------------------


def network_apply(*, tenant_id: int) -> None:
    """Converge Kubernetes to the tenant's plan. Idempotent; ``Transient`` propagates for retry."""
    from butler_portal.kube import kube_client

    tenant = Tenant.objects.filter(pk=tenant_id).first()
    if tenant is None or not TenantNetwork.objects.filter(tenant=tenant).exists():
        return
    client = kube_client()
    if client is None:
        _record(tenant, TenantNetwork.State.PENDING, "No Kubernetes cluster is configured.")
        return
    plan = tenant_plan(tenant)
    try:
        for manifest in tenant_manifests(plan):
            client.apply(manifest)
        if not plan.lb_ranges:
            for manifest in address_share_manifests(plan):
                client.delete_manifest(manifest)
    except Transient:
        raise
    except Invalid as error:
        _record(
            tenant, TenantNetwork.State.FAILED, f"Kubernetes rejected the network: {error.summary}"
        )
        return
    except KubeError as error:
        _record(
            tenant, TenantNetwork.State.FAILED, f"Kubernetes refused the network: {error.message}"
        )
        return
    TenantNetwork.objects.filter(tenant=tenant).update(applied_at=timezone.now())
    network_refresh_state(tenant_id=tenant.pk)


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
            updates["message"] = f"Subnet error: {error.get('message') or error.get('reason')}"
    elif kind == "IPAddressPool":
        updates["address_pool_ready"] = "availableIPv4" in status
        updates["lb_assigned_ips"] = status.get("assignedIPv4")
        updates["lb_available_ips"] = status.get("availableIPv4")
    if updates:
        TenantNetwork.objects.filter(pk=network.pk).update(**updates)
        network_refresh_state(tenant_id=network.tenant_id)
    return network.tenant_id


def network_refresh_state(*, tenant_id: int) -> None:
    """Derive the overall state from the parts, and tell the tenant's browsers."""
    network = TenantNetwork.objects.select_related("tenant").get(tenant_id=tenant_id)
    if network.state in {TenantNetwork.State.FAILED, TenantNetwork.State.DELETING}:
        state = network.state
    else:
        needs_pool = network.tenant.lb_blocks.exists()
        ready = network.vpc_ready and network.subnet_ready
        ready = ready and (network.address_pool_ready or not needs_pool)
        state = TenantNetwork.State.READY if ready else TenantNetwork.State.PROVISIONING
    TenantNetwork.objects.filter(pk=network.pk).update(state=state)
    publish_tenant_event(tenant_id, NETWORK_EVENT, network.pk, state=state)


def _record(tenant: Tenant, state: str, message: str) -> None:
    logger.warning("tenant %s network %s: %s", tenant.slug, state, message)
    TenantNetwork.objects.filter(tenant=tenant).update(state=state, message=message)
    publish_tenant_event(tenant.pk, NETWORK_EVENT, tenant.pk, state=state)
