"""VM background work. Thin: an id in, a provisioning call, retries for what may pass."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from butler_portal.kube.errors import Transient
from butler_portal.kube.served import RETRYABLE_ERRORS
from butler_portal.tasks import (
    RETRY_BACKOFF_MAX,
    RETRY_FOREVER,
    enqueue_after_commit,
)
from tenants.owned import waiting_for_namespace
from vms import provisioning
from vms.models import VirtualMachine
from vms.provisioning import NamespaceNotReady, ServiceRemovalPending, TeardownPending


@shared_task(
    autoretry_for=(*RETRYABLE_ERRORS, NamespaceNotReady, ServiceRemovalPending),
    retry_backoff=2,
    retry_backoff_max=RETRY_BACKOFF_MAX,
    max_retries=RETRY_FOREVER,
)
def provision_vm(vm_id: int) -> None:
    """Apply the VM's objects (creation, power changes and exposed ports alike)."""
    provisioning.vm_provision(vm_id=vm_id)


@shared_task(autoretry_for=(Transient,), retry_backoff=2, retry_backoff_max=60, max_retries=12)
def restart_vm(vm_id: int) -> None:
    """Replace the running instance (KubeVirt starts a new one)."""
    provisioning.vm_restart_instance(vm_id=vm_id)


@shared_task(
    autoretry_for=(Transient, TeardownPending),
    retry_backoff=2,
    retry_backoff_max=60,
    max_retries=60,
)
def delete_vm(vm_id: int) -> None:
    """Delete the VM's objects; once Kubernetes confirms, its quota and row go too.

    The watcher also calls this when one of its objects disappears, so a deletion finishes
    promptly even after this task has given up retrying.
    """
    if not provisioning.vm_teardown(vm_id=vm_id):
        raise TeardownPending(vm_id)


# After commit, and robustly: the change is committed whatever happens next, so a task
# that cannot be queued (or, run eagerly in the embedded mode, gives up waiting) must not
# turn the committed request into an error. Nothing is lost: the watcher queues the work
# again when Kubernetes reports progress, and the drift reconcile re-applies what is missing.


def provision_after_commit(vm_id: int) -> None:
    """Apply the VM once the current transaction commits (never for a rolled-back change)."""
    enqueue_after_commit(provision_vm, vm_id)


def restart_after_commit(vm_id: int) -> None:
    enqueue_after_commit(restart_vm, vm_id)


def delete_after_commit(vm_id: int) -> None:
    enqueue_after_commit(delete_vm, vm_id)


def provision_those_waiting_for_namespace(sender: object, *, tenant_id: int, **kwargs: Any) -> None:
    """Receiver of ``tenants.signals.tenant_namespace_applied`` (connected in apps.py)."""
    for vm_id in waiting_for_namespace(VirtualMachine, tenant_id=tenant_id):
        provision_after_commit(vm_id)
