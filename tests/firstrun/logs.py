"""Reading the serve's output as log records: a record is its first line and what follows it
(a traceback, a multi-line message) until the next record starts."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

# The portal's format (settings.LOGGING: "%(asctime)s %(levelname)s %(name)s %(message)s") and
# uvicorn's own ("INFO:     Started server process").
_PORTAL_RECORD = re.compile(
    r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (?P<level>[A-Z]+) (?P<logger>\S+) "
)
_UVICORN_RECORD = re.compile(r"^(?P<level>DEBUG|INFO|WARNING|ERROR|CRITICAL):\s")

TRACEBACK = "Traceback (most recent call last)"
# The informer's line when it watches a kind the API server does not serve (yet): once per
# backoff step while it lasts, so a missing CRD shows up as a steady stream of these.
NOT_FOUND_RETRY = "404 page not found; retrying"
# A provisioning task's failure names its task module or Celery (eager or worker alike).
_TASK_MARKERS = re.compile(r"\b(?:tenants|clusters|vms)\.tasks\b|celery|\bRetry\b")


@dataclass(frozen=True)
class Record:
    level: str
    lines: tuple[str, ...]

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    @property
    def has_traceback(self) -> bool:
        return any(TRACEBACK in line for line in self.lines)

    @property
    def from_a_task(self) -> bool:
        return _TASK_MARKERS.search(self.text) is not None


def records(lines: Iterable[str]) -> list[Record]:
    found: list[Record] = []
    level, current = "", list[str]()
    for line in lines:
        match = _PORTAL_RECORD.match(line) or _UVICORN_RECORD.match(line)
        if match:
            if current:
                found.append(Record(level, tuple(current)))
            level, current = match.group("level"), [line]
        else:
            # Before the first record (migrate's output, the banner) level stays "".
            current.append(line)
    if current:
        found.append(Record(level, tuple(current)))
    return found


def errors_with_tracebacks(lines: Iterable[str]) -> list[Record]:
    return [r for r in records(lines) if r.level in {"ERROR", "CRITICAL"} and r.has_traceback]
