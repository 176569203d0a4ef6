"""Live updates end to end: a status change on the API server until the right browsers have it.

    eval "$(scripts/test-services.sh)" && .venv/bin/python -m bench.live_updates

Everything real and on loopback, in production's shape: a kube-apiserver + etcd of its own,
a throwaway Postgres database, a Redis of its own for the pub/sub channel layer, the watcher
(with leader election) in this process, and the portal itself in a child process,
``manage.py serve`` (uvicorn, one process, as deployed). Twenty tenants with ten members
each; every member has a session and an open websocket on ``/ws/tenants/<slug>/``, all on
one asyncio loop, and behaves like ``static/js/live.js``: an application ping every 25 s,
and on each event a re-fetch of the changed panel (here ``GET /api/v1/tenants/<slug>/network/``).

A status change is a merge patch of a tenant Subnet's ``v4usingIPs`` (a new value each time),
one every ``--interval`` seconds, round-robin over the tenants. The clock starts just before
the PATCH is sent. For push it stops when the ``network.changed`` event reaches each of the
tenant's clients, and again when that client's re-fetch returns the new value; every event
at a client of another tenant is counted as misdelivered. The baseline is polling: members
GET the same endpoint every ``--poll-interval`` seconds (2.5 s) from a random phase, one
request at a time, and the clock stops at the first response that shows the new value.

Phases, in one run: warm-up (not reported) -> idle (sockets open, nothing changes) -> push
only -> for each count in ``--pollers`` (default 2 then 10 a tenant), push while that many
members of each tenant also poll: the same status changes seen both ways, under polling's
load. Polling stops early if the web process holds more than ``WEB_DB_CONNECTION_LIMIT``
Postgres connections (it opens one per request in flight, and the server is shared).
Bounded: ``--changes`` per phase and ``--max-seconds`` in all.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from importlib import import_module
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO
from urllib.parse import urlsplit

import aiohttp  # comes with the Kubernetes client (it requires it); no dependency of our own
from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Origin

from bench.database import on_bench_database
from bench.status_to_event import machine_notes
from butler_portal.kube.localcp import LOOPBACK, LocalControlPlane, free_loopback_port

if TYPE_CHECKING:
    from butler_portal.kube.adapter import KubeClient

BENCH_DATABASE = "butler_bench_live_updates"
# Postgres tells the web process's connections from the watcher's by this name.
WEB_APPLICATION_NAME = "butler-bench-web"
NETWORK_EVENT = "network.changed"
# What static/js/live.js does: an application-level ping on this period.
PING_SECONDS = 25.0
# uvicorn closes idle keep-alive connections after 5 s; a client that reused one at that
# moment would see a spurious error, so ours give them up a second earlier (as browsers do).
KEEPALIVE_SECONDS = 4.0
HTTP_TIMEOUT_SECONDS = 10.0
PUSH_SETTLE_SECONDS = 10.0  # an event later than this after its PATCH counts as lost
IDLE_SECONDS = 5.0
SERVER_START_SECONDS = 60.0
SERVER_STOP_SECONDS = 10.0
LAG_PROBE_SECONDS = 0.05
DB_SAMPLE_SECONDS = 0.25
# The test suites share the Postgres server (max_connections=300) and the web process opens
# one connection per request in flight: polling stops before it could starve them.
WEB_DB_CONNECTION_LIMIT = 100

WARMUP, IDLE, PUSH, POLLS_STARTING = "warm-up", "idle", "push only", "polls starting"


def polling_phase(pollers: int) -> str:
    return f"push + {pollers} polling"


# --- What is measured ---------------------------------------------------------------------


@dataclass
class BenchTenant:
    slug: str
    network_id: int
    subnet: str  # the Kube-OVN Subnet's name (cluster-scoped, named after the namespace)
    used_ips: int = 0  # the last v4usingIPs written; grows by one with every change


@dataclass
class Change:
    phase: str
    tenant: BenchTenant
    used_ips: int
    sent: float = 0.0  # perf_counter just before the PATCH
    applied: float = 0.0  # ... and when the API server answered


@dataclass
class Delivery:
    change: Change
    event_at: float
    refetched_at: float | None = None  # the re-fetch returned, showing the change


@dataclass
class Tally:
    """Running counts; a phase's share is the difference of two snapshots."""

    events: int = 0  # network events at the tenant's own clients
    pongs: int = 0
    pings: int = 0
    refetches: int = 0
    stale_refetches: int = 0  # a re-fetch after the event that did not show the change
    polls: int = 0
    polls_with_news: int = 0
    http_failures: int = 0
    misdelivered: int = 0  # an event at a client of another tenant, or of an unknown kind
    duplicates: int = 0  # a tenant's event with no change outstanding for that client

    def snapshot(self) -> Tally:
        return dataclasses.replace(self)

    def since(self, earlier: Tally) -> Tally:
        return Tally(
            **{
                name.name: getattr(self, name.name) - getattr(earlier, name.name)
                for name in dataclasses.fields(self)
            }
        )


@dataclass
class PhaseResult:
    name: str
    seconds: float
    changes: int
    tally: Tally
    server_cpu_seconds: float
    max_web_db_connections: int
    pollers_per_tenant: int = 0
    polling_stopped: str | None = None  # why polling was stopped early, if it was
    polling_seconds: float = 0.0  # of the phase, with polling on


@dataclass(frozen=True)
class PollingStop:
    reason: str
    phase: str  # the phase it happened in
    after: float  # seconds into that phase


@dataclass
class Member:
    """One signed-in member: a websocket like live.js, and in polling phases maybe a poller."""

    tenant: BenchTenant
    number: int  # within the tenant: the first ones poll in a polling phase
    session_key: str
    http: aiohttp.ClientSession
    socket: ClientConnection | None = None
    polling: bool = False
    # Changes of this member's tenant not yet seen, oldest first, by each approach.
    awaiting_event: deque[Change] = field(default_factory=deque)
    awaiting_poll: deque[Change] = field(default_factory=deque)


class Measurements:
    def __init__(self) -> None:
        self.tally = Tally()
        self.phase, self.phase_started = WARMUP, time.monotonic()
        self.changes: list[Change] = []
        self.deliveries: list[Delivery] = []
        self.poll_observations: list[tuple[Change, float]] = []
        self.request_seconds: dict[str, list[float]] = {}  # GET round trips, by phase
        self.loop_lag: dict[str, list[float]] = {}
        self.connect_seconds: list[float] = []
        self.misdelivered_examples: list[tuple[str, dict[str, Any]]] = []

    def start_phase(self, name: str) -> None:
        self.phase, self.phase_started = name, time.monotonic()

    def phase_seconds(self) -> float:
        return time.monotonic() - self.phase_started

    def poll_observations_in(self, phase: str) -> list[tuple[Change, float]]:
        return [(change, at) for change, at in self.poll_observations if change.phase == phase]

    def request_took(self, seconds: float) -> None:
        self.request_seconds.setdefault(self.phase, []).append(seconds)


# --- Entry point ----------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tenants", type=int, default=20)
    parser.add_argument("--members", type=int, default=10, help="signed-in members per tenant")
    parser.add_argument("--changes", type=int, default=100, help="status changes per phase")
    parser.add_argument("--interval", type=float, default=0.5, help="seconds between changes")
    parser.add_argument("--poll-interval", type=float, default=2.5)
    parser.add_argument(
        "--pollers",
        type=_counts,
        default=[2, 10],
        help="members per tenant that poll, one push + polling phase each (default 2,10)",
    )
    parser.add_argument("--seed", type=int, default=1, help="for the pollers' random phases")
    parser.add_argument(
        "--web-conn-max-age",
        type=int,
        default=0,
        help="DB_CONN_MAX_AGE of the web process (see bench/README.md: 0, as Django advises "
        "under ASGI; the settings' default of 60 leaves a connection behind per request)",
    )
    parser.add_argument("--max-seconds", type=float, default=600.0)
    parser.add_argument("--output", type=Path, help="also write the markdown report here")
    args = parser.parse_args(argv)
    if not os.environ.get("DATABASE_URL"):
        print('Postgres first: eval "$(scripts/test-services.sh)"', file=sys.stderr)
        return 2
    if not shutil.which("redis-server"):
        print("redis-server is missing: scripts/test-services.sh installs it", file=sys.stderr)
        return 2
    if not all(0 < count <= args.members for count in args.pollers):
        parser.error("--pollers: each count between 1 and --members")
    deadline = time.monotonic() + args.max_seconds
    with contextlib.ExitStack() as stack:
        scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="butler-bench-")))
        control_plane = stack.enter_context(LocalControlPlane())
        redis_server = stack.enter_context(PrivateRedis(scratch / "redis.log", deadline))
        report = run(control_plane, redis_server, scratch, args, deadline)
    print(report)
    if args.output:
        args.output.write_text(report)
    return 0


def _counts(text: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: counts separated by commas") from None


def run(
    control_plane: LocalControlPlane,
    redis_server: PrivateRedis,
    scratch: Path,
    args: argparse.Namespace,
    deadline: float,
) -> str:
    return on_bench_database(
        BENCH_DATABASE,
        control_plane,
        lambda: measure(control_plane, scratch, args, deadline),
        redis_url=redis_server.url,
    )


def measure(
    control_plane: LocalControlPlane, scratch: Path, args: argparse.Namespace, deadline: float
) -> str:
    from butler_portal.kube import kube_client
    from butler_portal.watcher import Watcher

    client = kube_client()
    assert client is not None
    tenants, sessions = onboard(client, args.tenants, args.members)
    # Reconcile off: it repairs drift, which there is none of here, and is not on this path.
    watcher = Watcher.from_settings(reconcile_interval=None)
    measurements = Measurements()
    server = PortalServer(control_plane, scratch / "serve.log", args.web_conn_max_age)
    try:
        watcher.start()
        if not watcher.wait_until_synced(60):
            raise RuntimeError("the watcher did not lead and sync within 60 s")
        server.start(deadline)
        browsers = Browsers(server, tenants, sessions, args, measurements, deadline)
        # The phases stop making changes at the deadline; this only catches a hang after it.
        backstop = deadline - time.monotonic() + SERVER_STOP_SECONDS + PUSH_SETTLE_SECONDS
        phases = asyncio.run(asyncio.wait_for(browsers.run(), timeout=backstop))
    except BaseException:
        print(server.log_tail(), file=sys.stderr)
        raise
    finally:
        server.stop()
        watcher.stop()
    return render(measurements, phases, args, client.server_version())


def onboard(
    client: KubeClient, tenant_count: int, members_per_tenant: int
) -> tuple[list[BenchTenant], dict[str, list[str]]]:
    """Tenants through the real service (network applied), members, and a session each.

    Sessions are written straight into the session store, as a login would leave them:
    200 password hashes (a second each on a loaded machine) would only slow the setup.
    """
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY

    from butler_portal.kube.platform import prepare_local_platform
    from tenants.access import TenantRole
    from tenants.audit import Actor
    from tenants.models import LoadBalancerRange, TenantNetwork, User
    from tenants.services import membership_add, tenant_create

    prepare_local_platform(client)
    client.apply(
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": settings.WATCHER_LEASE_NAMESPACE},
        }
    )
    LoadBalancerRange.objects.create(
        name="bench", first_address="192.0.2.1", last_address="192.0.2.254"
    )
    actor = Actor(User.objects.create_user("bench-operator", platform_role="operator"))
    session_store = import_module(settings.SESSION_ENGINE).SessionStore
    tenants: list[BenchTenant] = []
    sessions: dict[str, list[str]] = {}
    for index in range(tenant_count):
        tenant = tenant_create(actor=actor, slug=f"bench-{index}", name=f"Bench {index}")
        network = TenantNetwork.objects.get(tenant=tenant)
        bench_tenant = BenchTenant(tenant.slug, network.pk, network.namespace)
        # What Kube-OVN reports once the subnet is up; the changes count up from here.
        client.patch_status(
            "kubeovn.io/v1",
            "Subnet",
            bench_tenant.subnet,
            {"v4availableIPs": 200, "v4usingIPs": bench_tenant.used_ips},
        )
        tenants.append(bench_tenant)
        sessions[tenant.slug] = []
        for number in range(members_per_tenant):
            user = User.objects.create_user(f"{tenant.slug}-member-{number}")
            membership_add(actor=actor, tenant=tenant, user=user, role=TenantRole.MEMBER)
            store = session_store()
            store[SESSION_KEY] = str(user.pk)
            store[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
            store[HASH_SESSION_KEY] = user.get_session_auth_hash()
            store.create()
            sessions[tenant.slug].append(store.session_key)
    return tenants, sessions


# --- Servers in child processes -------------------------------------------------------------


class ChildProcess:
    """A server this benchmark starts and stops itself, with its output in a log file."""

    name = "child"

    def __init__(self, log_path: Path) -> None:
        self.log_path = log_path
        self.port = free_loopback_port()
        self._process: subprocess.Popen[bytes] | None = None
        self._log: TextIO | None = None

    def launch(self, command: Sequence[str], **options: Any) -> None:
        self._log = self.log_path.open("w")
        # Own session: a Ctrl-C at the terminal reaches us first, and we stop it in order.
        self._process = subprocess.Popen(
            command, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True, **options
        )

    def wait_until(self, ready: Callable[[], bool], deadline: float) -> None:
        until = min(deadline, time.monotonic() + SERVER_START_SECONDS)
        while time.monotonic() < until:
            if self._process is None or self._process.poll() is not None:
                raise RuntimeError(f"{self.name} exited:\n{self.log_tail()}")
            if ready():
                return
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} did not answer in time:\n{self.log_tail()}")

    def cpu_seconds(self) -> float:
        """User + system CPU time of the process so far (from /proc)."""
        assert self._process is not None
        fields = Path(f"/proc/{self._process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks = int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
        return ticks / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(SERVER_STOP_SECONDS)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        if self._log is not None:
            self._log.close()

    def log_tail(self, lines: int = 40) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""


class PrivateRedis(ChildProcess):
    """A Redis of the benchmark's own for the channel layer.

    Redis pub/sub channels are server-wide (whatever the database number), and group names
    are ``tenant.<id>``: on the test suites' shared Redis, another run's tenant 3 is ours too,
    and its events would reach our clients and count as misdelivered.
    """

    name = "redis-server"

    def __init__(self, log_path: Path, deadline: float) -> None:
        super().__init__(log_path)
        self.deadline = deadline

    @property
    def url(self) -> str:
        return f"redis://{LOOPBACK}:{self.port}/0"

    def __enter__(self) -> PrivateRedis:
        import redis

        command = ["redis-server", "--bind", LOOPBACK, "--port", str(self.port)]
        self.launch([*command, "--save", "", "--appendonly", "no"])

        def answers() -> bool:
            with contextlib.suppress(redis.RedisError):
                return bool(redis.Redis.from_url(self.url).ping())
            return False

        try:
            self.wait_until(answers, self.deadline)
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


class PortalServer(ChildProcess):
    """``manage.py serve`` on the benchmark's database, Redis and control plane.

    With ``KUBE_MODE=kubeconfig`` and a database URL, serve runs uvicorn and nothing else:
    no embedded Kubernetes, no watcher (this process runs the only one).
    """

    name = "manage.py serve"

    def __init__(self, control_plane: LocalControlPlane, log_path: Path, conn_max_age: int) -> None:
        super().__init__(log_path)
        self._control_plane = control_plane
        self._conn_max_age = conn_max_age

    @property
    def base_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def start(self, deadline: float) -> None:
        database = urlsplit(os.environ["DATABASE_URL"])._replace(
            path=f"/{BENCH_DATABASE}", query=f"application_name={WEB_APPLICATION_NAME}"
        )
        env = {
            **os.environ,
            "DATABASE_URL": database.geturl(),
            "DB_CONN_MAX_AGE": str(self._conn_max_age),
            "KUBE_MODE": "kubeconfig",
            "KUBECONFIG": str(self._control_plane.kubeconfig_path),
            "DEBUG": "true",
            "LOG_LEVEL": "WARNING",
        }
        env.pop("CELERY_TASK_ALWAYS_EAGER", None)  # as deployed: tasks go to the broker
        command = [sys.executable, "manage.py", "serve", "--no-seed"]
        self.launch(
            [*command, "--host", LOOPBACK, "--port", str(self.port)],
            cwd=Path(__file__).resolve().parent.parent,
            env=env,
        )
        self.wait_until(self._healthy, deadline)

    def _healthy(self) -> bool:
        import urllib.request

        with (
            contextlib.suppress(OSError),
            urllib.request.urlopen(f"{self.base_url}/healthz", timeout=2) as response,
        ):
            return bool(response.status == 200)
        return False


# --- The clients, on one event loop ---------------------------------------------------------


class Browsers:
    """The members' browsers: websockets, re-fetches and polls, all on one event loop."""

    def __init__(
        self,
        server: PortalServer,
        tenants: list[BenchTenant],
        sessions: dict[str, list[str]],
        args: argparse.Namespace,
        measurements: Measurements,
        deadline: float,
    ) -> None:
        self.server = server
        self.tenants = tenants
        self.sessions = sessions
        self.args = args
        self.m = measurements
        self.deadline = deadline
        self.random = random.Random(args.seed)
        self.members: list[Member] = []
        self.tasks: set[asyncio.Task[None]] = set()
        self.refetches: set[asyncio.Task[None]] = set()
        self.web_db_connections: list[int] = []
        self.polling_stop: PollingStop | None = None

    async def run(self) -> list[PhaseResult]:
        from django.conf import settings

        cookie_name = settings.SESSION_COOKIE_NAME
        for tenant in self.tenants:
            for number, key in enumerate(self.sessions[tenant.slug]):
                http = aiohttp.ClientSession(
                    base_url=self.server.base_url,
                    headers={"Cookie": f"{cookie_name}={key}", "Accept": "application/json"},
                    connector=aiohttp.TCPConnector(keepalive_timeout=KEEPALIVE_SECONDS),
                    timeout=aiohttp.ClientTimeout(total=HTTP_TIMEOUT_SECONDS),
                )
                self.members.append(Member(tenant, number, key, http))
        self._spawn(self._probe_loop_lag())
        self._spawn(self._sample_web_db_connections())
        try:
            await self._open_sockets(cookie_name)
            results = [await self._phase(WARMUP, len(self.tenants))]
            results.append(await self._phase(IDLE, 0))
            results.append(await self._phase(PUSH, self.args.changes))
            for per_tenant in self.args.pollers:
                results.append(await self._polling_phase(per_tenant))
            return results
        finally:
            for task in [*self.tasks, *self.refetches]:
                task.cancel()
            await asyncio.gather(*self.tasks, *self.refetches, return_exceptions=True)
            await asyncio.gather(
                *(member.socket.close() for member in self.members if member.socket),
                return_exceptions=True,
            )
            await asyncio.gather(*(member.http.close() for member in self.members))

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.create_task(coroutine)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    # --- Sockets -----------------------------------------------------------------------

    async def _open_sockets(self, cookie_name: str) -> None:
        """All at once, as after a deploy when every open tab reconnects."""
        await asyncio.gather(*(self._open_socket(member, cookie_name) for member in self.members))
        for member in self.members:
            self._spawn(self._listen(member))
            self._spawn(self._ping(member))

    async def _open_socket(self, member: Member, cookie_name: str) -> None:
        started = time.perf_counter()
        member.socket = await connect(
            f"ws://{LOOPBACK}:{self.server.port}/ws/tenants/{member.tenant.slug}/",
            origin=Origin(self.server.base_url),
            additional_headers={"Cookie": f"{cookie_name}={member.session_key}"},
            ping_interval=None,  # browsers only answer the server's pings; live.js sends its own
            proxy=None,
            open_timeout=60,
        )
        hello = json.loads(await asyncio.wait_for(member.socket.recv(), 60))
        if hello != {"kind": "hello", "tenant": member.tenant.slug}:
            raise RuntimeError(f"unexpected greeting {hello} on {member.tenant.slug}")
        self.m.connect_seconds.append(time.perf_counter() - started)

    async def _listen(self, member: Member) -> None:
        assert member.socket is not None
        async for raw in member.socket:
            arrived = time.perf_counter()
            event = json.loads(raw)
            if event.get("kind") == "pong":
                self.m.tally.pongs += 1
            elif event.get("kind") != NETWORK_EVENT or event.get("id") != member.tenant.network_id:
                self.m.tally.misdelivered += 1
                self.m.misdelivered_examples.append((self.m.phase, event))
            elif not member.awaiting_event:
                self.m.tally.duplicates += 1
            else:
                self.m.tally.events += 1
                delivery = Delivery(member.awaiting_event.popleft(), arrived)
                self.m.deliveries.append(delivery)
                # live.js hands the event to htmx, which re-fetches the panel: do the same.
                refetch = asyncio.create_task(self._refetch(member, delivery))
                self.refetches.add(refetch)
                refetch.add_done_callback(self.refetches.discard)

    async def _ping(self, member: Member) -> None:
        assert member.socket is not None
        await asyncio.sleep(self.random.uniform(0, PING_SECONDS))
        while True:
            await member.socket.send(json.dumps({"kind": "ping"}))
            self.m.tally.pings += 1
            await asyncio.sleep(PING_SECONDS)

    # --- HTTP --------------------------------------------------------------------------

    async def _used_ips(self, member: Member) -> int | None:
        """The subnet's used addresses as the tenant's network API shows them (None: failed)."""
        started = time.perf_counter()
        try:
            async with member.http.get(f"/api/v1/tenants/{member.tenant.slug}/network/") as got:
                body = await got.json() if got.status == 200 else None
        except (aiohttp.ClientError, TimeoutError):
            body = None
        if body is None:
            self.m.tally.http_failures += 1
            return None
        self.m.request_took(time.perf_counter() - started)
        usage = body.get("subnet_addresses") or {}
        used = usage.get("used")
        return used if isinstance(used, int) else None

    async def _refetch(self, member: Member, delivery: Delivery) -> None:
        self.m.tally.refetches += 1
        used = await self._used_ips(member)
        if used is None:
            return  # counted as a failed request
        if used >= delivery.change.used_ips:
            delivery.refetched_at = time.perf_counter()
        else:
            self.m.tally.stale_refetches += 1

    async def _polling_phase(self, per_tenant: int) -> PhaseResult:
        """Push as before, while the first ``per_tenant`` members of each tenant also poll."""
        polling, pollers = self._start_polling(per_tenant)
        # Every poller has made its first request before the first change.
        await asyncio.sleep(self.args.poll_interval + 0.5)
        result = await self._phase(polling_phase(len(polling)), self.args.changes)
        for poller in pollers:
            poller.cancel()
        await asyncio.gather(*pollers, return_exceptions=True)
        for member in polling:
            member.polling = False
            member.awaiting_poll.clear()  # what polling stopped early left unseen
        result.pollers_per_tenant = per_tenant
        stop = self.polling_stop
        result.polling_stopped = stop.reason if stop else None
        if stop is None:
            result.polling_seconds = result.seconds
        elif stop.phase == result.name:
            result.polling_seconds = stop.after
        return result

    def _start_polling(self, per_tenant: int) -> tuple[list[Member], list[asyncio.Task[None]]]:
        self.m.start_phase(POLLS_STARTING)
        self.polling_stop = None
        polling = [member for member in self.members if member.number < per_tenant]
        for member in polling:
            member.polling = True
        return polling, [self._spawn(self._poll(member)) for member in polling]

    async def _poll(self, member: Member) -> None:
        """Like a page with ``setInterval(refresh, 2500)``, opened at a random moment."""
        loop = asyncio.get_running_loop()
        next_poll = loop.time() + self.random.uniform(0, self.args.poll_interval)
        while self.polling_stop is None:
            await asyncio.sleep(max(0.0, next_poll - loop.time()))
            self.m.tally.polls += 1
            used = await self._used_ips(member)
            answered = time.perf_counter()
            # One request at a time, as htmx polls an element: ticks missed while a slow
            # answer was awaited are skipped, not made up in a burst.
            while next_poll <= loop.time():
                next_poll += self.args.poll_interval
            if used is None or not member.awaiting_poll:
                continue
            if used >= member.awaiting_poll[0].used_ips:
                self.m.tally.polls_with_news += 1
            while member.awaiting_poll and used >= member.awaiting_poll[0].used_ips:
                self.m.poll_observations.append((member.awaiting_poll.popleft(), answered))

    # --- Phases ------------------------------------------------------------------------

    async def _phase(self, name: str, change_count: int) -> PhaseResult:
        self.m.start_phase(name)
        before, cpu_before = self.m.tally.snapshot(), self.server.cpu_seconds()
        self.web_db_connections.clear()
        loop = asyncio.get_running_loop()
        started = loop.time()
        made = 0
        for index in range(change_count):
            if time.monotonic() > self.deadline:
                break
            await asyncio.sleep(max(0.0, started + index * self.args.interval - loop.time()))
            await self._change(self.tenants[index % len(self.tenants)], name)
            made += 1
        if change_count == 0:
            await asyncio.sleep(IDLE_SECONDS)
        await self._settle()
        return PhaseResult(
            name,
            loop.time() - started,
            made,
            self.m.tally.since(before),
            self.server.cpu_seconds() - cpu_before,
            max(self.web_db_connections, default=0),
        )

    async def _change(self, tenant: BenchTenant, phase: str) -> None:
        from butler_portal.kube import kube_client

        tenant.used_ips += 1
        change = Change(phase, tenant, tenant.used_ips)
        self.m.changes.append(change)
        # Registered before the PATCH goes out, so no answer can come before its question.
        for member in self.members:
            if member.tenant is tenant:
                member.awaiting_event.append(change)
                if member.polling:
                    member.awaiting_poll.append(change)

        def patch() -> None:
            client = kube_client()
            assert client is not None
            change.sent = time.perf_counter()
            client.patch_status(
                "kubeovn.io/v1", "Subnet", tenant.subnet, {"v4usingIPs": change.used_ips}
            )
            change.applied = time.perf_counter()

        await asyncio.to_thread(patch)

    async def _settle(self) -> None:
        """Until every client has every change (or the time for it is up)."""

        def polls_awaited() -> bool:
            return self.polling_stop is None and any(m.awaiting_poll for m in self.members)

        wait = PUSH_SETTLE_SECONDS + (2 * self.args.poll_interval if polls_awaited() else 0)
        until = min(time.monotonic() + wait, self.deadline)
        while time.monotonic() < until:
            events_awaited = any(member.awaiting_event for member in self.members)
            if not (self.refetches or events_awaited or polls_awaited()):
                return
            await asyncio.sleep(0.05)

    # --- Side measurements -------------------------------------------------------------

    async def _probe_loop_lag(self) -> None:
        """How late this loop wakes up: the error bar on every client-side timestamp."""
        loop = asyncio.get_running_loop()
        while True:
            expected = loop.time() + LAG_PROBE_SECONDS
            await asyncio.sleep(LAG_PROBE_SECONDS)
            self.m.loop_lag.setdefault(self.m.phase, []).append(loop.time() - expected)

    async def _sample_web_db_connections(self) -> None:
        while True:
            count = await asyncio.to_thread(_web_db_connections)
            self.web_db_connections.append(count)
            polling = any(member.polling for member in self.members)
            if count > WEB_DB_CONNECTION_LIMIT and polling and self.polling_stop is None:
                after = self.m.phase_seconds()
                reason = (
                    f"the web process held {count} Postgres connections (limit "
                    f"{WEB_DB_CONNECTION_LIMIT}) {after:.0f} s into {self.m.phase}"
                )
                self.polling_stop = PollingStop(reason, self.m.phase, after)
            await asyncio.sleep(DB_SAMPLE_SECONDS)


def _web_db_connections() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
            [WEB_APPLICATION_NAME],
        )
        count: int = cursor.fetchone()[0]
    connection.close()  # this runs on the executor's threads: leave no connection behind
    return count


# --- Report ------------------------------------------------------------------------------


def percentiles(values: Sequence[float]) -> list[float]:
    """median, p90, p99, max."""
    if len(values) < 2:
        return [values[0]] * 4 if values else []
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return [statistics.median(values), cuts[89], cuts[98], max(values)]


def latency_row(path: str, phase: str, seconds: Sequence[float]) -> str:
    figures = percentiles(seconds)
    cells = [f"{value * 1000:.1f}" for value in figures] if figures else ["-"] * 4
    return f"| {path} | {phase} | {len(seconds)} | " + " | ".join(cells) + " |"


def ms(figures: Sequence[float], index: int) -> str:
    return f"{figures[index] * 1000:.0f}" if figures else "-"


def render(
    m: Measurements, phases: list[PhaseResult], args: argparse.Namespace, apiserver_version: str
) -> str:
    measured = [phase for phase in phases if phase.name not in (WARMUP, IDLE)]
    clients = args.tenants * args.members
    connect = percentiles(m.connect_seconds)
    stopped = [
        f"**Polling stopped early in {phase.name}**: {phase.polling_stopped}; the changes "
        "went on, the polls it still awaited count as unobserved."
        for phase in measured
        if phase.polling_stopped
    ]
    return "\n".join(
        [
            "# Live updates: push against polling, measured",
            "",
            f"{clients} websocket clients ({args.tenants} tenants × {args.members} members, one "
            f"session each) on `manage.py serve` (uvicorn, one process, `DB_CONN_MAX_AGE="
            f"{args.web_conn_max_age}`). {args.changes} status changes per phase, one every "
            f"{args.interval:g} s round-robin over the tenants, so each goes to {args.members} "
            f"clients. Connecting all {clients} at once took {ms(connect, 0)} / {ms(connect, 2)} "
            "ms (median / p99, handshake to the server's hello).",
            *(line for note in stopped for line in ("", note)),
            "",
            "## From the status PATCH to the client (milliseconds)",
            "",
            *latency_table(m, measured, args),
            "",
            "## The right clients",
            "",
            *correctness_table(m, measured, args),
            "",
            "## Load on the web process",
            "",
            *load_table(m, [phase for phase in phases if phase.name != WARMUP]),
            "",
            machine_notes(apiserver_version)
            + f" Web process: uvicorn {version('uvicorn')} (websockets {version('websockets')}"
            f" on both sides, aiohttp {version('aiohttp')} for the clients' HTTP); clients and "
            "watcher share this process's interpreter.",
            "",
        ]
    )


def latency_table(
    m: Measurements, phases: list[PhaseResult], args: argparse.Namespace
) -> list[str]:
    rows = ["| path | phase | n | median | p90 | p99 | max |", "|---|---|---|---|---|---|---|"]
    for phase in phases:
        deliveries = [d for d in m.deliveries if d.change.phase == phase.name]
        rows.append(
            latency_row(
                "**push**: event at the client",
                phase.name,
                [d.event_at - d.change.sent for d in deliveries],
            )
        )
        rows.append(
            latency_row(
                "push: event + re-fetch shows the change",
                phase.name,
                [d.refetched_at - d.change.sent for d in deliveries if d.refetched_at is not None],
            )
        )
        if phase.pollers_per_tenant:
            rows.append(
                latency_row(
                    f"**polling every {args.poll_interval:g} s**: first poll that shows it",
                    phase.name,
                    [at - change.sent for change, at in m.poll_observations_in(phase.name)],
                )
            )
    names = {phase.name for phase in phases}
    changes = [change for change in m.changes if change.phase in names]
    rows.append(
        latency_row(
            "reference: status PATCH round trip",
            "all",
            [change.applied - change.sent for change in changes],
        )
    )
    rows += [
        latency_row(
            "reference: one GET of the network API",
            phase.name,
            m.request_seconds.get(phase.name, []),
        )
        for phase in phases
    ]
    return rows


def correctness_table(
    m: Measurements, phases: list[PhaseResult], args: argparse.Namespace
) -> list[str]:
    def row(label: str, cell: Callable[[PhaseResult], object]) -> str:
        return f"| {label} | " + " | ".join(str(cell(phase)) for phase in phases) + " |"

    def delivered(phase: PhaseResult) -> int:
        return sum(1 for d in m.deliveries if d.change.phase == phase.name)

    def observed(phase: PhaseResult) -> str:
        if not phase.pollers_per_tenant:
            return "-"
        expected = phase.changes * phase.pollers_per_tenant
        return f"{len(m.poll_observations_in(phase.name))} / {expected}"

    rows = [
        "| | " + " | ".join(phase.name for phase in phases) + " |",
        "|---" * (len(phases) + 1) + "|",
        row("status changes", lambda phase: phase.changes),
        row(
            f"deliveries expected ({args.members} clients each)",
            lambda phase: phase.changes * args.members,
        ),
        row("events delivered to the tenant's clients", delivered),
        row(
            f"**lost** (no event within {PUSH_SETTLE_SECONDS:g} s)",
            lambda phase: phase.changes * args.members - delivered(phase),
        ),
        row("duplicate events", lambda phase: phase.tally.duplicates),
        row("**misdelivered** (events at other tenants' clients)", lambda p: p.tally.misdelivered),
        row(
            "re-fetches after the event that did not show it yet", lambda p: p.tally.stale_refetches
        ),
        row("polling: changes observed / expected", observed),
        row("HTTP requests that failed", lambda phase: phase.tally.http_failures),
    ]
    if m.misdelivered_examples:
        examples = "; ".join(f"{phase}: `{event}`" for phase, event in m.misdelivered_examples[:3])
        rows += ["", f"Misdelivered, the first few (phase: event): {examples}"]
    return rows


def load_table(m: Measurements, phases: list[PhaseResult]) -> list[str]:
    def row(label: str, cell: Callable[[PhaseResult], str]) -> str:
        return f"| {label} | " + " | ".join(cell(phase) for phase in phases) + " |"

    def rate(count: Callable[[PhaseResult], int]) -> Callable[[PhaseResult], str]:
        return lambda phase: f"{count(phase) / phase.seconds:.1f}"

    def polls_per_second(phase: PhaseResult) -> str:
        if not phase.polling_seconds:
            return "-"
        return f"{phase.tally.polls / phase.polling_seconds:.1f}"

    def lag(phase: PhaseResult) -> str:
        figures = percentiles(m.loop_lag.get(phase.name, []))
        return f"{ms(figures, 0)} / {ms(figures, 2)}"

    return [
        "| | " + " | ".join(phase.name for phase in phases) + " |",
        "|---" * (len(phases) + 1) + "|",
        row("duration (s)", lambda phase: f"{phase.seconds:.1f}"),
        row("status changes / s", rate(lambda phase: phase.changes)),
        row("websocket events to clients / s", rate(lambda phase: phase.tally.events)),
        row(
            f"websocket pings + pongs / s (live.js, every {PING_SECONDS:g} s)",
            rate(lambda phase: phase.tally.pings + phase.tally.pongs),
        ),
        row("HTTP re-fetches after events / s", rate(lambda phase: phase.tally.refetches)),
        row("polling on (s of the phase)", lambda phase: f"{phase.polling_seconds:.1f}"),
        row("**HTTP polls sent / s** (while polling was on)", polls_per_second),
        row(
            "polls that brought a change",
            lambda phase: (
                f"{phase.tally.polls_with_news} of {phase.tally.polls}"
                if phase.tally.polls
                else "-"
            ),
        ),
        row(
            "**web process CPU** (% of one core)",
            lambda phase: f"{100 * phase.server_cpu_seconds / phase.seconds:.0f}",
        ),
        row("web process Postgres connections (max)", lambda p: str(p.max_web_db_connections)),
        row("client loop lag, median / p99 (ms)", lag),
    ]


if __name__ == "__main__":
    sys.exit(main())
