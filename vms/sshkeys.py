"""OpenSSH public keys: parsing, validation and fingerprints, as ``ssh-keygen -l`` shows them.

A key is one line, ``<type> <base64 key data> [comment]``. The key data is itself typed: it
starts with the key type again, then the key's numbers, which ``cryptography`` checks (a
point on the curve, a well-formed RSA modulus). Anything else a user might paste instead
(a private key, an ``authorized_keys`` line with options, two keys at once) is refused with
a message that says what to paste.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_ssh_public_key
from django.core.exceptions import ValidationError

#: Key types the portal accepts, with the name ``ssh-keygen -l`` shows for each.
KEY_TYPES: dict[str, str] = {
    "ssh-ed25519": "ED25519",
    "ecdsa-sha2-nistp256": "ECDSA",
    "ecdsa-sha2-nistp384": "ECDSA",
    "ecdsa-sha2-nistp521": "ECDSA",
    "ssh-rsa": "RSA",
    # FIDO security keys (YubiKey and the like).
    "sk-ssh-ed25519@openssh.com": "ED25519-SK",
    "sk-ecdsa-sha2-nistp256@openssh.com": "ECDSA-SK",
}
MIN_RSA_BITS = 2048
# An RSA key of 16384 bits is about 2.8 kB of base64; anything much longer is not a key.
MAX_KEY_LENGTH = 8192
MAX_COMMENT_LENGTH = 200


@dataclass(frozen=True)
class PublicKey:
    key_type: str
    data: str  # the base64 key data, as pasted
    comment: str
    bits: int
    fingerprint: str  # "SHA256:<unpadded base64>"

    @property
    def type_name(self) -> str:
        return KEY_TYPES[self.key_type]

    @property
    def line(self) -> str:
        """The key as one normalised ``authorized_keys`` line."""
        return " ".join(part for part in (self.key_type, self.data, self.comment) if part)

    def describe(self) -> str:
        """What ``ssh-keygen -l`` prints: bits, fingerprint, comment, type."""
        comment = self.comment or "no comment"
        return f"{self.bits} {self.fingerprint} {comment} ({self.type_name})"


def fingerprint_of(blob: bytes) -> str:
    digest = base64.b64encode(hashlib.sha256(blob).digest()).decode()
    return f"SHA256:{digest.rstrip('=')}"


def _refuse(message: str) -> ValidationError:
    return ValidationError({"public_key": message}, code="invalid_ssh_key")


def _declared_type(blob: bytes) -> str:
    """The type named inside the key data (its first length-prefixed string)."""
    if len(blob) < 4:
        return ""
    (length,) = struct.unpack(">I", blob[:4])
    return blob[4 : 4 + length].decode("ascii", errors="replace") if length <= 64 else ""


def _bits(key: object) -> int:
    if isinstance(key, rsa.RSAPublicKey):
        return key.key_size
    if isinstance(key, ec.EllipticCurvePublicKey):
        return key.curve.key_size
    return 256  # Ed25519, with or without a security key


def parse_public_key(text: str) -> PublicKey:
    """The key in ``text``, or a ValidationError on ``public_key`` saying what is wrong."""
    stripped = text.strip()
    if not stripped:
        raise _refuse("Paste an OpenSSH public key, e.g. the contents of ~/.ssh/id_ed25519.pub.")
    if len(stripped) > MAX_KEY_LENGTH:
        raise _refuse("This is too long to be one public key.")
    if "PRIVATE KEY" in stripped:
        raise _refuse(
            "This is a private key: never share it. Paste the public key (the .pub file)."
        )
    if len(stripped.splitlines()) > 1:
        raise _refuse("Paste one key, on one line; add further keys separately.")
    parts = stripped.split(maxsplit=2)
    key_type = parts[0]
    if key_type not in KEY_TYPES:
        raise _refuse(
            "Not an OpenSSH public key: it must start with its type, one of "
            f"{', '.join(KEY_TYPES)} (options such as from= or command= are not accepted)."
        )
    if len(parts) < 2:
        raise _refuse("The key data is missing after the key type.")
    data = parts[1]
    comment = parts[2].strip() if len(parts) > 2 else ""
    if len(comment) > MAX_COMMENT_LENGTH:
        raise _refuse(f"The comment is longer than {MAX_COMMENT_LENGTH} characters.")
    try:
        blob = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise _refuse("The key data is not valid base64: was the key cut short?") from None
    inner = _declared_type(blob)
    if inner != key_type:
        raise _refuse(f"The line says {key_type} but the key data is a {inner or 'unknown'} key.")
    try:
        key = load_ssh_public_key(f"{key_type} {data}".encode())
    except (ValueError, TypeError) as error:
        raise _refuse(
            f"The key data is corrupt or incomplete ({error}): copy the whole line again."
        ) from None
    bits = _bits(key)
    if isinstance(key, rsa.RSAPublicKey) and bits < MIN_RSA_BITS:
        raise _refuse(
            f"This RSA key has {bits} bits; use at least {MIN_RSA_BITS}, or better an "
            "Ed25519 key (ssh-keygen -t ed25519)."
        )
    return PublicKey(
        key_type=key_type,
        data=data,
        comment=comment,
        bits=bits,
        fingerprint=fingerprint_of(blob),
    )
