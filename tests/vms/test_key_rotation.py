"""Rotating SECRET_KEY (the old key moved to SECRET_KEY_FALLBACKS): VM user data and
sessions made under the old key keep working, and move to the new key."""

from __future__ import annotations

import os
import subprocess
import sys
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse
from pytest_django.fixtures import Settings as SettingsWrapper

from tenants.models import Tenant, User
from tests.conftest import PASSWORD
from tests.vms.conftest import create
from vms.crypto import decrypt
from vms.models import VirtualMachine
from vms.provisioning import vm_plan

pytestmark = pytest.mark.django_db

OLD_KEY = "old-secret-key-for-rotation-tests-0123456789abcdefghijklmnopqrstuvwxyz"
NEW_KEY = "new-secret-key-for-rotation-tests-0123456789abcdefghijklmnopqrstuvwxyz"
USER_DATA = "write_files:\n  - path: /etc/token\n    content: s3cr3t-t0ken\n"


def stored(vm: VirtualMachine) -> str:
    return VirtualMachine.objects.values_list("user_data_encrypted", flat=True).get(pk=vm.pk)


def reencrypt_all() -> str:
    out = StringIO()
    call_command("reencrypt_user_data", stdout=out)
    return out.getvalue()


def test_user_data_is_applied_after_a_rotation_and_moves_to_the_new_key(
    settings: SettingsWrapper, acme: Tenant, bob: User, vm_catalog: None
) -> None:
    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = OLD_KEY, []
    vm = create(acme, bob, "web", user_data=USER_DATA)
    under_old_key = stored(vm)

    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = NEW_KEY, [OLD_KEY]
    # What provisioning (and drift repair) applies still carries the tenant's user data.
    assert "s3cr3t-t0ken" in vm_plan(vm).user_data

    assert "re-encrypted: 1" in reencrypt_all()
    under_new_key = stored(vm)
    assert under_new_key != under_old_key
    assert "already under the current key: 1" in reencrypt_all()  # idempotent
    assert stored(vm) == under_new_key

    settings.SECRET_KEY_FALLBACKS = []  # the old key is gone for good
    assert decrypt(under_new_key) == USER_DATA
    vm.refresh_from_db()
    assert "s3cr3t-t0ken" in vm_plan(vm).user_data


def test_user_data_under_an_unknown_key_is_reported_not_lost(
    settings: SettingsWrapper, acme: Tenant, bob: User, vm_catalog: None
) -> None:
    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = OLD_KEY, []
    vm = create(acme, bob, "web", user_data=USER_DATA)
    token = stored(vm)

    settings.SECRET_KEY = NEW_KEY  # rotated without keeping the old key
    with pytest.raises(CommandError, match="SECRET_KEY_FALLBACKS"):
        reencrypt_all()
    assert stored(vm) == token  # left as it was: adding the old key back recovers it


def test_sessions_survive_a_rotation(settings: SettingsWrapper, acme: Tenant, bob: User) -> None:
    dashboard = reverse("tenant-dashboard", args=[acme.slug])
    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = OLD_KEY, []
    active, idle = Client(), Client()
    for client in (active, idle):
        signed_in = client.post(reverse("login"), {"username": "bob", "password": PASSWORD})
        assert signed_in.status_code == 302

    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = NEW_KEY, [OLD_KEY]
    # Still signed in; Django moves the session's hash to the new key on this request.
    assert active.get(dashboard).status_code == 200

    settings.SECRET_KEY_FALLBACKS = []
    assert active.get(dashboard).status_code == 200
    # A session not seen during the rotation was made under the old key only: signed out.
    assert idle.get(dashboard)["Location"].startswith(reverse("login"))


def test_fallbacks_are_read_from_the_environment() -> None:
    env = {
        **os.environ,
        "SECRET_KEY_FALLBACKS": f" {OLD_KEY} ,second-old-key,",
        "DJANGO_SETTINGS_MODULE": "butler_portal.settings",
    }
    code = "from django.conf import settings; print(settings.SECRET_KEY_FALLBACKS)"
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == repr([OLD_KEY, "second-old-key"])
