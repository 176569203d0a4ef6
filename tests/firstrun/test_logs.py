"""The first-run test reads the serve's output as log records; a parser that split them wrongly
would let a traceback pass unseen, so it is checked on the shapes the serve prints."""

from __future__ import annotations

from tests.firstrun import logs

OUTPUT = [
    "2026-12-07 17:34:25,910 INFO butler_portal.embedded starting the local Kubernetes API",
    "Demo accounts (password for all: butler-demo-2026)",
    "Butler Portal on http://127.0.0.1:8000/",
    "INFO:     Started server process [30289]",
    "2026-12-07 17:34:38,866 ERROR celery.app.trace Task clusters.tasks.provision_cluster[1] "
    "raised unexpected: Transient('server away')",
    "Traceback (most recent call last):",
    '  File "clusters/tasks.py", line 30, in provision_cluster',
    "butler_portal.kube.errors.Transient: server away",
    "ERROR:    Exception in ASGI application",
    "Traceback (most recent call last):",
    "RuntimeError: boom",
    "2026-12-07 17:34:39,000 ERROR butler_portal.kube.informer Vpc: forbidden; retrying",
    "2026-12-07 17:34:40,000 WARNING butler_portal.kube.informer Vpc: 404 page not found; retrying",
]


def test_records_start_at_either_format_and_keep_what_follows() -> None:
    records = logs.records(OUTPUT)

    assert [r.level for r in records] == ["INFO", "INFO", "ERROR", "ERROR", "ERROR", "WARNING"]
    # The banner and the seed's lines belong to the record before them, not to a new one.
    assert records[0].lines[-1] == "Butler Portal on http://127.0.0.1:8000/"
    assert records[2].lines[-1] == "butler_portal.kube.errors.Transient: server away"


def test_only_errors_with_a_traceback_count_and_a_tasks_is_told_apart() -> None:
    found = logs.errors_with_tracebacks(OUTPUT)

    assert len(found) == 2
    assert found[0].lines[0].endswith("raised unexpected: Transient('server away')")
    assert found[1].lines[0] == "ERROR:    Exception in ASGI application"
    assert [r.from_a_task for r in found] == [True, False]
