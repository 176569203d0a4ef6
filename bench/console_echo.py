"""A VM's serial console: how long a keystroke takes to come back, through the portal and not.

    eval "$(scripts/test-services.sh)" && .venv/bin/python -m bench.console_echo

Everything real and on loopback, in production's shape: a kube-apiserver + etcd of its own,
the simulator in a child process (``manage.py simulate``: it plays KubeVirt and serves
virt-api's aggregated ``subresources.kubevirt.io``, a getty per console that echoes what is
typed at ``login:``), a throwaway Postgres database, a Redis of its own for the channel
layer, and the portal in a child process as deployed, ``manage.py serve`` (uvicorn, one
process). One tenant with VMs created through ``vm_create`` and brought to Running by the
simulator and the watcher (which runs in this process until they are, and is stopped before
anything is measured). Members sign in by session cookie.

Three routes to the same getty, each measured with real websocket clients on one asyncio
loop in this process:

- **portal**: ``ws://…/ws/tenants/<slug>/vms/<pk>/console/`` on the portal, which proxies it
  to the API server (what a browser does);
- **kube-apiserver**: ``KubeClient.open_console`` (the portal's own adapter, from here): the
  API server's aggregation layer proxies it to virt-api; no portal in between;
- **virt-api**: the simulator's server itself, with the API server's front-proxy client
  certificate (what the aggregation layer presents).

Measured: (1) keystroke → echo, one keystroke outstanding, on one session per route, the
routes taking turns in blocks so that a change of machine load falls on all three alike,
with the CPU time each process spends per keystroke; (2) session open: connect → first byte
of the login prompt, one at a time (routes in turn); (3) ``--sessions`` consoles opened at
once per route, then idle, then each typing at a human's pace, then each typing as fast as
its echoes come back, with the CPU time of every server process.
The getty keeps 256 typed bytes a line, so every ``LINE_KEYS`` keystrokes a session erases
its line (Ctrl-U, not timed). Bounded: the counts given and ``--max-seconds`` in all.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import os
import random
import shutil
import ssl
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar
from urllib.parse import urlsplit

from websockets.asyncio.client import connect
from websockets.typing import Origin, Subprotocol

from bench.database import on_bench_database
from bench.live_updates import (
    ChildProcess,
    PortalServer,
    PrivateRedis,
    latency_row,
)
from bench.status_to_event import machine_notes
from butler_portal.kube.adapter import ConsoleStream
from butler_portal.kube.localcp import LOOPBACK, LocalControlPlane

if TYPE_CHECKING:
    from butler_portal.kube.adapter import KubeClient, Manifest

T = TypeVar("T")

BENCH_DATABASE = "butler_bench_console_echo"
REPO_ROOT = Path(__file__).resolve().parent.parent
# The getty drops what is typed past 256 bytes a line: erase the line well before that.
LINE_KEYS = 200
ERASE_LINE = b"\x15"  # Ctrl-U; the getty answers with one "\b \b" per character erased
ERASED_CHARACTER = b"\b \b"
KEYS = b"abcdefghijklmnopqrstuvwxyz0123456789"
PROMPT_END = b"login: "
ECHO_TIMEOUT_SECONDS = 10.0
OPEN_TIMEOUT_SECONDS = 30.0
VMS_RUNNING_TIMEOUT_SECONDS = 120.0
IDLE_SECONDS = 5.0
AUDIT_SETTLE_SECONDS = 10.0
FAILURE_LOG_LINES = 200
WARMUP_OPENS = 2
# virt-api's aggregated API, as the simulator registers it (see simulator/subresources.py).
API_SERVICE_VERSION, API_SERVICE = "apiregistration.k8s.io/v1", "v1.subresources.kubevirt.io"
CONSOLE_SUBPROTOCOL = Subprotocol("plain.kubevirt.io")

PORTAL, APISERVER, VIRT_API = "portal", "kube-apiserver", "virt-api"
ROUTE_NAMES = {
    PORTAL: "**portal**: browser → portal → kube-apiserver → virt-api",
    APISERVER: "kube-apiserver (adapter `open_console`, no portal) → virt-api",
    VIRT_API: "virt-api directly (simulator, front-proxy certificate)",
}
# Whose CPU time is read, in the report's column order.
PROCESSES = ("portal (uvicorn)", "kube-apiserver", "simulator", "clients (this process)")


# --- What is measured ---------------------------------------------------------------------


@dataclass(frozen=True)
class Guest:
    """A running VM, and the member who opens its console."""

    vm_id: int
    name: str
    namespace: str
    slug: str
    session_key: str


@dataclass
class Load:
    """What a stretch of time cost each server process: CPU seconds over wall seconds."""

    seconds: float = 0.0
    cpu: dict[str, float] = field(default_factory=dict)

    def add(self, other: Load) -> None:
        self.seconds += other.seconds
        for name, spent in other.cpu.items():
            self.cpu[name] = self.cpu.get(name, 0.0) + spent


@dataclass
class Phase:
    """One stretch of a crowd's life on a route: its echoes and what it cost."""

    route: str
    name: str
    latencies: list[float]
    load: Load


@dataclass
class Results:
    echo: dict[str, list[float]] = field(default_factory=dict)  # one session, by route
    echo_load: dict[str, Load] = field(default_factory=dict)
    opens: dict[str, list[float]] = field(default_factory=dict)  # one at a time, by route
    opens_load: dict[str, Load] = field(default_factory=dict)
    crowd_opens: dict[str, list[float]] = field(default_factory=dict)  # all at once
    phases: list[Phase] = field(default_factory=list)
    # Console sessions the portal accepted, and the open/close audit records it wrote.
    portal_sessions: int = 0
    portal_extensions: str = ""
    load_average_at_start: tuple[float, float, float] = (0.0, 0.0, 0.0)
    audited: tuple[int, int] = (0, 0)


# --- Entry point ----------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keystrokes", type=int, default=500, help="one session, per route")
    parser.add_argument("--warmup", type=int, default=20, help="keystrokes first, not counted")
    parser.add_argument("--blocks", type=int, default=5, help="turns the routes take")
    parser.add_argument("--opens", type=int, default=30, help="session opens per route")
    parser.add_argument("--sessions", type=int, default=20, help="consoles open at once")
    parser.add_argument(
        "--session-keystrokes", type=int, default=100, help="per session, typing at a pace"
    )
    parser.add_argument(
        "--flat-out-keystrokes", type=int, default=500, help="per session, typing flat out"
    )
    parser.add_argument(
        "--typing-interval", type=float, default=0.15, help="seconds between keystrokes"
    )
    parser.add_argument("--vms", type=int, default=4, help="the sessions spread over these")
    parser.add_argument("--simulator-speed", type=float, default=20.0)
    parser.add_argument("--seed", type=int, default=1, help="for the typists' random phases")
    parser.add_argument(
        "--web-conn-max-age",
        type=int,
        default=0,
        help="DB_CONN_MAX_AGE of the portal process (0, as bench.live_updates explains)",
    )
    parser.add_argument(
        "--web-pool-size",
        type=int,
        default=0,
        help="DB_POOL_SIZE of the portal process (0: a new Postgres connection per use)",
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
    if args.keystrokes < args.blocks or min(args.vms, args.sessions, args.opens) < 1:
        parser.error("--keystrokes at least --blocks; --vms, --sessions, --opens at least 1")
    deadline = time.monotonic() + args.max_seconds
    started = time.monotonic()
    with contextlib.ExitStack() as stack:
        scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="butler-bench-")))
        control_plane = stack.enter_context(LocalControlPlane())
        redis_server = stack.enter_context(PrivateRedis(scratch / "redis.log", deadline))
        report = run(control_plane, redis_server, scratch, args, deadline)
    report += f"\nThe whole run took {time.monotonic() - started:.0f} s.\n"
    print(report)
    if args.output:
        args.output.write_text(report)
    return 0


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

    client = kube_client()
    assert client is not None
    simulator = SimulatorProcess(scratch / "simulate.log")
    server = ConsolePortal(
        control_plane, scratch / "serve.log", args.web_conn_max_age, args.web_pool_size
    )
    try:
        simulator.start(client, args.simulator_speed, deadline)
        guests = provision(client, args.vms, args.sessions, deadline)
        server.start(deadline)
        meters = CpuMeters(
            {
                PROCESSES[0]: server.cpu_seconds,
                PROCESSES[1]: apiserver_cpu_reader(control_plane),
                PROCESSES[2]: simulator.cpu_seconds,
                PROCESSES[3]: time.process_time,
            }
        )
        routes = Routes(client, control_plane, server, guests)
        bench = Bench(routes, meters, args)
        results = asyncio.run(
            asyncio.wait_for(bench.run(), timeout=max(1.0, deadline - time.monotonic()))
        )
        results.audited = audited_sessions(results.portal_sessions)
    except BaseException:
        print(f"--- serve.log\n{server.log_tail(FAILURE_LOG_LINES)}", file=sys.stderr)
        print(f"--- simulate.log\n{simulator.log_tail(FAILURE_LOG_LINES)}", file=sys.stderr)
        raise
    finally:
        server.stop()
        simulator.stop()
    return render(results, args, client.server_version())


# --- Set-up: the simulator, the portal, a tenant with running VMs --------------------------


class SimulatorProcess(ChildProcess):
    """``manage.py simulate`` against the benchmark's control plane.

    A process of its own, as the real virt-api is: its getty and TLS work do not compete for
    this process's interpreter with the clients that time them.
    """

    name = "manage.py simulate"

    def start(self, client: KubeClient, speed: float, deadline: float) -> None:
        self.launch(
            [sys.executable, "manage.py", "simulate", "--speed", f"{speed:g}"],
            cwd=REPO_ROOT,
            env=dict(os.environ),
        )
        # It registers virt-api's APIService once serving, and the API server checks it.
        self.wait_until(lambda: virt_api_available(client), deadline)


def virt_api_available(client: KubeClient) -> bool:
    from butler_portal.kube.errors import NotFound
    from butler_portal.simulator.subresources import is_available

    try:
        return is_available(client.get(API_SERVICE_VERSION, "APIService", API_SERVICE))
    except NotFound:
        return False


class ConsolePortal(PortalServer):
    """``manage.py serve`` as ``bench.live_updates`` runs it, on this benchmark's database."""

    def __init__(
        self, control_plane: LocalControlPlane, log_path: Path, conn_max_age: int, pool_size: int
    ) -> None:
        super().__init__(control_plane, log_path, conn_max_age)
        self._pool_size = pool_size

    def start(self, deadline: float) -> None:
        database = urlsplit(os.environ["DATABASE_URL"])._replace(path=f"/{BENCH_DATABASE}")
        env = {
            **os.environ,
            "DATABASE_URL": database.geturl(),
            "DB_CONN_MAX_AGE": str(self._conn_max_age),
            "DB_POOL_SIZE": str(self._pool_size),
            "KUBE_MODE": "kubeconfig",
            "KUBECONFIG": str(self._control_plane.kubeconfig_path),
        }
        env.pop("CELERY_TASK_ALWAYS_EAGER", None)  # as deployed: tasks go to the broker
        command = [sys.executable, "manage.py", "serve", "--no-seed"]
        self.launch(
            [*command, "--host", LOOPBACK, "--port", str(self.port)],
            cwd=REPO_ROOT,
            env=env,
        )
        self.wait_until(self._healthy, deadline)


def provision(client: KubeClient, vm_count: int, member_count: int, deadline: float) -> list[Guest]:
    """A tenant, its VMs through ``vm_create`` until Running, and a signed-in member a session.

    Running is what the watcher records from what the simulator reports, as in production;
    the watcher is stopped once they run, so that nothing but the clients works here while
    they measure.
    """
    from django.conf import settings
    from django.test import Client

    from butler_portal.kube.platform import prepare_local_platform
    from butler_portal.watcher import Watcher
    from clusters.seed import seed_catalog
    from tenants.access import TenantRole
    from tenants.audit import Actor
    from tenants.models import LoadBalancerRange, QuotaResource, User
    from tenants.owned import namespace_of
    from tenants.services import membership_add, quota_update, tenant_create
    from vms.models import VirtualMachine
    from vms.seed import seed_vm_catalog
    from vms.selectors import vm_spec_with_defaults
    from vms.services import vm_create

    prepare_local_platform(client)
    namespace = {"apiVersion": "v1", "kind": "Namespace"}
    client.apply({**namespace, "metadata": {"name": settings.WATCHER_LEASE_NAMESPACE}})
    LoadBalancerRange.objects.create(
        name="bench", first_address="192.0.2.1", last_address="192.0.2.254"
    )
    operator = Actor(User.objects.create_user("bench-operator", platform_role="operator"))
    seed_catalog(operator)
    seed_vm_catalog(operator)
    tenant = tenant_create(actor=operator, slug="bench-console", name="Bench console")
    # Room for the VMs, whatever the default quota (addresses are not theirs to hold). Set
    # before the watcher starts: quota_update locks the tenant, then its network row; the
    # watcher's network handler takes them the other way round, and the two deadlocked here
    # (Postgres aborts one; the handler retries, but the run's output is no place for it).
    vm_resources = (QuotaResource.VMS, QuotaResource.VCPU, QuotaResource.MEMORY_MIB)
    roomy = {str(each): 1_000_000 for each in (*vm_resources, QuotaResource.STORAGE_GIB)}
    quota_update(actor=operator, tenant=tenant, limits=roomy)
    watcher = Watcher.from_settings(reconcile_interval=None)
    watcher.start()
    try:
        if not watcher.wait_until_synced(60):
            raise RuntimeError("the watcher did not lead and sync within 60 s")
        vms = [
            vm_create(
                actor=operator, tenant=tenant, spec=vm_spec_with_defaults(name=f"console-{index}")
            )
            for index in range(vm_count)
        ]
        ids = [vm.pk for vm in vms]
        running = VirtualMachine.objects.filter(pk__in=ids, state=VirtualMachine.State.RUNNING)
        until = min(deadline, time.monotonic() + VMS_RUNNING_TIMEOUT_SECONDS)
        while running.count() < vm_count:
            if time.monotonic() > until:
                states = list(VirtualMachine.objects.filter(pk__in=ids).values("name", "state"))
                raise RuntimeError(f"the VMs did not all run in time: {states}")
            time.sleep(0.2)
    finally:
        watcher.stop()
    guests = []
    for number in range(member_count):
        member = User.objects.create_user(f"bench-member-{number}")
        membership_add(actor=operator, tenant=tenant, user=member, role=TenantRole.MEMBER)
        browser = Client()
        browser.force_login(member)
        vm = vms[number % vm_count]
        guests.append(
            Guest(
                vm.pk,
                vm.name,
                namespace_of(vm),
                tenant.slug,
                browser.cookies[settings.SESSION_COOKIE_NAME].value,
            )
        )
    return guests


def audited_sessions(expected: int) -> tuple[int, int]:
    """The portal's ``open_console`` and ``close_console`` audit records, once the closes
    have caught up with ``expected`` (a session's end is audited after its socket closed)."""
    from tenants.models import AuditEvent

    def count(action: str) -> int:
        return AuditEvent.objects.filter(action=action).count()

    until = time.monotonic() + AUDIT_SETTLE_SECONDS
    while count("close_console") < expected and time.monotonic() < until:
        time.sleep(0.1)
    return count("open_console"), count("close_console")


# --- CPU time of the processes involved ---------------------------------------------------


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def apiserver_cpu_reader(control_plane: LocalControlPlane) -> Callable[[], float]:
    """The CPU time of this control plane's kube-apiserver, found by its port in /proc."""
    port_flag = f"--secure-port={control_plane.apiserver_port}".encode()
    for entry in Path("/proc").iterdir():
        with contextlib.suppress(OSError):
            arguments = (entry / "cmdline").read_bytes().split(b"\0")
            if arguments[0].endswith(b"kube-apiserver") and port_flag in arguments:
                pid = int(entry.name)
                return lambda: process_cpu_seconds(pid)
    raise RuntimeError(f"no kube-apiserver with {port_flag.decode()} among the processes")


class CpuMeters:
    def __init__(self, readers: dict[str, Callable[[], float]]) -> None:
        self.readers = readers

    def read(self) -> dict[str, float]:
        return {name: reader() for name, reader in self.readers.items()}

    async def metered(self, work: Awaitable[T]) -> tuple[T, Load]:
        before, started = self.read(), time.perf_counter()
        result = await work
        seconds, after = time.perf_counter() - started, self.read()
        return result, Load(seconds, {name: after[name] - before[name] for name in after})


# --- The three routes to a getty ----------------------------------------------------------


class Routes:
    """Opens a console of a guest by each route; every one is a ``ConsoleStream``."""

    def __init__(
        self,
        client: KubeClient,
        control_plane: LocalControlPlane,
        server: PortalServer,
        guests: list[Guest],
    ) -> None:
        from django.conf import settings

        self.portal_sessions = 0  # accepted by the portal
        self.portal_extensions = ""  # the websocket extensions the portal agreed to
        self.client = client
        self.server = server
        self.guests = guests
        self.cookie_name = settings.SESSION_COOKIE_NAME
        api_service: Manifest = client.get(API_SERVICE_VERSION, "APIService", API_SERVICE)
        self.virt_api_port = int(api_service["spec"]["service"]["port"])
        # Trust as the aggregation layer does: virt-api's CA from the APIService, and the API
        # server's front-proxy client certificate (the control plane's own, on disk).
        pki = control_plane.root_dir / "pki"
        self.virt_api_tls = ssl.create_default_context(
            cadata=base64.b64decode(api_service["spec"]["caBundle"]).decode()
        )
        self.virt_api_tls.load_cert_chain(
            pki / "front-proxy-client.crt", pki / "front-proxy-client.key"
        )

    async def open(self, route: str, guest: Guest) -> ConsoleStream:
        if route == PORTAL:
            return await self._portal(guest)
        if route == APISERVER:
            return await self.client.open_console(guest.namespace, guest.name)
        return await self._virt_api(guest)

    async def _portal(self, guest: Guest) -> ConsoleStream:
        connection = await connect(
            f"ws://{LOOPBACK}:{self.server.port}"
            f"/ws/tenants/{guest.slug}/vms/{guest.vm_id}/console/",
            origin=Origin(self.server.base_url),
            additional_headers={"Cookie": f"{self.cookie_name}={guest.session_key}"},
            # compression left at its default: browsers offer permessage-deflate too, and
            # uvicorn accepts it (the portal's side to the API server never compresses).
            proxy=None,
            open_timeout=OPEN_TIMEOUT_SECONDS,
        )
        self.portal_sessions += 1
        if connection.response is not None:
            self.portal_extensions = connection.response.headers.get(
                "Sec-WebSocket-Extensions", "none"
            )
        return ConsoleStream(connection)

    async def _virt_api(self, guest: Guest) -> ConsoleStream:
        connection = await connect(
            f"wss://{LOOPBACK}:{self.virt_api_port}/apis/subresources.kubevirt.io/v1"
            f"/namespaces/{guest.namespace}/virtualmachineinstances/{guest.name}/console",
            ssl=self.virt_api_tls,
            subprotocols=[CONSOLE_SUBPROTOCOL],
            # Who the aggregation layer says the caller is (the simulator only logs it).
            additional_headers={"X-Remote-User": "admin", "X-Remote-Group": "system:masters"},
            compression=None,
            proxy=None,
            open_timeout=OPEN_TIMEOUT_SECONDS,
        )
        return ConsoleStream(connection)


class Typist:
    """One console session: types a key, waits for its echo, and keeps its line short."""

    def __init__(self, console: ConsoleStream, number: int = 0) -> None:
        self.console = console
        self.next_key = number  # typists start on different keys
        self.on_line = 0

    async def keystroke(self) -> float:
        """Seconds from sending one key to its echo (the erasing of a full line not timed)."""
        if self.on_line >= LINE_KEYS:
            await self.console.send(ERASE_LINE)
            await self._expect(ERASED_CHARACTER * self.on_line)
            self.on_line = 0
        key = KEYS[self.next_key % len(KEYS) : self.next_key % len(KEYS) + 1]
        self.next_key += 1
        started = time.perf_counter()
        await self.console.send(key)
        await self._expect(key)
        self.on_line += 1
        return time.perf_counter() - started

    async def _expect(self, wanted: bytes) -> None:
        seen = b""
        while len(seen) < len(wanted):
            seen += await receive(self.console, ECHO_TIMEOUT_SECONDS)
        if seen != wanted:
            raise RuntimeError(f"expected {wanted!r} from the console, got {seen!r}")


async def receive(console: ConsoleStream, timeout: float) -> bytes:
    output = await asyncio.wait_for(console.receive(), timeout)
    if output is None:
        raise RuntimeError(f"the console closed: {console.close_code} {console.close_reason!r}")
    return output


async def until_prompt(console: ConsoleStream) -> float:
    """Read the greeting up to ``login:``; returns when its first byte arrived."""
    seen = await receive(console, OPEN_TIMEOUT_SECONDS)
    first_byte = time.perf_counter()
    while not seen.endswith(PROMPT_END):
        seen += await receive(console, OPEN_TIMEOUT_SECONDS)
    return first_byte


# --- The measurements -----------------------------------------------------------------------


class Bench:
    def __init__(self, routes: Routes, meters: CpuMeters, args: argparse.Namespace) -> None:
        self.routes = routes
        self.meters = meters
        self.args = args
        self.results = Results()
        self.random = random.Random(args.seed)

    async def run(self) -> Results:
        self.results.load_average_at_start = os.getloadavg()
        await self._one_session_each()
        await self._opens()
        for route in ROUTE_NAMES:
            try:
                await self._crowd(route)
            except Exception as error:
                error.add_note(f"with {self.args.sessions} consoles open by route {route}")
                raise
        self.results.portal_sessions = self.routes.portal_sessions
        self.results.portal_extensions = self.routes.portal_extensions
        return self.results

    async def _open_at_prompt(self, route: str, guest: Guest) -> tuple[ConsoleStream, float]:
        """A console at its login prompt, and the seconds from connect to its first byte."""
        started = time.perf_counter()
        console = await self.routes.open(route, guest)
        try:
            first_byte = await until_prompt(console)
        except BaseException:
            await console.close()
            raise
        return console, first_byte - started

    async def _one_session_each(self) -> None:
        """Keystroke → echo on one session per route, the routes taking turns in blocks."""
        guest = self.routes.guests[0]
        typists: dict[str, Typist] = {}
        try:
            for route in ROUTE_NAMES:
                console, _ = await self._open_at_prompt(route, guest)
                typists[route] = Typist(console)
                for _ in range(self.args.warmup):
                    await typists[route].keystroke()
            block = self.args.keystrokes // self.args.blocks
            for index in range(self.args.blocks):
                # The last block takes what the division left over.
                last = index == self.args.blocks - 1
                count = self.args.keystrokes - block * index if last else block
                for route, typist in typists.items():
                    latencies, load = await self.meters.metered(
                        type_keys(typist, count, interval=0.0)
                    )
                    self.results.echo.setdefault(route, []).extend(latencies)
                    self.results.echo_load.setdefault(route, Load()).add(load)
        finally:
            await asyncio.gather(*(typist.console.close() for typist in typists.values()))

    async def _opens(self) -> None:
        """Connect → first byte of the login prompt, one session at a time, routes in turn."""
        guest = self.routes.guests[0]
        for index in range(WARMUP_OPENS + self.args.opens):
            for route in ROUTE_NAMES:
                # The portal audits a session's end after its socket closed: that work may
                # fall into the next open's CPU time, which is why both are counted as one.
                seconds, load = await self.meters.metered(self._open_and_close(route, guest))
                if index >= WARMUP_OPENS:
                    self.results.opens.setdefault(route, []).append(seconds)
                    self.results.opens_load.setdefault(route, Load()).add(load)

    async def _open_and_close(self, route: str, guest: Guest) -> float:
        console, seconds = await self._open_at_prompt(route, guest)
        await console.close()
        return seconds

    async def _crowd(self, route: str) -> None:
        """``--sessions`` consoles opened at once: idle, typing at a pace, then flat out."""
        guests = self.routes.guests
        opened = await asyncio.gather(
            *(self._open_at_prompt(route, guest) for guest in guests), return_exceptions=True
        )
        consoles = [each[0] for each in opened if not isinstance(each, BaseException)]
        try:
            failures = [each for each in opened if isinstance(each, BaseException)]
            if failures:
                raise RuntimeError(
                    f"{len(failures)} of {len(guests)} consoles did not open: {failures[0]!r}"
                )
            self.results.crowd_opens[route] = [
                each[1] for each in opened if not isinstance(each, BaseException)
            ]
            typists = [Typist(console, number) for number, console in enumerate(consoles)]
            _, idle = await self.meters.metered(asyncio.sleep(IDLE_SECONDS))
            self.results.phases.append(Phase(route, "open, idle", [], idle))
            interval = self.args.typing_interval
            paces = (
                (
                    f"typing, a key every {interval:g} s each",
                    interval,
                    self.args.session_keystrokes,
                ),
                ("flat out", 0.0, self.args.flat_out_keystrokes),
            )
            for name, pace, count in paces:
                latencies, load = await self.meters.metered(self._all_typing(typists, pace, count))
                self.results.phases.append(Phase(route, name, latencies, load))
        finally:
            await asyncio.gather(*(console.close() for console in consoles))

    async def _all_typing(self, typists: list[Typist], interval: float, count: int) -> list[float]:
        each = await asyncio.gather(
            *(
                type_keys(typist, count, interval, start_after=self.random.uniform(0, interval))
                for typist in typists
            )
        )
        return [latency for latencies in each for latency in latencies]


async def type_keys(
    typist: Typist, count: int, interval: float, start_after: float = 0.0
) -> list[float]:
    """``count`` keystrokes, one every ``interval`` seconds (0: each as soon as the last echo
    is back); a key is never sent before the last one's echo, so each echo is attributable."""
    loop = asyncio.get_running_loop()
    await asyncio.sleep(start_after)
    started = loop.time()
    latencies = []
    for index in range(count):
        await asyncio.sleep(max(0.0, started + index * interval - loop.time()))
        latencies.append(await typist.keystroke())
    return latencies


# --- Report ------------------------------------------------------------------------------


def render(results: Results, args: argparse.Namespace, apiserver_version: str) -> str:
    echo = {route: statistics.median(values) for route, values in results.echo.items()}
    opens = {route: statistics.median(values) for route, values in results.opens.items()}
    return "\n".join(
        [
            "# VM serial console: keystroke echo, measured",
            "",
            f"The same simulated getty reached three ways (see `bench/console_echo.py`). One "
            f"keystroke outstanding per session; a keystroke is one byte in a binary frame and "
            f"its echo one byte back. The portal is `manage.py serve` (uvicorn, one process, "
            f"`DB_CONN_MAX_AGE={args.web_conn_max_age}`, `DB_POOL_SIZE={args.web_pool_size}`); "
            "its clients' websockets negotiated "
            f"`{results.portal_extensions}`, as a browser's would. {args.vms} running VMs, "
            "one tenant.",
            "",
            "## One session: keystroke → echo (milliseconds)",
            "",
            f"{args.keystrokes} keystrokes a route after {args.warmup} warm-up, the routes "
            f"taking turns in {args.blocks} blocks.",
            "",
            "| route | phase | n | median | p90 | p99 | max |",
            "|---|---|---|---|---|---|---|",
            *(
                latency_row(ROUTE_NAMES[route], "one session", values)
                for route, values in results.echo.items()
            ),
            "",
            f"Differences of the medians: **the portal's hop adds "
            f"{ms_difference(echo[PORTAL], echo[APISERVER])} ms to a keystroke's echo**, the API "
            f"server's aggregation layer {ms_difference(echo[APISERVER], echo[VIRT_API])} ms.",
            "",
            "CPU time per keystroke (milliseconds, each process; keystroke and echo both ways):",
            "",
            *cpu_table(results.echo_load, results.echo),
            "",
            "## Session open: connect → first byte of the login prompt (milliseconds)",
            "",
            f"One session at a time ({args.opens} a route after {WARMUP_OPENS} warm-up, routes "
            f"in turn, each closed before the next); then {args.sessions} at once per route. "
            "Through the portal this includes sign-in by session, the permission checks, the "
            "upstream connection and the audit record, all before the socket is accepted.",
            "",
            "| route | phase | n | median | p90 | p99 | max |",
            "|---|---|---|---|---|---|---|",
            *(
                latency_row(ROUTE_NAMES[route], "one at a time", values)
                for route, values in results.opens.items()
            ),
            *(
                latency_row(ROUTE_NAMES[route], f"{args.sessions} at once", values)
                for route, values in results.crowd_opens.items()
            ),
            "",
            "CPU time per session, opened and closed (milliseconds, one at a time):",
            "",
            *cpu_table(results.opens_load, results.opens),
            "",
            f"Differences of the medians, one at a time: the portal adds "
            f"{ms_difference(opens[PORTAL], opens[APISERVER])} ms to opening a console, the API "
            f"server's aggregation layer {ms_difference(opens[APISERVER], opens[VIRT_API])} ms.",
            "",
            f"## {args.sessions} consoles open at once",
            "",
            f"{args.sessions} sessions (one member each, over {args.vms} VMs), first idle for "
            f"{IDLE_SECONDS:g} s, then each typing {args.session_keystrokes} keys at one every "
            f"{args.typing_interval:g} s (a fast typist; from a random phase), then each "
            f"{args.flat_out_keystrokes} keys as fast as its echoes come back.",
            "",
            "Keystroke → echo (milliseconds):",
            "",
            "| route | phase | n | median | p90 | p99 | max |",
            "|---|---|---|---|---|---|---|",
            *(
                latency_row(ROUTE_NAMES[phase.route], phase.name, phase.latencies)
                for phase in results.phases
                if phase.latencies
            ),
            "",
            "Load (CPU time as % of one core over the phase):",
            "",
            *load_table(results.phases),
            "",
            f"The portal accepted {results.portal_sessions} console sessions in the run and "
            f"audited {results.audited[0]} opens and {results.audited[1]} closes.",
            "",
            machine_notes(apiserver_version)
            + " Load average at the start of the measurements: "
            + ", ".join(f"{value:.1f}" for value in results.load_average_at_start)
            + f". Portal: uvicorn {version('uvicorn')}, websockets {version('websockets')} on "
            "every side; the simulator in a process of its own (its getty and TLS), the "
            "clients on one asyncio loop in this process; the watcher brought the VMs to "
            "Running and was stopped before anything was measured.",
            "",
        ]
    )


def ms_difference(seconds: float, than: float) -> str:
    """``seconds - than`` in milliseconds, signed (and never "-0.0")."""
    return f"{round(1000 * (seconds - than), 1) + 0.0:+.1f}"


def cpu_table(loads: dict[str, Load], samples: dict[str, list[float]]) -> list[str]:
    """Each process's CPU time per sample (keystroke, session), by route."""
    rows = [
        "| route | " + " | ".join(PROCESSES) + " |",
        "|---" * (len(PROCESSES) + 1) + "|",
    ]
    for route, load in loads.items():
        count = len(samples[route])
        cells = [f"{1000 * load.cpu[name] / count:.2f}" for name in PROCESSES]
        rows.append(f"| {ROUTE_NAMES[route]} | " + " | ".join(cells) + " |")
    return rows


def load_table(phases: list[Phase]) -> list[str]:
    rows = [
        "| route | phase | s | keystrokes / s | " + " | ".join(PROCESSES) + " |",
        "|---" * (len(PROCESSES) + 4) + "|",
    ]
    for phase in phases:
        seconds = phase.load.seconds
        cells = [f"{100 * phase.load.cpu[name] / seconds:.0f}" for name in PROCESSES]
        rate = f"{len(phase.latencies) / seconds:.0f}"
        rows.append(
            f"| {ROUTE_NAMES[phase.route]} | {phase.name} | {seconds:.1f} | {rate} | "
            + " | ".join(cells)
            + " |"
        )
    return rows


if __name__ == "__main__":
    sys.exit(main())
