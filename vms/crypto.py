"""Encryption at rest for VM user data (cloud-init may carry passwords and tokens).

Fernet (AES-128-CBC with HMAC-SHA256) under a key derived from ``SECRET_KEY`` with HKDF,
so a database dump alone reveals nothing. Rotation follows Django's: put the old key in
``SECRET_KEY_FALLBACKS`` and what was encrypted under it still decrypts. Stored user data is
never written again by itself, so ``manage.py reencrypt_user_data`` moves it under the new
key (``reencrypt``); only then may the old key leave the fallbacks.
"""

from __future__ import annotations

import base64

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings

# Domain separation: this key is for VM user data and nothing else derived from SECRET_KEY.
KEY_PURPOSE = b"butler-portal/vms/user-data"


class UndecryptableUserData(Exception):
    """Encrypted under a key that is neither SECRET_KEY nor in SECRET_KEY_FALLBACKS."""


def _fernet_key(secret: str) -> bytes:
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=KEY_PURPOSE).derive(
        secret.encode()
    )
    return base64.urlsafe_b64encode(derived)


def _fernet() -> MultiFernet:
    secrets = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    return MultiFernet([Fernet(_fernet_key(secret)) for secret in secrets])


def encrypt(text: str) -> str:
    """The encrypted text ("" stays "": no user data)."""
    return _fernet().encrypt(text.encode()).decode() if text else ""


def reencrypt(token: str) -> str:
    """``token`` encrypted under the current SECRET_KEY; unchanged when it already is."""
    if not token:
        return ""
    try:
        Fernet(_fernet_key(settings.SECRET_KEY)).decrypt(token.encode())
        return token
    except InvalidToken:
        pass
    try:
        return _fernet().rotate(token.encode()).decode()
    except InvalidToken:
        raise UndecryptableUserData(
            "The VM's user data was encrypted under a SECRET_KEY the portal no longer has "
            "(add it to SECRET_KEY_FALLBACKS)."
        ) from None


def decrypt(token: str) -> str:
    if not token:
        return ""
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        raise UndecryptableUserData(
            "The VM's user data was encrypted under a SECRET_KEY the portal no longer has "
            "(add it to SECRET_KEY_FALLBACKS)."
        ) from None
