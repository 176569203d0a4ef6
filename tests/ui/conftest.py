"""Helpers for the browser-portal tests: signed-in clients and query counting."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from tenants.models import User
from tests.conftest import browser_client_for

HTMX_HEADERS = {"HX-Request": "true"}


def htmx(target: str) -> dict[str, str]:
    """Request headers of an htmx request that will swap the element with id ``target``."""
    return {**HTMX_HEADERS, "HX-Target": target}


@pytest.fixture
def client_for() -> Callable[[User | None], Client]:
    return browser_client_for


def queries_for_get(client: Client, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200, response.status_code
    return len(captured.captured_queries)
