"""User data at rest: encrypted under SECRET_KEY, readable after a rotation through
SECRET_KEY_FALLBACKS, and a clear error without it."""

from __future__ import annotations

import pytest
from pytest_django.fixtures import Settings as SettingsWrapper

from vms.crypto import UndecryptableUserData, decrypt, encrypt

OLD_KEY = "old-secret-key-for-tests-0123456789abcdefghijklmnopqrstuvwxyz"
NEW_KEY = "new-secret-key-for-tests-0123456789abcdefghijklmnopqrstuvwxyz"


def test_user_data_survives_a_key_rotation_through_the_fallbacks(
    settings: SettingsWrapper,
) -> None:
    settings.SECRET_KEY = OLD_KEY
    token = encrypt("password: hunter2\n")
    assert "hunter2" not in token

    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = NEW_KEY, [OLD_KEY]
    assert decrypt(token) == "password: hunter2\n"

    settings.SECRET_KEY_FALLBACKS = []
    with pytest.raises(UndecryptableUserData, match="SECRET_KEY_FALLBACKS"):
        decrypt(token)


def test_no_user_data_stays_empty() -> None:
    assert (encrypt(""), decrypt("")) == ("", "")
