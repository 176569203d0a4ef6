"""Run the watcher until SIGTERM or Ctrl-C: Kubernetes status into the portal, by watch.

Replicas elect a leader through a Lease (settings.WATCHER_LEADER_ELECTION); on SIGTERM the
leader stops its informers, then releases the Lease so a standby takes over at once.
``--drift-report`` prints what the drift reconcile would find, as JSON, and exits.
"""

from __future__ import annotations

import json
import logging
import signal
import threading
from types import FrameType
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from butler_portal.kube import kube_client
from butler_portal.watcher import Watcher, drift
from butler_portal.watcher.registry import collect_drift_checks, handler_modules

logger = logging.getLogger("butler_portal.watcher")


class Command(BaseCommand):
    help = "Follow Kubernetes status into the portal (runs until SIGTERM)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--drift-report",
            action="store_true",
            help="Print what the portal expects but Kubernetes lacks, and orphans; then exit.",
        )

    def handle(self, *args: Any, drift_report: bool, **options: Any) -> None:
        client = kube_client()
        if client is None:
            raise CommandError("KUBE_MODE is off: there is no Kubernetes API to watch.")
        if drift_report:
            checks = collect_drift_checks(handler_modules())
            report = drift.drift_report(client, checks)
            self.stdout.write(json.dumps(report.as_dict(), indent=2))
            return
        watcher = Watcher.from_settings()
        stop = threading.Event()

        def request_stop(signum: int, frame: FrameType | None) -> None:
            logger.info("%s received; stopping", signal.Signals(signum).name)
            stop.set()

        signal.signal(signal.SIGTERM, request_stop)
        signal.signal(signal.SIGINT, request_stop)
        with watcher:
            if watcher.identity:
                logger.info("candidate %s for the watcher lease", watcher.identity)
            stop.wait()
