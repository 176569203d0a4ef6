"""Controller messages in plain words: what is happening, or what failed and what to do.

Controllers write for their authors ("KubeadmConfig status.initialization.dataSecretCreated
is false", "Running 'install' action with timeout of 5m0s"). A tenant reads the portal's
sentence; the controller's own text stays one click away (``Said.raw``). ``explain`` knows
the messages the portal's controllers are known to write (``KNOWN``); anything else becomes
the caller's ``fallback`` sentence, never a field path.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from butler_portal.lifecycle import plain

#: A known message: its pattern, and the sentence (a format string over the pattern's named
#: groups, or a function of the match).
Known = tuple[re.Pattern[str], str | Callable[[re.Match[str]], str]]


@dataclass(frozen=True)
class Said:
    """A plain sentence for people, and the controller's own words behind it ("" if none)."""

    text: str
    raw: str = ""

    def __bool__(self) -> bool:
        return bool(self.text)


def _known(pattern: str, sentence: str | Callable[[re.Match[str]], str]) -> Known:
    return re.compile(pattern, re.IGNORECASE), sentence


KNOWN: Sequence[Known] = (
    _known(
        r"KubeadmConfig .*dataSecretCreated is false",
        "Preparing the worker's bootstrap configuration.",
    ),
    _known(
        r"Running '(?P<action>install|upgrade|uninstall)' action",
        lambda match: {
            "install": "Installing it.",
            "upgrade": "Upgrading it.",
            "uninstall": "Removing it.",
        }[match["action"].lower()],
    ),
)


def explain(message: str | None, *, fallback: str) -> Said:
    """``message`` from a controller as a plain sentence, with the raw text kept beside it.

    ``fallback`` is what the caller would say without the controller's help ("Installing
    the add-on."); it is used for any message ``KNOWN`` does not cover. No message, no
    sentence: ``Said("")``.
    """
    raw = plain(message)
    if not raw:
        return Said("")
    for pattern, sentence in KNOWN:
        if match := pattern.search(raw):
            text = sentence(match) if callable(sentence) else sentence.format(**match.groupdict())
            return Said(text, raw)
    return Said(fallback, raw)
