"""manage.py create_operator: the first operator of an installation."""

from __future__ import annotations

import getpass
import sys
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse

from tenants.access import PlatformRole
from tenants.management.commands import create_operator
from tenants.models import AuditEvent, User

pytestmark = pytest.mark.django_db

PASSWORD = "a-long-and-unusual-passphrase-41"


def create(*args: str) -> str:
    out = StringIO()
    call_command("create_operator", *args, stdout=out)
    return out.getvalue()


def test_creates_an_operator_from_the_environment_and_audits_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(create_operator.PASSWORD_ENV, PASSWORD)

    output = create("olga", "--email", "olga@example.test")

    user = User.objects.get(username="olga")
    assert user.platform_role == PlatformRole.OPERATOR
    assert user.email == "olga@example.test"
    assert user.check_password(PASSWORD)
    assert "Operator olga created" in output
    event = AuditEvent.objects.get(object_type="user", action="create")
    assert event.changes == {"username": "olga", "platform_role": "operator"}
    # The account works: the operator signs in and reaches the operator console.
    client = Client()
    signed_in = client.post(reverse("login"), {"username": "olga", "password": PASSWORD})
    assert signed_in.status_code == 302
    assert client.get(reverse("operator-tenants")).status_code == 200


def test_prompts_for_the_password_in_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(create_operator.PASSWORD_ENV, raising=False)
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True, raising=False)
    answers = iter([PASSWORD, PASSWORD])
    monkeypatch.setattr(getpass, "getpass", lambda prompt: next(answers))

    create("olga")

    assert User.objects.get(username="olga").check_password(PASSWORD)


def test_refuses_differing_passwords(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(create_operator.PASSWORD_ENV, raising=False)
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True, raising=False)
    answers = iter([PASSWORD, PASSWORD + "x"])
    monkeypatch.setattr(getpass, "getpass", lambda prompt: next(answers))

    with pytest.raises(CommandError, match="differ"):
        create("olga")
    assert not User.objects.exists()


def test_without_a_terminal_the_password_must_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(create_operator.PASSWORD_ENV, raising=False)
    monkeypatch.setattr(sys.stdin, "isatty", lambda: False, raising=False)

    with pytest.raises(CommandError, match=create_operator.PASSWORD_ENV):
        create("olga")
    assert not User.objects.exists()


def test_a_weak_password_is_refused_with_the_validators_reason(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(create_operator.PASSWORD_ENV, "password")

    with pytest.raises(CommandError, match="too common"):
        create("olga")
    assert not User.objects.exists()
    assert not AuditEvent.objects.exists()


def test_an_existing_username_is_refused_or_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(create_operator.PASSWORD_ENV, PASSWORD)
    create("olga")

    with pytest.raises(CommandError, match="taken"):
        create("Olga")

    monkeypatch.setenv(create_operator.PASSWORD_ENV, "another-long-passphrase-97")
    output = create("olga", "--if-missing")

    assert "left unchanged" in output
    assert User.objects.get(username="olga").check_password(PASSWORD)
    assert AuditEvent.objects.filter(action="create").count() == 1
