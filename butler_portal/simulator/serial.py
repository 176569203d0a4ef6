"""What a freshly booted guest shows on its serial console: ``/etc/issue`` and a getty.

Pure (no I/O): ``subresources`` feeds it the bytes a console client types and sends back
what it answers. The guest is believable, not real: it greets like the distribution its
root disk was imported from, echoes what is typed at ``login:``, asks for a password
without echoing it, and after the delay ``login(1)`` imposes answers ``Login incorrect``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum, auto

from butler_portal.simulator.objects import Manifest, dig

# Longest line the getty keeps: what a client types beyond it is dropped, as by a tty.
MAX_FIELD_BYTES = 256

ESC, BACKSPACE, DELETE = 0x1B, 0x08, 0x7F
CTRL_C, CTRL_U = 0x03, 0x15
CARRIAGE_RETURN, LINE_FEED = 0x0D, 0x0A
ERASE = b"\b \b"  # back one column, blank it, back again


# --- /etc/issue ---------------------------------------------------------------------------

_VERSION = re.compile(r"\d+(?:\.\d+)*")


def _ubuntu(version: str) -> str:
    # Even-year April releases are the long-term ones (22.04, 24.04, ...).
    lts = re.fullmatch(r"(\d\d)\.04", version) and int(version[:2]) % 2 == 0
    return f"Ubuntu {version}{' LTS' if lts else ''}".strip()


_DISTRIBUTIONS: dict[str, Callable[[str], str]] = {
    "ubuntu": _ubuntu,
    "debian": lambda version: f"Debian GNU/Linux {version.split('.')[0]}".strip(),
    "fedora": lambda version: f"Fedora Linux {version}".strip(),
    "centos": lambda version: f"CentOS Stream {version}".strip(),
    "rocky": lambda version: f"Rocky Linux {version}".strip(),
    "alma": lambda version: f"AlmaLinux {version}".strip(),
    "opensuse": lambda version: f"openSUSE Leap {version}".strip(),
}


def image_source(data_volume: Manifest | None) -> str:
    """Where CDI imported a root disk from (STATUS.md §6): a registry image or a URL."""
    source = dig(data_volume, "spec", "source", default={})
    return str(dig(source, "registry", "url") or dig(source, "http", "url") or "")


def operating_system(source: str) -> str:
    """The guest's name as its ``/etc/issue`` prints it, guessed from its image's source.

    ``docker://quay.io/containerdisks/ubuntu:24.04`` → ``Ubuntu 24.04 LTS``;
    ``https://…/debian-12-generic-amd64.qcow2`` → ``Debian GNU/Linux 12``; anything
    unknown → ``Linux``.
    """
    last_segment = source.rstrip("/").rsplit("/", 1)[-1].lower()
    image, _, tag = last_segment.partition(":")
    version_found = _VERSION.search(tag) or _VERSION.search(image)
    version = version_found.group() if version_found else ""
    lowered = source.lower()
    for distribution, name in _DISTRIBUTIONS.items():
        if distribution in lowered:
            return name(version)
    return "Linux"


# --- getty --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pause:
    """Wait this many seconds before sending what follows."""

    seconds: float


Output = bytes | Pause


class _Field(Enum):
    LOGIN = auto()
    PASSWORD = auto()


class _Escape(Enum):
    NONE = auto()
    STARTED = auto()  # ESC seen
    CSI = auto()  # ESC [ seen: parameters until a final byte 0x40–0x7E
    SS3 = auto()  # ESC O seen: one more byte (F1–F4, keypad)


class Getty:
    """A login prompt on ``ttyS0`` that never lets anyone in.

    ``greeting()`` is what a fresh connection sees; ``feed(bytes)`` takes what the client
    typed and returns what the console answers: bytes, and ``Pause``s where the guest would
    take its time.
    """

    def __init__(self, hostname: str, operating_system: str, *, login_delay: float) -> None:
        self.hostname = hostname
        self.operating_system = operating_system
        self.login_delay = login_delay
        self._field = _Field.LOGIN
        self._typed = bytearray()
        self._escape = _Escape.NONE
        self._after_carriage_return = False

    @property
    def prompt(self) -> bytes:
        return f"{self.hostname} login: ".encode()

    def greeting(self) -> bytes:
        issue = f"{self.operating_system} {self.hostname} ttyS0"
        return b"\r\n" + issue.encode() + b"\r\n\r\n" + self.prompt

    def feed(self, data: bytes) -> list[Output]:
        outputs: list[Output] = []
        for byte in data:
            outputs.extend(self._byte(byte))
        return _joined(outputs)

    def _byte(self, byte: int) -> list[Output]:
        follows_carriage_return, self._after_carriage_return = self._after_carriage_return, False
        if self._escape is not _Escape.NONE:
            self._skip_escape_sequence(byte)
            return []
        if byte == ESC:
            self._escape = _Escape.STARTED
            return []
        if byte == LINE_FEED and follows_carriage_return:
            return []  # CR LF from a client that sends both: one Enter
        if byte in (CARRIAGE_RETURN, LINE_FEED):
            self._after_carriage_return = byte == CARRIAGE_RETURN
            return self._enter()
        if byte in (BACKSPACE, DELETE):
            return self._erase(1)
        if byte == CTRL_U:
            return self._erase(len(self._typed.decode(errors="replace")))
        if byte == CTRL_C:
            self._field, self._typed = _Field.LOGIN, bytearray()
            return [b"^C\r\n\r\n" + self.prompt]
        if byte < 0x20:
            return []  # other control characters do nothing at a login prompt
        if len(self._typed) >= MAX_FIELD_BYTES:
            return []
        self._typed.append(byte)
        return [bytes([byte])] if self._field is _Field.LOGIN else []

    def _enter(self) -> list[Output]:
        typed, self._typed = bytes(self._typed), bytearray()
        if self._field is _Field.PASSWORD:
            self._field = _Field.LOGIN
            return [b"\r\n", Pause(self.login_delay), b"\r\nLogin incorrect\r\n" + self.prompt]
        if not typed.strip():
            return [b"\r\n" + self.prompt]
        self._field = _Field.PASSWORD
        return [b"\r\nPassword: "]

    def _erase(self, characters: int) -> list[Output]:
        erased = 0
        while self._typed and erased < characters:
            # Drop one whole UTF-8 character: its continuation bytes, then its first byte.
            while self._typed and self._typed[-1] & 0xC0 == 0x80:
                self._typed.pop()
            if self._typed:
                self._typed.pop()
            erased += 1
        return [ERASE * erased] if erased and self._field is _Field.LOGIN else []

    def _skip_escape_sequence(self, byte: int) -> None:
        """Arrow and function keys send escape sequences; a getty line ignores them."""
        if self._escape is _Escape.STARTED:
            self._escape = {ord("["): _Escape.CSI, ord("O"): _Escape.SS3}.get(byte, _Escape.NONE)
        elif self._escape is _Escape.SS3 or 0x40 <= byte <= 0x7E:
            self._escape = _Escape.NONE


def _joined(outputs: list[Output]) -> list[Output]:
    """Adjacent bytes as one message: a terminal client gets one frame per answer."""
    joined: list[Output] = []
    for output in outputs:
        if isinstance(output, bytes) and joined and isinstance(joined[-1], bytes):
            joined[-1] += output
        elif output:
            joined.append(output)
    return joined
