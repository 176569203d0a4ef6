"""The OpenAPI schema generates without a warning, and its pages are served."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from django.core.management import call_command

from tests.conftest import api_client_for


def test_the_schema_validates_without_warnings(tmp_path: Path) -> None:
    schema_file = tmp_path / "schema.yaml"

    # --fail-on-warn turns any warning (an endpoint it cannot describe) into an error.
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(schema_file))

    paths = yaml.safe_load(schema_file.read_text())["paths"]
    assert {
        "/api/v1/me/",
        "/api/v1/tenants/{slug}/quota/",
        "/api/v1/invitations/accept/",
        "/api/v1/audit-events/export/",
        "/api/v1/users/{id}/disable/",
        "/api/v1/drift/",
        "/api/v1/drift/repair/",
        "/api/v1/vms/{id}/retry/",
        "/api/v1/tenants/{slug}/network/retry/",
    } <= set(paths)


@pytest.mark.django_db
def test_schema_and_docs_are_served() -> None:
    client = api_client_for(None)

    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    docs = client.get("/api/docs/")

    assert schema.status_code == 200
    assert "/api/v1/tenants/" in schema.json()["paths"]
    assert docs.status_code == 200
    assert b"swagger-ui" in docs.content
