"""After a SECRET_KEY rotation: move stored VM user data under the new key."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from vms.crypto import UndecryptableUserData, reencrypt
from vms.models import VirtualMachine


class Command(BaseCommand):
    help = (
        "Re-encrypt every VM's stored user data under the current SECRET_KEY. Run it after "
        "a rotation (new SECRET_KEY, the old one in SECRET_KEY_FALLBACKS); once it succeeds "
        "the old key is no longer needed for user data. Idempotent: data already under the "
        "current key is left as it is."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        moved = current = lost = 0
        rows = (
            VirtualMachine.objects.exclude(user_data_encrypted="")
            .values_list("pk", "user_data_encrypted")
            .iterator()
        )
        for pk, token in rows:
            try:
                new_token = reencrypt(token)
            except UndecryptableUserData:
                lost += 1
                continue
            if new_token == token:
                current += 1
                continue
            # Compared with what was read: no table-wide lock, and a row changed meanwhile
            # (it cannot be today: user data is written once) is simply left for the next run.
            moved += VirtualMachine.objects.filter(pk=pk, user_data_encrypted=token).update(
                user_data_encrypted=new_token
            )
        self.stdout.write(
            f"User data re-encrypted: {moved}; already under the current key: {current}."
        )
        if lost:
            raise CommandError(
                f"{lost} VM(s) hold user data under a key that is neither SECRET_KEY nor in "
                "SECRET_KEY_FALLBACKS: add the key they were encrypted under and run again."
            )
