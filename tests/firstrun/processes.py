"""What runs on this machine, read from /proc (psutil is not a dependency of the portal).

The first-run test needs three things: the processes a serve started (its children run in
sessions of their own, so a process group does not find them), whether one of them is still
alive after the serve exited, and which processes point into a given folder.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")


@dataclass(frozen=True)
class Process:
    pid: int
    ppid: int
    # Clock ticks after boot: with the pid it names one process even once the pid is reused.
    start_time: int
    state: str
    cmdline: str

    @property
    def identity(self) -> tuple[int, int]:
        return (self.pid, self.start_time)

    @property
    def alive(self) -> bool:
        # A zombie has exited; only its exit status waits for its parent to read it.
        return self.state not in {"Z", "X"}

    def describe(self) -> str:
        return f"pid {self.pid} [{self.state}] {self.cmdline[:300]}"


def read_process(pid: int) -> Process | None:
    """The process ``pid`` now, or None once it is gone (or was never there)."""
    try:
        stat = (PROC / str(pid) / "stat").read_text()
        raw_cmdline = (PROC / str(pid) / "cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name in parentheses may itself hold spaces and parentheses: split after it.
    fields = stat[stat.rindex(")") + 2 :].split()
    cmdline = raw_cmdline.replace(b"\0", b" ").decode(errors="replace").strip()
    return Process(
        pid=pid, ppid=int(fields[1]), start_time=int(fields[19]), state=fields[0], cmdline=cmdline
    )


def all_processes() -> Iterator[Process]:
    for entry in PROC.iterdir():
        if entry.name.isdigit() and (process := read_process(int(entry.name))) is not None:
            yield process


def descendants(root_pid: int) -> list[Process]:
    """Every process below ``root_pid`` in the parent tree, now."""
    children: dict[int, list[Process]] = {}
    for process in all_processes():
        children.setdefault(process.ppid, []).append(process)
    found: list[Process] = []
    pending = [root_pid]
    while pending:
        for child in children.get(pending.pop(), []):
            found.append(child)
            pending.append(child.pid)
    return found


def still_alive(processes: Iterable[Process]) -> list[Process]:
    """Those of ``processes`` that have not exited (same pid *and* start time)."""
    alive = []
    for process in processes:
        now = read_process(process.pid)
        if now is not None and now.start_time == process.start_time and now.alive:
            alive.append(now)
    return alive


def pointing_into(folder: Path) -> list[Process]:
    """Live processes whose command line names ``folder`` (flags, data dirs, binaries)."""
    needle = str(folder)
    return [p for p in all_processes() if p.alive and needle in p.cmdline and p.pid != os.getpid()]


def kill(processes: Iterable[Process]) -> None:
    """SIGKILL exactly these processes (by pid, and only while they are still the same ones)."""
    for process in still_alive(processes):
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGKILL)
