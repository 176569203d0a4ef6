"""What every benchmark does before it measures: point the portal's settings at the run's own
API server (and Redis), set Django up, and measure on a throwaway database that the run
creates and drops, so a benchmark never touches the portal's data."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TypeVar

from butler_portal.kube.localcp import LocalControlPlane

T = TypeVar("T")


def on_bench_database(
    name: str,
    control_plane: LocalControlPlane,
    measure: Callable[[], T],
    *,
    redis_url: str | None = None,
) -> T:
    """``measure()`` on a fresh database called ``name``, dropped afterwards.

    The settings read the environment once, at setup, and the processes a benchmark starts
    (a web server, the simulator) inherit it: so it is set here, before Django is.
    """
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "butler_portal.settings",
            "DEBUG": "true",
            "KUBE_MODE": "kubeconfig",
            "KUBECONFIG": str(control_plane.kubeconfig_path),
            "CELERY_TASK_ALWAYS_EAGER": "true",  # onboarding and provisioning apply at once
            "LOG_LEVEL": "WARNING",
            **({"REDIS_URL": redis_url} if redis_url else {}),
        }
    )
    import django

    django.setup()
    from django.db import connection

    connection.settings_dict["TEST"]["NAME"] = name
    real_name = connection.settings_dict["NAME"]
    connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        return measure()
    finally:
        _end_other_sessions()
        connection.creation.destroy_test_db(real_name, verbosity=0)


def _end_other_sessions() -> None:
    """Watch threads still blocked on a read keep a connection open; DROP DATABASE would wait."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
