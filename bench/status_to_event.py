"""Status-to-event latency: a controller writes a status; how long until the browsers hear?

    eval "$(scripts/test-services.sh)" && .venv/bin/python -m bench.status_to_event

The path is the production one, every part real and on loopback: a merge patch of a Kube-OVN
Subnet's status on kube-apiserver (+ etcd) -> the watch event -> the watcher's informer ->
the tenant handler (``network_observe`` in a transaction on Postgres) -> after commit, a
group send on the Redis pub/sub channel layer -> a subscriber on that layer, as a tenant's
websocket consumer would be. The watcher runs with leader election, as in production.

One patch is outstanding at a time, round-robin over the tenants, each with a new value so
every patch is a real change. The clock starts just before the PATCH is sent and stops when
the event comes off the channel layer; the time at which the informer hands the object to
the handler splits it into "API server and watch" and "handler, commit and publish".
Bounded: ``--samples`` patches (plus ``--warmup``), and ``--max-seconds`` in all.
"""

from __future__ import annotations

import argparse
import os
import platform
import queue
import statistics
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.database import on_bench_database
from butler_portal.kube.localcp import LocalControlPlane

BENCH_DATABASE = "butler_bench_status_to_event"
LEASE_NAMESPACE = "butler-portal"


@dataclass(frozen=True)
class Sample:
    total: float  # PATCH sent -> event received
    apply: float  # PATCH round trip
    delivered: float  # PATCH sent -> informer hands the object to the handler


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tenants", type=int, default=20)
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--max-seconds", type=float, default=300.0)
    parser.add_argument("--output", type=Path, help="also write the markdown report here")
    args = parser.parse_args(argv)
    if not (os.environ.get("DATABASE_URL") and os.environ.get("REDIS_URL")):
        print('Postgres and Redis first: eval "$(scripts/test-services.sh)"', file=sys.stderr)
        return 2
    deadline = time.monotonic() + args.max_seconds
    with LocalControlPlane() as control_plane:
        report = run(control_plane, args, deadline)
    print(report)
    if args.output:
        args.output.write_text(report)
    return 0


def run(control_plane: LocalControlPlane, args: argparse.Namespace, deadline: float) -> str:
    return on_bench_database(
        BENCH_DATABASE, control_plane, lambda: measure(control_plane, args, deadline)
    )


def measure(control_plane: LocalControlPlane, args: argparse.Namespace, deadline: float) -> str:
    from butler_portal.kube import kube_client
    from butler_portal.kube.adapter import Manifest
    from butler_portal.kube.informer import Handler
    from butler_portal.kube.lease import LeaderElectionConfig
    from butler_portal.kube.platform import prepare_local_platform
    from butler_portal.watcher import LEASE_NAME, Watcher
    from butler_portal.watcher.registry import collect_handlers, handler_modules
    from tenants.audit import Actor
    from tenants.models import LoadBalancerRange, TenantNetwork, User
    from tenants.services import tenant_create
    from tests.watcher.listener import TenantEventListener

    client = kube_client()
    assert client is not None
    prepare_local_platform(client)
    client.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": LEASE_NAMESPACE}})
    LoadBalancerRange.objects.create(
        name="bench", first_address="192.0.2.1", last_address="192.0.2.254"
    )
    operator = User.objects.create_user("bench-operator", platform_role="operator")
    networks = [
        TenantNetwork.objects.get(
            tenant=tenant_create(
                actor=Actor(operator), slug=f"bench-{index}", name=f"Bench {index}"
            )
        )
        for index in range(args.tenants)
    ]

    # When the informer hands each Subnet version to the handler, by its v4availableIPs.
    delivered_at: dict[int, float] = {}

    def stamped(handler: Handler) -> Handler:
        def handle(event_type: str, obj: Manifest) -> None:
            marker = (obj.get("status") or {}).get("v4availableIPs")
            if obj["kind"] == "Subnet" and isinstance(marker, int | float):
                delivered_at[int(marker)] = time.perf_counter()
            handler(event_type, obj)

        return handle

    handlers = collect_handlers(handler_modules(["tenants.status"]))
    election = LeaderElectionConfig(namespace=LEASE_NAMESPACE, name=LEASE_NAME)
    watcher = Watcher(
        handlers={kind: stamped(handler) for kind, handler in handlers.items()},
        drift_checks=[],
        election=election,
        reconcile_interval=None,
    )
    listener = TenantEventListener()
    samples: list[Sample] = []
    lost = 0
    try:
        for network in networks:
            listener.subscribe(network.tenant_id)
        watcher.start()
        if not watcher.wait_until_synced(30):
            raise RuntimeError("the watcher did not lead and sync within 30 s")
        listener.drain()
        for index in range(args.warmup + args.samples):
            if time.monotonic() > deadline:
                break
            network = networks[index % len(networks)]
            marker = 10_000 + index  # a new value each time, so every patch is a change
            started = time.perf_counter()
            client.patch_status(
                "kubeovn.io/v1", "Subnet", network.namespace, {"v4availableIPs": marker}
            )
            applied = time.perf_counter()
            try:
                arrived, event = listener.next_event(timeout=10)
            except queue.Empty:
                lost += 1
                continue
            if event.get("id") != network.pk:
                raise RuntimeError(f"unexpected event {event} for tenant {network.tenant_id}")
            if index >= args.warmup:
                samples.append(
                    Sample(arrived - started, applied - started, delivered_at[marker] - started)
                )
    finally:
        listener.close()
        watcher.stop()
    return render(samples, lost, args, machine_notes(client.server_version()))


def render(samples: list[Sample], lost: int, args: argparse.Namespace, machine: str) -> str:
    def row(name: str, values: list[float]) -> str:
        if len(values) < 2:
            return f"| {name} | - | - | - | - | - |"
        cuts = statistics.quantiles(values, n=100, method="inclusive")
        ms = [statistics.median(values), cuts[89], cuts[98], max(values), statistics.mean(values)]
        return f"| {name} | " + " | ".join(f"{value * 1000:.1f}" for value in ms) + " |"

    handler_part = [s.total - s.delivered for s in samples]
    return "\n".join(
        [
            "# Status to event: measured",
            "",
            f"{len(samples)} samples after {args.warmup} warm-up, {args.tenants} tenants, "
            f"{lost} lost (no event within 10 s). Milliseconds.",
            "",
            "| stage | median | p90 | p99 | max | mean |",
            "|---|---|---|---|---|---|",
            row("**status PATCH sent → event received** (end to end)", [s.total for s in samples]),
            row("PATCH round trip (kube-apiserver + etcd)", [s.apply for s in samples]),
            row("PATCH sent → informer hands it to the handler", [s.delivered for s in samples]),
            row("handler + commit + channel-layer publish → received", handler_part),
            "",
            machine,
            "",
        ]
    )


def machine_notes(apiserver_version: str) -> str:
    import redis
    from django.conf import settings
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        postgres = cursor.fetchone()[0]
    redis_version = redis.Redis.from_url(settings.REDIS_URL).info()["redis_version"]
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor() or "unknown CPU",
    )
    layer = str(settings.CHANNEL_LAYERS["default"]["BACKEND"]).rsplit(".", 1)[-1]
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    return (
        f"Machine: {cpu}, {os.cpu_count()} cores, {platform.platform()}, Python "
        f"{platform.python_version()}. kube-apiserver {apiserver_version} with etcd (no fsync) "
        f"and Postgres {postgres} (fsync off) and Redis {redis_version} on loopback, "
        f"channel layer {layer}; watcher with leader election, {threading.active_count()} "
        f"threads in the process at the end. Load average at the end (1, 5, 15 min): {load}."
    )


if __name__ == "__main__":
    sys.exit(main())
