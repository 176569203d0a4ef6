"""A fresh copy of the repository, and ``manage.py serve`` running from it as ``make run`` does.

A fresh clone has no ``var/``, no ``../shared/`` beside it and nothing but the committed
files; a developer's checkout has all three, which is how a first run can break unnoticed.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tests.firstrun import processes
from tests.firstrun.processes import Process

REPO_ROOT = Path(__file__).resolve().parents[2]

# What a newcomer's shell has that matters here. Everything else (DATABASE_URL, REDIS_URL,
# KUBE_MODE, CELERY_TASK_ALWAYS_EAGER, DB_POOL_SIZE, TEST_DATABASE_NAME, ... that
# scripts/test.sh exports) would take the portal off its embedded default.
KEPT_VARIABLES = frozenset(
    {
        "PATH",
        "HOME",
        "LANG",
        "LC_ALL",
        "TMPDIR",
        "USER",
        "LOGNAME",
        # Where kube-apiserver and etcd are cached or supplied (butler_portal/kube/binaries.py).
        "BUTLER_K8S_CACHE",
        "XDG_CACHE_HOME",
        "KUBEBUILDER_ASSETS",
    }
)
# Should the binaries be missing after all, the serve builds them with Go: keep Go's settings.
KEPT_PREFIXES = ("GO",)

BANNER = re.compile(r"Butler Portal on (http://\S+/)")


def clean_environment() -> dict[str, str]:
    env = {
        name: value
        for name, value in os.environ.items()
        if name in KEPT_VARIABLES or name.startswith(KEPT_PREFIXES)
    }
    # A terminal gets each line at once; a pipe would hold the banner in Python's buffer.
    env["PYTHONUNBUFFERED"] = "1"
    return env


def fresh_copy(destination: Path) -> Path:
    """The committed tree (``git archive HEAD``) in ``destination``, plus the browser
    libraries ``make install`` builds into the git-ignored ``static/vendor/``."""
    archive = subprocess.run(
        ["git", "archive", "--format=tar", "HEAD"],
        cwd=REPO_ROOT,
        check=True,
        capture_output=True,
    ).stdout
    destination.mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(destination, filter="data")
    vendor = REPO_ROOT / "static" / "vendor"
    assert (vendor / "xterm").is_dir(), (
        f"{vendor} is missing: `make install` builds it, as `make run` would"
    )
    shutil.copytree(vendor, destination / "static" / "vendor")
    return destination


def free_loopback_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class ServeProcess:
    """``python manage.py serve --port P`` from ``root``, its output collected line by line."""

    root: Path
    port: int
    log_path: Path
    lines: list[str] = field(default_factory=list)
    url: str | None = None
    # Every process seen below the serve while it ran: its children live in sessions of their
    # own and outlive it, reparented, if it fails to stop them.
    seen_descendants: dict[tuple[int, int], Process] = field(default_factory=dict)
    _banner: threading.Event = field(default_factory=threading.Event)
    _process: subprocess.Popen[str] | None = None
    _reader: threading.Thread | None = None

    def start(self) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "manage.py", "serve", "--port", str(self.port)],
            cwd=self.root,
            env=clean_environment(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            # Its own group: a failed test can stop it without signalling pytest.
            start_new_session=True,
        )
        self._reader = threading.Thread(target=self._read, name="serve-output", daemon=True)
        self._reader.start()

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    def _read(self) -> None:
        assert self._process is not None
        assert self._process.stdout is not None
        with self.log_path.open("w") as log:
            for line in self._process.stdout:
                self.lines.append(line.rstrip("\n"))
                log.write(line)
                log.flush()
                if self.url is None and (match := BANNER.search(line)):
                    self.url = match.group(1)
                    self._banner.set()

    def wait_for_banner(self, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while not self._banner.wait(0.5):
            self.record_descendants()
            if self.returncode() is not None:
                raise AssertionError(
                    f"serve exited ({self.returncode()}) before its banner:\n{self.tail()}"
                )
            if time.monotonic() > deadline:
                raise AssertionError(f"no banner after {timeout:.0f}s:\n{self.tail()}")
        assert self.url is not None
        return self.url

    def record_descendants(self) -> None:
        if self.returncode() is None:
            for process in processes.descendants(self.pid):
                self.seen_descendants.setdefault(process.identity, process)

    def returncode(self) -> int | None:
        assert self._process is not None
        return self._process.poll()

    def terminate(self, timeout: float) -> int:
        """SIGTERM to the serve alone, as a service manager sends it; its exit status."""
        assert self._process is not None
        self.record_descendants()
        self._process.send_signal(signal.SIGTERM)
        try:
            returncode = self._process.wait(timeout)
        except subprocess.TimeoutExpired as error:
            raise AssertionError(
                f"serve still running {timeout:.0f}s after SIGTERM:\n{self.tail()}"
            ) from error
        if self._reader is not None:
            self._reader.join(10)
        return returncode

    def kill_everything(self) -> None:
        """After a failure: nothing this serve started may outlive the test."""
        if self._process is not None and self._process.poll() is None:
            self.record_descendants()
            os.killpg(self._process.pid, signal.SIGKILL)
            self._process.wait()
        processes.kill(self.seen_descendants.values())
        # Anything else still naming the copy is ours too (the folder is this test's alone).
        processes.kill(processes.pointing_into(self.root.resolve()))

    def tail(self, count: int = 60) -> str:
        return "\n".join(self.lines[-count:])


@contextmanager
def serving(root: Path, log_path: Path) -> Iterator[ServeProcess]:
    serve = ServeProcess(root=root, port=free_loopback_port(), log_path=log_path)
    serve.start()
    try:
        yield serve
    finally:
        serve.kill_everything()
