"""The README's first run, tested: ``make run`` from a fresh clone, then the demo's promise.

A fresh copy of the committed tree (no ``var/``, no ``../shared/`` beside it) serves the
embedded default with a clean environment, exactly as ``make run`` does: SQLite, the local
kube-apiserver and etcd, the simulator and the watcher. ``bob`` signs in over HTTP, mints an
API token (the documented automation path), requests a cluster and a VM with it, and both must
come up. SIGTERM must then stop the serve and everything it started, and the log must be free
of the noise that marks a broken first run (an informer looping on a missing kind, task
tracebacks).

It runs ``manage.py serve`` with the checkout's interpreter rather than ``make run`` itself:
make would build a ``.venv`` in the copy from the package index, which is what
``make install`` already did for this checkout; the command it then runs is this one.

The serve's output is kept as ``firstrun-serve.log`` in ``$BUTLER_TEST_ARTIFACTS`` (when set)
and, with the copy, in pytest's temporary folder when the test fails.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
import requests

from tests.firstrun import logs, processes
from tests.firstrun.serve import ServeProcess, clean_environment, fresh_copy, serving

DEMO_USER = "bob"  # a member of acme: may create clusters and VMs (seed_demo)
DEMO_PASSWORD = "butler-demo-2026"
DEMO_TENANT = "acme"

# Generous: the binaries are cached before tests run (scripts/test.sh), so this is migrate,
# the API server with 44 CRDs, the platform's namespaces and the seed, on 2 busy cores.
BANNER_TIMEOUT = 180.0
# The simulator's default delays (the demo's pace): a cluster needs about 40 s, a VM 20 s.
PROVISIONING_TIMEOUT = 240.0
STOP_TIMEOUT = 60.0
# The informer logs one line per backoff step: a few while CRDs settle are fine, a line a
# second for minutes means a kind the API server does not serve.
MAX_NOT_FOUND_RETRIES = 5

T = TypeVar("T")

pytestmark = [pytest.mark.k8s, pytest.mark.timeout(600)]


class Api:
    """The portal over plain HTTP, as a person's browser and then a script would use it."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.http = requests.Session()
        self.token: str | None = None

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    def sign_in(self, username: str, password: str) -> None:
        form = self.http.get(self.url("/login/"), timeout=30)
        assert form.status_code == 200, form.text[:500]
        hidden = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text)
        assert hidden, "the sign-in form carries no CSRF token"
        signed_in = self.http.post(
            self.url("/login/"),
            data={
                "csrfmiddlewaretoken": hidden.group(1),
                "username": username,
                "password": password,
                "next": "/",
            },
            headers={"Referer": self.url("/login/")},
            allow_redirects=False,
            timeout=30,
        )
        assert signed_in.status_code == 302, f"sign-in refused: {signed_in.text[:500]}"
        me = self.http.get(self.url("/api/v1/me/"), timeout=30)
        assert me.status_code == 200, me.text[:500]
        assert me.json()["username"] == username

    def create_token(self, name: str) -> None:
        """A write token through the signed-in session; every later call uses only the token."""
        created = self.http.post(
            self.url("/api/v1/tokens/"),
            json={"name": name, "scope": "write"},
            # Session-authenticated writes need the CSRF header (the login rotated the cookie).
            headers={"X-CSRFToken": self.http.cookies["csrftoken"]},
            timeout=30,
        )
        assert created.status_code == 201, created.text[:1000]
        self.token = created.json()["token"]
        # From here on the script speaks as automation does: no cookies, a bearer token.
        self.http = requests.Session()

    def _headers(self) -> dict[str, str]:
        assert self.token is not None
        return {"Authorization": f"Bearer {self.token}"}

    def post(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        response = self.http.post(self.url(path), json=payload, headers=self._headers(), timeout=60)
        assert response.status_code == 201, f"POST {path} {payload}: {response.text[:2000]}"
        body: dict[str, Any] = response.json()
        return body

    def get(self, path: str) -> dict[str, Any]:
        response = self.http.get(self.url(path), headers=self._headers(), timeout=30)
        assert response.status_code == 200, f"GET {path}: {response.text[:2000]}"
        body: dict[str, Any] = response.json()
        return body


def wait_until_answering(api: Api, serve: ServeProcess, timeout: float) -> None:
    """The banner comes just before uvicorn binds its socket."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if api.http.get(api.url("/login/"), timeout=5).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        assert serve.returncode() is None, f"serve exited after its banner:\n{serve.tail()}"
        assert time.monotonic() < deadline, f"no answer on {api.base_url}:\n{serve.tail()}"
        time.sleep(0.2)


def cluster_summary(cluster: dict[str, Any]) -> str:
    steps = ", ".join(
        f"{step['key']}={step['state']}" + (f" ({step['message']})" if step["message"] else "")
        for step in cluster.get("timeline", [])
    )
    return (
        f"phase={cluster['phase']!r} reason={cluster['phase_reason']!r} "
        f"control_plane_ready={cluster['control_plane_ready']} "
        f"ready_workers={cluster['ready_workers']}/{cluster['worker_count']} steps: {steps}"
    )


def vm_summary(vm: dict[str, Any]) -> str:
    return (
        f"state={vm['state']!r} reason={vm['reason']!r} status={vm['printable_status']!r} "
        f"disk={vm['disk_phase']!r} {vm['disk_progress']!r}"
    )


def wait_for_both(
    api: Api, serve: ServeProcess, cluster_id: int, vm_id: int, timeout: float
) -> dict[str, float]:
    """Poll until the cluster is Ready and the VM Running; when each got there (seconds)."""
    started = time.monotonic()
    reached: dict[str, float] = {}
    cluster: dict[str, Any] = {}
    vm: dict[str, Any] = {}

    def report() -> str:
        return (
            f"cluster {cluster_summary(cluster) if cluster else '(never read)'}\n"
            f"vm {vm_summary(vm) if vm else '(never read)'}\n"
            f"serve log, last lines:\n{serve.tail(40)}"
        )

    while len(reached) < 2:
        serve.record_descendants()
        assert serve.returncode() is None, f"serve exited while provisioning:\n{report()}"
        cluster = api.get(f"/api/v1/clusters/{cluster_id}/")
        vm = api.get(f"/api/v1/vms/{vm_id}/")
        elapsed = time.monotonic() - started
        if cluster["phase"] == "ready":
            reached.setdefault("cluster", elapsed)
        if vm["state"] == "running":
            reached.setdefault("vm", elapsed)
        # A failure is final in the simulator's happy path: no use waiting out the timeout.
        assert cluster["phase"] != "failed", f"the cluster failed after {elapsed:.0f}s:\n{report()}"
        assert vm["state"] not in {"failed", "error"}, (
            f"the VM failed after {elapsed:.0f}s:\n{report()}"
        )
        assert elapsed < timeout, f"not both up after {timeout:.0f}s:\n{report()}"
        time.sleep(1)
    return reached


def timed(durations: dict[str, float], name: str, step: Callable[[], T]) -> T:
    started = time.monotonic()
    result = step()
    durations[name] = time.monotonic() - started
    return result


def keep_log(log_path: Path) -> None:
    if artifacts := os.environ.get("BUTLER_TEST_ARTIFACTS"):
        Path(artifacts).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(log_path, Path(artifacts) / "firstrun-serve.log")


def test_make_run_from_a_fresh_clone(tmp_path_factory: pytest.TempPathFactory) -> None:
    durations: dict[str, float] = {}
    started = time.monotonic()
    workspace = tmp_path_factory.mktemp("firstrun")
    root = timed(durations, "copy", lambda: fresh_copy(workspace / "butler-portal"))
    log_path = workspace / "serve.log"

    # What a fresh clone looks like: nothing beside it, nothing from an earlier run in it.
    assert not (root.parent / "shared").exists()
    assert not (root / "var").exists()
    # The portal is installed editable from the checkout; run from the copy, Python must
    # still import the copy (the script's or working folder comes first on sys.path).
    imported = subprocess.run(
        [
            sys.executable,
            "-c",
            "import butler_portal, clusters, tenants, vms\n"
            "for m in (butler_portal, clusters, tenants, vms): print(m.__file__)",
        ],
        cwd=root,
        env=clean_environment(),
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    assert all(Path(p).resolve().is_relative_to(root.resolve()) for p in imported), imported

    with serving(root, log_path) as serve:
        try:
            url = timed(durations, "start", lambda: serve.wait_for_banner(BANNER_TIMEOUT))
            assert url == f"http://127.0.0.1:{serve.port}/"
            # Settings came from the copy: its var/ holds the database and the API server.
            assert (root / "var" / "portal.sqlite3").is_file()
            assert (root / "var" / "k8s").is_dir()

            api = Api(url)
            wait_until_answering(api, serve, timeout=30)
            api.sign_in(DEMO_USER, DEMO_PASSWORD)
            api.create_token("first run")
            cluster = api.post(
                "/api/v1/clusters/",
                {
                    "tenant": DEMO_TENANT,
                    "name": "first-cluster",
                    # From the seeded catalog (clusters/seed.py): its default version.
                    "version": "v1.35.4",
                    "instance_type": "m1.small",
                    "worker_count": 2,
                },
            )
            vm = api.post(
                "/api/v1/vms/",
                {
                    "tenant": DEMO_TENANT,
                    "name": "first-vm",
                    # From the seeded catalog (vms/seed.py, clusters/seed.py).
                    "image": "ubuntu-24.04",
                    "instance_type": "m1.small",
                    "storage_class": "linstor",
                },
            )
            reached = timed(
                durations,
                "provisioning",
                lambda: wait_for_both(api, serve, cluster["id"], vm["id"], PROVISIONING_TIMEOUT),
            )

            serve.record_descendants()
            started_binaries = {
                name
                for process in serve.seen_descendants.values()
                for name in ("kube-apiserver", "etcd")
                if Path(process.cmdline.split(" ", 1)[0]).name == name
            }
            # Proves the scan below looks at the right processes.
            assert started_binaries == {"kube-apiserver", "etcd"}, serve.seen_descendants

            returncode = timed(durations, "stop", lambda: serve.terminate(STOP_TIMEOUT))
        finally:
            keep_log(log_path)

        assert returncode == 0, f"serve exited with {returncode} on SIGTERM:\n{serve.tail()}"
        left = {
            p.identity: p
            for p in [
                *processes.still_alive(serve.seen_descendants.values()),
                *processes.pointing_into(root.resolve()),
            ]
        }
        assert not left, "left running after the serve stopped:\n" + "\n".join(
            p.describe() for p in left.values()
        )

    lines = serve.lines
    not_found = [line for line in lines if logs.NOT_FOUND_RETRY in line]
    assert len(not_found) <= MAX_NOT_FOUND_RETRIES, (
        f"{len(not_found)} informer lines '{logs.NOT_FOUND_RETRY}', e.g.:\n"
        + "\n".join(not_found[:5])
    )
    tracebacks = logs.errors_with_tracebacks(lines)
    task_tracebacks = [record for record in tracebacks if record.from_a_task]
    assert not task_tracebacks, (
        f"{len(task_tracebacks)} ERROR records with a task's traceback; the first:\n"
        + task_tracebacks[0].text
    )
    assert not tracebacks, (
        f"{len(tracebacks)} ERROR records with a traceback; the first:\n" + tracebacks[0].text
    )

    durations["total"] = time.monotonic() - started
    print(
        "\nfirst run: "
        + ", ".join(f"{name} {seconds:.1f}s" for name, seconds in durations.items())
        + f" (cluster Ready after {reached['cluster']:.0f}s, VM Running after {reached['vm']:.0f}s)"
    )
    # Passed: the copy (and the API server's data in it) is of no further use.
    shutil.rmtree(root, ignore_errors=True)
