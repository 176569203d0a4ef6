"""The embedded default: what stands in for a management cluster and a worker on a laptop.

``EmbeddedKubernetes``: a real etcd and kube-apiserver with the upstream CRDs (data kept in
``var/k8s`` between runs), the namespaces a real platform has, the infrastructure simulator
playing Kamaji, Cluster API, KubeVirt, CDI, Kube-OVN, MetalLB and Flux, and the watcher that
brings their status into the portal. ``manage.py serve`` runs it whenever
``KUBE_MODE=embedded``.

``EmbeddedTaskWorker``: a Celery worker in a thread of the serving process, on the in-process
broker, so tasks run as in production (after the request, retried with backoff) without
Redis. ``manage.py serve`` runs it whenever ``EMBEDDED_TASK_WORKER`` is on.
"""

from __future__ import annotations

import logging
import threading
from types import TracebackType
from typing import Any, Self

from django.conf import settings

from butler_portal.kube import forget_clients, kube_client
from butler_portal.kube.binaries import binaries_cached
from butler_portal.kube.localcp import LocalControlPlane
from butler_portal.kube.platform import prepare_local_platform
from butler_portal.simulator import Simulator, SimulatorConfig
from butler_portal.watcher import Watcher

logger = logging.getLogger(__name__)


class _Started:
    """``with`` starts it and stops it, whatever happens inside."""

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


class EmbeddedKubernetes(_Started):
    def __init__(self) -> None:
        self.control_plane = LocalControlPlane(root_dir=settings.EMBEDDED_KUBE_DIR)
        self.simulator: Simulator | None = None
        self.watcher: Watcher | None = None

    def start(self) -> EmbeddedKubernetes:
        if binaries_cached():
            logger.info("starting the local Kubernetes API")
        else:
            logger.info(
                "starting the local Kubernetes API; this first run builds kube-apiserver and "
                "etcd from source (several minutes, progress below), later runs reuse them"
            )
        self.control_plane.start()
        try:
            # The kubeconfig was just rewritten with fresh ports and certificates.
            forget_clients()
            client = kube_client()
            assert client is not None, "KUBE_MODE=embedded always has a client"
            prepare_local_platform(client)
            self.simulator = Simulator(
                self.control_plane.client(),
                server_url=self.control_plane.server_url,
                config=SimulatorConfig.from_settings(),
            ).start()
            self.watcher = Watcher.from_settings().start()
        except BaseException:
            self.stop()
            raise
        logger.info("local Kubernetes ready: simulator and watcher running")
        return self

    def stop(self) -> None:
        if self.watcher is not None:
            self.watcher.stop()
        if self.simulator is not None:
            self.simulator.stop()
        forget_clients()
        self.control_plane.stop()


class EmbeddedTaskWorker(_Started):
    """One Celery worker (solo pool: one task at a time) in a daemon thread."""

    START_TIMEOUT_SECONDS = 30.0
    STOP_TIMEOUT_SECONDS = 10.0

    def __init__(self) -> None:
        from celery.worker import WorkController

        from butler_portal.celery import app

        self._started = threading.Event()
        started = self._started

        class _Worker(WorkController):
            def on_consumer_ready(self, consumer: Any) -> None:
                started.set()

        app.finalize()
        self.worker = _Worker(
            app=app,
            hostname="embedded@localhost",
            pool="solo",
            concurrency=1,
            queues=[settings.CELERY_TASK_DEFAULT_QUEUE],
            # One process, nobody to talk to: no heartbeats, no peers to sync with.
            without_heartbeat=True,
            without_mingle=True,
            without_gossip=True,
        )
        self._thread = threading.Thread(target=self.worker.start, name="tasks", daemon=True)

    def start(self) -> EmbeddedTaskWorker:
        self._thread.start()
        if not self._started.wait(self.START_TIMEOUT_SECONDS):
            raise RuntimeError("the embedded task worker did not start")
        logger.info("task worker running in-process (no Redis: tasks and their retries run here)")
        return self

    def stop(self) -> None:
        self.worker.stop(in_sighandler=False)
        self._thread.join(self.STOP_TIMEOUT_SECONDS)
