"""Serve the portal over ASGI (HTTP and websockets) with uvicorn.

In the embedded default it first prepares everything a newcomer needs: the database
schema, a local Kubernetes API with the simulator and the watcher behind it
(``KUBE_MODE=embedded``), and the demo accounts.
"""

from __future__ import annotations

import contextlib
import signal
from types import FrameType
from typing import Any

import uvicorn
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser


class Command(BaseCommand):
    help = "Serve the portal (ASGI). Embedded default: migrate, start local Kubernetes, seed demo data."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--no-seed", action="store_true", help="Skip the demo accounts.")

    def handle(self, *args: Any, host: str, port: int, no_seed: bool, **options: Any) -> None:
        # uvicorn re-raises the SIGTERM it caught once it has shut down; turned into SystemExit
        # here, it unwinds the stack below, which stops the local Kubernetes API too.
        signal.signal(signal.SIGTERM, _exit_on_sigterm)
        with contextlib.ExitStack() as stack:
            if settings.EMBEDDED:
                call_command("migrate", interactive=False, verbosity=0)
            if settings.KUBE_MODE == "embedded":
                from butler_portal.embedded import EmbeddedKubernetes

                stack.enter_context(EmbeddedKubernetes())
            if settings.EMBEDDED_TASK_WORKER:
                from butler_portal.embedded import EmbeddedTaskWorker

                stack.enter_context(EmbeddedTaskWorker())
            if settings.EMBEDDED and not no_seed:
                call_command("seed_demo")
            self.stdout.write(self.style.SUCCESS(f"Butler Portal on http://{host}:{port}/"))
            uvicorn.run(
                "butler_portal.asgi:application",
                host=host,
                port=port,
                log_level="info",
                # Proxies in front (ingress) set X-Forwarded-*; trust them only from loopback.
                proxy_headers=True,
                forwarded_allow_ips="127.0.0.1",
            )


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)
