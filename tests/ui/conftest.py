"""Helpers for the browser-portal tests: signed-in clients, query counting, who gets what
status, and reading rendered pages (field errors, action rows, table rows, toasts)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from tenants.models import User
from tests.clusters.conftest import catalog
from tests.conftest import browser_client_for
from tests.vms.conftest import _kubernetes_off_unless_asked, vm_catalog

# Fixtures shared with tests/clusters and tests/vms: their catalogs, and no API server
# unless a test asks for one (``portal_k8s``).
__all__ = ["_kubernetes_off_unless_asked", "catalog", "vm_catalog"]

HTMX_HEADERS = {"HX-Request": "true"}

#: Every persona: acme's alice (admin), bob (member) and carol (viewer), globex's gina,
#: oscar (operator), audrey (auditor) and nobody (no tenant).
EVERYONE = ("alice", "bob", "carol", "gina", "oscar", "audrey", "nobody")
#: Who may read acme's pages, and who may act in acme (everyone else is outside it).
READERS = {"alice": 200, "bob": 200, "carol": 200, "oscar": 200, "audrey": 200}
OPERATORS = {"alice": 200, "bob": 200, "oscar": 200, "carol": 403, "audrey": 403}


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


def acme_url(name: str, *args: Any) -> str:
    return reverse(name, args=["acme", *args])


def expected(allowed: dict[str, int]) -> dict[str, int]:
    """Everyone not listed is outside acme: the tenant does not exist for them (404)."""
    return {name: allowed.get(name, 404) for name in EVERYONE}


def statuses(personas: dict[str, User], url: str, **headers: str) -> dict[str, int]:
    return {
        name: browser_client_for(personas[name]).get(url, headers=headers).status_code
        for name in EVERYONE
    }


def page_text(user: User, url: str, **headers: str) -> str:
    response = browser_client_for(user).get(url, headers=headers)
    assert response.status_code == 200, response.status_code
    return response.content.decode()


def csrf_checking_client(user: User, page_url: str) -> tuple[Client, str]:
    """A client of ``user`` that enforces CSRF, and the token the page at ``page_url`` gives
    htmx (in its ``hx-headers``)."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    page = client.get(page_url).content.decode()
    header = re.search(r'hx-headers=\'\{"X-CSRFToken": "([^"]+)"\}\'', page)
    assert header is not None
    return client, header.group(1)


def errors_of(text: str) -> dict[str, list[str]]:
    """Errors under each field of a rendered form (by the ids Django wires), and form-wide
    errors as ``__all__``."""
    found: dict[str, list[str]] = {
        name: re.findall(r"<span>([^<]+)</span>", items)
        for name, items in re.findall(
            r'<ul class="field-errors" id="id_(\w+)_error">(.*?)</ul>', text, re.S
        )
    }
    form_wide = re.search(r'<div class="form-errors" role="alert">.*?<ul>(.*?)</ul>', text, re.S)
    if form_wide:
        found["__all__"] = re.findall(r"<li>([^<]+)</li>", form_wide.group(1))
    return {
        key: [message.replace("&#x27;", "'") for message in messages]
        for key, messages in found.items()
    }


def row_of(text: str, row_id: str) -> str:
    """The table row with id ``row_id``."""
    match = re.search(rf'<tr id="{row_id}".*?</tr>', text, re.S)
    assert match, f"no row {row_id}"
    return match.group(0)


def offered(text: str) -> list[str]:
    """The actions an object's page offers, in order."""
    return re.findall(r'<li class="action-item" data-action="(\w+)">', text)


def action_row(text: str, action: str) -> str:
    match = re.search(rf'<li class="action-item" data-action="{action}">.*?</li>', text, re.S)
    assert match, f"no {action} action"
    return match.group(0)


def toasts(text: str) -> list[str]:
    """The messages a response carries, in order."""
    return [
        message.replace("&#x27;", "'")
        for message in re.findall(r'<div class="toast[^"]*"[^>]*>.*?<p>([^<]+)</p>', text, re.S)
    ]


def check_dialog_and_page(client: Client, url: str, title: str) -> None:
    """``url`` asks in a dialog for htmx (a fragment posting back into ``#modal-body``) and
    on a page of its own without JavaScript, under the same ``title``."""
    dialog = client.get(url, headers=htmx("modal-body")).content.decode()
    assert "<html" not in dialog
    assert f'<h2 id="modal-title">{title}</h2>' in dialog
    assert f'hx-post="{url}" hx-target="#modal-body"' in dialog
    page = client.get(url).content.decode()
    assert "<html" in page
    assert f'<h2 id="modal-title">{title}</h2>' in page


def listed_names(text: str) -> list[str]:
    """The names a list's table links to, in order."""
    return re.findall(r'<a class="cell-main cell-link"[^>]*>([^<]+)</a>', text)


def summary_counts(text: str) -> dict[str, int]:
    """A dashboard card's counts, by label."""
    return {
        label: int(value)
        for value, label in re.findall(
            r'<span class="summary-value">(\d+)</span><span class="summary-label">([^<]+)</span>',
            text,
        )
    }


def summary_names(text: str) -> list[str]:
    """The latest changed objects of a dashboard card, in order."""
    return re.findall(r'<a class="summary-name" href="[^"]+">([^<]+)</a>', text)


def preview_amounts(text: str) -> dict[str, str]:
    """What a quota preview adds, by resource (``"8 GiB"`` for ``+8 GiB``)."""
    return dict(
        re.findall(
            r'data-resource="(\w+)">\s*<p class="quota-row-head"><span class="quota-row-label">'
            r"[^<]+</span><span class=\"quota-row-amount\">\+([^<]+)</span>",
            text,
        )
    )


def timeline_steps(text: str) -> list[tuple[str, str]]:
    """A detail page's timeline: (step, state) in order."""
    return re.findall(r'data-step="([\w-]+)" data-state="(\w+)"', text)


def facts_of(text: str) -> dict[str, str]:
    """A detail page's facts: the markup of each value, by term."""
    return dict(re.findall(r"<div><dt>([^<]+)</dt><dd>(.*?)</dd></div>", text, re.S))


def activity_of(text: str) -> list[tuple[str, str, str]]:
    """An action log's entries, newest first: (action, actor, what they did)."""
    return re.findall(
        r'<li class="activity-item" data-action="(\w+)">.*?<strong>(\w+)</strong> ([^<]+)</span>',
        text,
        re.S,
    )
