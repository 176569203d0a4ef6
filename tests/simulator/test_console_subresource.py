"""KubeVirt's subresource API (STATUS.md §5) served by the simulator as an aggregated API:
discovered and reached through the real kube-apiserver, the way the portal reaches virt-api.
The guest behind a serial console is a getty that never lets anyone in (``serial``)."""

from __future__ import annotations

import asyncio
import ssl
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidHandshake

from butler_portal.kube.adapter import ConsoleStream, KubeClient
from butler_portal.kube.errors import Forbidden, KubeError, NotFound
from butler_portal.kube.localcp import LocalControlPlane
from butler_portal.simulator import Delays, Simulator, SimulatorConfig
from butler_portal.simulator.serial import Getty, Pause, operating_system
from butler_portal.simulator.subresources import (
    API_SERVICE,
    API_SERVICE_VERSION,
    GROUP_VERSION,
    SubresourceServer,
    is_available,
)
from tests.simulator.conftest import Manifest, example, get, reach, status
from tests.simulator_fixtures import STEP_SECONDS, wait_for

KUBEVIRT = "kubevirt.io/v1"
TIMEOUT = 10.0


# --- The guest (no API server) -------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "name"),
    [
        ("docker://quay.io/containerdisks/ubuntu:24.04", "Ubuntu 24.04 LTS"),
        ("quay.io/containerdisks/ubuntu:25.10", "Ubuntu 25.10"),
        (
            "https://cloud.debian.org/images/cloud/bookworm/latest/debian-12-generic-amd64.qcow2",
            "Debian GNU/Linux 12",
        ),
        ("quay.io/containerdisks/fedora:41", "Fedora Linux 41"),
        ("registry.example.com/images/appliance:3", "Linux"),
        ("", "Linux"),
    ],
)
def test_the_guest_introduces_itself_as_the_image_it_booted(source: str, name: str) -> None:
    assert operating_system(source) == name


def typed(getty: Getty, *keys: bytes) -> list[bytes | Pause]:
    """Everything the getty answered to ``keys``, typed one message after another."""
    return [output for key in keys for output in getty.feed(key)]


def test_a_login_name_is_echoed_and_a_password_is_not() -> None:
    getty = Getty("web", "Ubuntu 24.04 LTS", login_delay=2.0)

    assert getty.greeting() == b"\r\nUbuntu 24.04 LTS web ttyS0\r\n\r\nweb login: "
    assert typed(getty, b"r", b"o", b"o", b"t") == [b"r", b"o", b"o", b"t"]
    assert typed(getty, b"\r") == [b"\r\nPassword: "]
    assert typed(getty, b"hunter2") == []
    assert typed(getty, b"\r") == [b"\r\n", Pause(2.0), b"\r\nLogin incorrect\r\nweb login: "]


def test_the_login_line_is_edited_like_a_terminal_line() -> None:
    getty = Getty("web", "Linux", login_delay=0)

    # Backspace erases one character (a multi-byte one whole), Ctrl-U the line; arrow keys
    # (escape sequences) and other control characters do nothing; CR LF is one Enter.
    assert typed(getty, "rø".encode(), b"\x7f", b"\x7f", b"\x7f") == [
        b"r\xc3\xb8",
        b"\b \b",
        b"\b \b",
    ]
    assert typed(getty, b"ad\x1b[Dx\x1bOA\x15") == [b"adx" + b"\b \b" * 3]
    assert typed(getty, b"\t\r\n") == [b"\r\nweb login: "]
    assert typed(getty, b"admin\r\n", b"pw\r\n") == [
        b"admin\r\nPassword: ",
        b"\r\n",
        Pause(0),
        b"\r\nLogin incorrect\r\nweb login: ",
    ]
    assert typed(getty, b"oops\x03") == [b"oops^C\r\n\r\nweb login: "]


# --- Through the API server ----------------------------------------------------------------


def running_instance(namespace: str, name: str, phase: str = "Running") -> Manifest:
    """A VMI as virt-handler reports it (no VM behind it: nothing else touches it)."""
    return {
        "apiVersion": KUBEVIRT,
        "kind": "VirtualMachineInstance",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"domain": {"devices": {}}},
        "status": {"phase": phase},  # the VMI CRD has no status subresource
    }


def console_requests(simulator: Simulator) -> int:
    assert simulator.subresources is not None
    return simulator.subresources.console_requests


async def read_until(console: ConsoleStream, wanted: bytes) -> bytes:
    """What the console sends until ``wanted`` has appeared."""
    seen = b""
    while wanted not in seen:
        chunk = await asyncio.wait_for(console.receive(), TIMEOUT)
        assert chunk is not None, f"the console closed; it had sent {seen!r}"
        seen += chunk
    return seen


@pytest.mark.k8s
def test_the_api_server_discovers_the_group_while_the_simulator_serves_it(
    k8s: KubeClient, simulator: Simulator
) -> None:
    api_service = k8s.get(API_SERVICE_VERSION, "APIService", API_SERVICE)

    assert is_available(api_service)
    assert api_service["spec"]["service"] == {
        "namespace": "kubevirt",
        "name": "virt-api",
        "port": simulator.subresources.port if simulator.subresources else None,
    }
    assert set(k8s.api_resources(GROUP_VERSION)) == {
        "virtualmachineinstances/console",
        "virtualmachineinstances/vnc",
    }


@pytest.mark.k8s
async def test_a_running_vms_console_greets_and_answers_through_the_api_server(
    k8s: KubeClient, k8s_namespace: str, tenant_subnet: Manifest, simulator: Simulator
) -> None:
    vm = example("kubevirt-virtualmachine.yaml", k8s_namespace, kind="VirtualMachine")[0]
    vm["spec"]["runStrategy"] = "Always"  # "vm-1", its root disk imported from ubuntu:24.04
    vm["spec"]["template"]["spec"]["networks"] = vm["spec"]["template"]["spec"]["networks"][:1]
    vm["spec"]["template"]["spec"]["domain"]["devices"]["interfaces"] = [
        {"name": "default", "masquerade": {}}
    ]
    await asyncio.to_thread(k8s.apply, vm)
    await asyncio.to_thread(reach, k8s, vm, lambda v: status(v, "printableStatus") == "Running")

    async with await k8s.open_console(k8s_namespace, "vm-1") as console:
        greeting = await read_until(console, b"login: ")
        assert greeting == b"\r\nUbuntu 24.04 LTS vm-1 ttyS0\r\n\r\nvm-1 login: "
        await console.send(b"ubuntu\r")
        assert await read_until(console, b"Password: ") == b"ubuntu\r\nPassword: "
        await console.send(b"not-the-password\r")
        answer = await read_until(console, b"vm-1 login: ")
        assert answer == b"\r\n\r\nLogin incorrect\r\nvm-1 login: "  # the password never shows

        # Halting the VM ends its console, as the guest's serial port goes away.
        vm["spec"]["runStrategy"] = "Halted"
        await asyncio.to_thread(k8s.apply, vm)
        await asyncio.wait_for(drain(console), TIMEOUT)  # it ends
        assert console.close_code == 1000


async def drain(console: ConsoleStream) -> None:
    async for _ in console:
        pass


@pytest.mark.k8s
@pytest.mark.parametrize(
    ("phase", "error", "message"),
    [
        (None, NotFound, 'virtualmachineinstance.kubevirt.io "guest" not found'),
        ("Scheduling", KubeError, "VMI is not running"),
        (
            "Failed",
            KubeError,
            'Operation cannot be fulfilled on virtualmachineinstance.kubevirt.io "guest": '
            "VMI is in failed status",
        ),
    ],
)
async def test_a_console_is_refused_like_virt_api_refuses_it(
    k8s: KubeClient,
    k8s_namespace: str,
    simulator: Simulator,
    phase: str | None,
    error: type[KubeError],
    message: str,
) -> None:
    if phase is not None:
        await asyncio.to_thread(k8s.apply, running_instance(k8s_namespace, "guest", phase))

    with pytest.raises(error) as refused:
        await k8s.open_console(k8s_namespace, "guest")

    assert refused.value.message == message
    assert refused.value.status_code == {None: 404, "Scheduling": 400, "Failed": 409}[phase]


@pytest.mark.k8s
async def test_the_api_server_checks_rbac_before_any_console_is_reached(
    local_k8s: LocalControlPlane, k8s: KubeClient, k8s_namespace: str, simulator: Simulator
) -> None:
    await asyncio.to_thread(k8s.apply, running_instance(k8s_namespace, "guest"))
    before = console_requests(simulator)

    with local_k8s.client_for("mallory") as stranger, pytest.raises(Forbidden) as refused:
        await stranger.open_console(k8s_namespace, "guest")

    assert 'cannot get resource "virtualmachineinstances/console"' in refused.value.message
    assert console_requests(simulator) == before


@pytest.mark.k8s
async def test_only_the_api_servers_front_proxy_gets_an_answer(
    k8s: KubeClient, k8s_namespace: str, simulator: Simulator
) -> None:
    server = simulator.subresources
    assert server is not None
    trusting_its_ca = ssl.create_default_context(cadata=server.ca.certificate_pem.decode())
    url = f"wss://127.0.0.1:{server.port}/apis/{GROUP_VERSION}/namespaces/{k8s_namespace}"

    with pytest.raises((OSError, InvalidHandshake)):  # no front-proxy client certificate
        async with connect(f"{url}/virtualmachineinstances/guest/console", ssl=trusting_its_ca):
            pass


@asynccontextmanager
async def running_simulator(local_k8s: LocalControlPlane) -> AsyncIterator[Simulator]:
    """A simulator of this test's own (no controllers: only the subresource API)."""
    config = SimulatorConfig(delays=Delays.uniform(STEP_SECONDS), watch_timeout_seconds=5)
    with local_k8s.client() as client:
        simulator = Simulator(
            client, server_url=local_k8s.server_url, config=config, controllers=()
        )
        await asyncio.to_thread(simulator.start)
        try:
            yield simulator
        finally:
            await asyncio.to_thread(simulator.stop)


@pytest.mark.k8s
async def test_stopping_the_simulator_closes_its_consoles_and_unregisters_the_api(
    local_k8s: LocalControlPlane, k8s: KubeClient, k8s_namespace: str
) -> None:
    name = f"guest-{uuid.uuid4().hex[:6]}"
    await asyncio.to_thread(k8s.apply, running_instance(k8s_namespace, name))
    async with running_simulator(local_k8s):
        console = await k8s.open_console(k8s_namespace, name)
        await read_until(console, b"login: ")
    try:
        await asyncio.wait_for(drain(console), TIMEOUT)  # it ends
        assert console.close_code == 1001  # going away
    finally:
        await console.close()
    assert await asyncio.to_thread(get, k8s, API_SERVICE_VERSION, "APIService", API_SERVICE) is None


@pytest.mark.k8s
def test_a_remote_api_server_gets_no_console_server(k8s: KubeClient) -> None:
    simulator = Simulator(k8s, server_url="https://203.0.113.5:6443", force=True)

    assert simulator.subresources is None  # it would replace the real virt-api's APIService


@pytest.mark.k8s
@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.7"])
def test_the_console_server_never_listens_beyond_loopback(k8s: KubeClient, host: str) -> None:
    with pytest.raises(ValueError, match="loopback only"):
        SubresourceServer(k8s, SimulatorConfig(), host=host)


@pytest.mark.k8s
def test_the_server_waits_for_the_api_server_to_call_it_available(
    local_k8s: LocalControlPlane, k8s: KubeClient
) -> None:
    server = SubresourceServer(k8s, SimulatorConfig()).start()
    try:
        assert server.serving
        assert is_available(k8s.get(API_SERVICE_VERSION, "APIService", API_SERVICE))
    finally:
        server.stop()
    assert wait_for(lambda: get(k8s, API_SERVICE_VERSION, "APIService", API_SERVICE) is None)
