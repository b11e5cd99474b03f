"""Stored text made inert before it reaches a terminal: the one rule every command prints by.

Queue names, job names, batch names and exception texts come from whoever dispatched the job.
Printed as they are, ``ESC ]0;...`` retitles the terminal, ``ESC [2J`` clears it, ``ESC ]8;;``
prints a link that goes somewhere else than it says, U+202E turns the rest of a line around,
and a queue named ``[/]`` is rich markup that crashes the table printing it. Each such
character becomes U+FFFD, so the reader sees that something was there.
"""

from __future__ import annotations

import re

from rich.markup import escape

from ..text import UNSAFE_CHARS

REPLACEMENT = "\ufffd"

#: C0 controls (ESC among them), DEL, C1 controls, and the bidi embeddings, overrides and
#: isolates (U+202A-U+202E, U+2066-U+2069); newline and tab only where lines are kept
_UNSAFE = re.compile(f"[{UNSAFE_CHARS}]")
_UNSAFE_IN_LINES = re.compile(f"(?![\t\n])[{UNSAFE_CHARS}]")


def plain(value: object, keep_newlines: bool = False) -> str:
    """``value`` as text a terminal shows without obeying: for ``click.echo`` and log lines."""
    pattern = _UNSAFE_IN_LINES if keep_newlines else _UNSAFE
    return pattern.sub(REPLACEMENT, str(value))


def inert(value: object, keep_newlines: bool = False) -> str:
    """``value`` for rich: made ``plain``, with its ``[`` escaped so it prints as it reads."""
    return escape(plain(value, keep_newlines))
