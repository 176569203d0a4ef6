"""Play the infrastructure controllers against the configured cluster until interrupted.

    manage.py simulate [--speed 4] [--duration 60] [--force]

The cluster is the portal's (``KUBE_MODE``/``KUBECONFIG``). Only a local control plane on
loopback is accepted: the simulator writes fake status and deletes objects, so ``--force``
is needed to point it anywhere else.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from butler_portal.simulator import NotLocalCluster, Simulator, SimulatorConfig


class Command(BaseCommand):
    help = "Simulate Kamaji, Cluster API, KubeVirt, CDI, Kube-OVN, MetalLB and Flux status."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--speed",
            type=float,
            default=None,
            help="Run every step this many times faster (default: settings.SIMULATOR_SPEED or 1).",
        )
        parser.add_argument(
            "--duration",
            type=float,
            default=None,
            help="Stop after this many seconds (default: run until interrupted).",
        )
        parser.add_argument(
            "--force",
            action="store_true",
            help="Run even though the API server is not on loopback (it will get fake status).",
        )

    def handle(
        self, *args: Any, speed: float | None, duration: float | None, force: bool, **options: Any
    ) -> None:
        if speed is not None and speed <= 0:
            raise CommandError("--speed must be positive")
        config = SimulatorConfig.from_settings(**({"speed": speed} if speed else {}))
        try:
            simulator = Simulator.from_settings(config=config, force=force)
        except NotLocalCluster as refusal:
            raise CommandError(str(refusal)) from refusal
        stop = threading.Event()
        in_main_thread = threading.current_thread() is threading.main_thread()
        if in_main_thread:
            # SIGTERM (a process manager stopping us) ends as cleanly as Ctrl-C.
            previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
        try:
            with simulator:
                self.stdout.write(self.style.SUCCESS(f"Simulating at speed {config.speed:g}"))
                with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C: stop cleanly
                    stop.wait(duration)
        finally:
            if in_main_thread:
                signal.signal(signal.SIGTERM, previous)
        self.stdout.write("Simulator stopped")
