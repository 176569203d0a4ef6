"""Races between requests, for the tests of what the services decide atomically.

Each attempt runs in a thread of its own, on its own database connection, and all are
released at once; the test then compares what each one got. Only Postgres locks rows the
way production does, so a race on another database fails rather than passing by luck.
Tests using it need ``@pytest.mark.django_db(transaction=True)``: the threads must see
what the others committed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from django.core.exceptions import ValidationError
from django.db import connection, connections

CREATED = "created"


def race(attempts: int, attempt: Callable[[int], object]) -> list[str]:
    """Run ``attempt(0)`` … ``attempt(attempts - 1)`` at once; their outcomes, sorted.

    An outcome is ``"created"`` when the attempt returned, or the fields its
    ``ValidationError`` names, comma-separated ("__all__" for a refusal of the whole).
    """
    if connection.vendor != "postgresql":
        pytest.fail("The concurrency guarantee is tested on Postgres; set DATABASE_URL.")
    start = threading.Barrier(attempts)
    outcomes: list[str] = []
    lock = threading.Lock()

    def run(number: int) -> None:
        try:
            start.wait()
            try:
                attempt(number)
                outcome = CREATED
            except ValidationError as error:
                outcome = ",".join(error.message_dict)
            with lock:
                outcomes.append(outcome)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(number,)) for number in range(attempts)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sorted(outcomes)
