"""Create the first platform operator of an installation (or another one)."""

from __future__ import annotations

import getpass
import os
import sys
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from tenants.access import PlatformRole
from tenants.audit import Actor
from tenants.models import User
from tenants.services import user_create

#: Where automation puts the password (a Kubernetes Secret as an environment variable):
#: never on the command line, where process listings and shell histories would keep it.
PASSWORD_ENV = "BUTLER_OPERATOR_PASSWORD"


class Command(BaseCommand):
    help = (
        "Create a platform operator account. The password comes from the environment "
        f"variable {PASSWORD_ENV} when set (automation), otherwise from a prompt. It must pass "
        "the password validators. The account creation is audited like any other."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--email", default="", help="The operator's e-mail address.")
        parser.add_argument(
            "--if-missing",
            action="store_true",
            help="When the username exists, leave that account unchanged and succeed "
            "(for jobs that run on every release).",
        )

    def handle(
        self, *args: Any, username: str, email: str, if_missing: bool, **options: Any
    ) -> None:
        existing = User.objects.filter(username__iexact=username).first()
        if existing is not None:
            if not if_missing:
                raise CommandError(f"The username {username!r} is taken.")
            role = existing.platform_role or "none"
            self.stdout.write(
                f"{existing.username} exists (platform role: {role}); left unchanged."
            )
            return
        try:
            user = user_create(
                actor=Actor.system(),
                username=username,
                password=self._password(),
                email=email,
                platform_role=PlatformRole.OPERATOR,
            )
        except ValidationError as error:
            messages = [
                f"{field}: {message}"
                for field, field_messages in error.message_dict.items()
                for message in field_messages
            ]
            raise CommandError("; ".join(messages)) from error
        self.stdout.write(self.style.SUCCESS(f"Operator {user.username} created."))

    def _password(self) -> str:
        from_env = os.environ.get(PASSWORD_ENV)
        if from_env:
            return from_env
        if not sys.stdin.isatty():
            raise CommandError(f"No password: set {PASSWORD_ENV} or run in a terminal.")
        password = getpass.getpass("Password: ")
        if password != getpass.getpass("Password (again): "):
            raise CommandError("The passwords differ.")
        return password
