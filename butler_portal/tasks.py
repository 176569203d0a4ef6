"""Enqueueing background work from services, and the signals tasks retry on."""

from __future__ import annotations

from typing import Any

from celery import Task
from django.conf import settings
from django.db import transaction

#: Provisioning waits out what goes away without a person (``butler_portal.kube.served.RETRYABLE_ERRORS``: the API
#: server away, a component not installed yet, a concurrent writer) for as long as it takes,
#: backing off to ``RETRY_BACKOFF_MAX`` seconds between tries. Run eagerly (unit tests), a
#: retry happens at once inside the same call, so there it gives up after a few.
RETRY_FOREVER: int | None = 3 if settings.CELERY_TASK_ALWAYS_EAGER else None
RETRY_BACKOFF_MAX = 300


class NamespaceNotReady(Exception):
    """The tenant's namespace and network are not applied yet: try again shortly."""


class TeardownPending(Exception):
    """Kubernetes still holds some of the objects being deleted: look again later."""


def enqueue_after_commit(task: Task[Any, Any], *args: Any) -> None:
    """Queue ``task`` once the current transaction commits, never for a rolled-back change.

    Robust: the request that committed has succeeded whatever happens next. With a broker
    that only matters if sending fails; in the embedded default, where tasks run at once in
    the request, a task that wants to retry later (a deletion Kubernetes has not confirmed
    yet) is logged instead of turning a committed request into an error. The watcher
    finishes such work when Kubernetes reports it.
    """
    transaction.on_commit(lambda: task.delay(*args), robust=True)
