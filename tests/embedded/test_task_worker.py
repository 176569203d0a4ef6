"""The embedded default runs tasks as production does: after the request, retried with backoff.

Run in a process of its own with the embedded configuration (no Redis, no eager tasks): a task
that fails twice with a transient error is retried by the in-process worker after its backoff,
instead of at once inside the caller (and then logged as an ERROR with a traceback).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

SCRIPT = """
import json, os, time
import django
django.setup()
from django.conf import settings
from butler_portal.celery import app
from butler_portal.kube.errors import Transient

attempts = []

@app.task(name="probe.flaky", autoretry_for=(Transient,), retry_backoff=1, retry_jitter=False,
          max_retries=None)
def flaky():
    attempts.append(time.monotonic())
    if len(attempts) < 3:
        raise Transient("the API server is away")

from butler_portal.embedded import EmbeddedTaskWorker

with EmbeddedTaskWorker():
    started = time.monotonic()
    flaky.delay()
    queued_in = time.monotonic() - started
    deadline = started + 30
    while len(attempts) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
print(json.dumps({
    "worker": settings.EMBEDDED_TASK_WORKER,
    "eager": settings.CELERY_TASK_ALWAYS_EAGER,
    "queued_in": queued_in,
    "attempts": [round(at - started, 2) for at in attempts],
}))
"""

# What scripts/test.sh exports for the rest of the suite, and the embedded default has not.
NOT_EMBEDDED = ("DATABASE_URL", "REDIS_URL", "CELERY_TASK_ALWAYS_EAGER", "DB_POOL_SIZE")


def test_the_embedded_worker_retries_a_task_after_its_backoff(tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items() if key not in NOT_EMBEDDED}
    env |= {
        "DJANGO_SETTINGS_MODULE": "butler_portal.settings",
        "KUBE_MODE": "off",
        "BUTLER_VAR_DIR": str(tmp_path),
    }

    run = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
        check=True,
    )

    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["worker"] is True
    assert result["eager"] is False
    assert result["queued_in"] < 0.5  # the caller does not wait for the task
    first, second, third = result["attempts"]
    # Backoff of 1 s, then 2 s: waited for real, not retried on the spot.
    assert second - first >= 0.9
    assert third - second >= 1.9
    assert "Traceback" not in run.stderr
