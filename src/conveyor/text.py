"""Text from user code on its way to storage and pipes: every string made storable, every
exception made describable, whatever it contains.

A job's exception message can hold anything: a NUL byte (PostgreSQL's text columns refuse it), a
lone surrogate from a file name the OS gave (UTF-8 cannot encode it, so msgpack and every driver
refuse it), a megabyte of text, or a ``__str__`` that raises. None of that may cost the real error
or kill the process that reports it.
"""

from __future__ import annotations

import re

#: characters stored text must not carry to a terminal or a log line as they are: the C0
#: controls (ESC, newline and NUL among them), DEL, the C1 controls, and the bidi embeddings,
#: overrides and isolates; the body of a regular expression's character class, for every
#: module that looks for them
UNSAFE_CHARS = "\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069"
_UNSAFE = re.compile(f"[{UNSAFE_CHARS}]")

#: the most characters of error text kept for a failed job: a traceback is a few kilobytes; a
#: megabyte of message would be written, read back and shown by ``conveyor failed`` each time
MAX_ERROR_CHARS = 64 * 1024
_CUT = "\n[... {} characters cut ...]\n"
_MARKER_ROOM = 64


def storable(text: str, limit: int = MAX_ERROR_CHARS) -> str:
    """``text`` with NUL bytes and lone surrogates written as escapes, and at most ``limit``
    characters: its head and its tail, which hold the traceback's first frames and the error.

    Idempotent, and free for ordinary text: one ``in`` test and one encode.
    """
    if "\x00" in text:
        text = text.replace("\x00", "\\x00")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    if len(text) <= limit:
        return text
    keep = limit - _MARKER_ROOM
    head = keep // 2
    cut = len(text) - keep
    return text[:head] + _CUT.format(cut) + text[head + cut :]


def describe(exc: BaseException) -> str:
    """``Type: message`` for any exception, even one whose ``__str__`` raises or lies about
    being a string."""
    try:
        message = str(exc)
    except Exception as broken:
        message = f"<str() of the exception raised {type(broken).__name__}>"
    return storable(f"{type(exc).__name__}: {message}")


def loggable(text: str, limit: int = 300) -> str:
    """``text`` for one log line: at most ``limit`` characters, and control characters (a
    newline that would forge a line, an escape that would drive the terminal) as escapes."""
    if len(text) <= limit and not _UNSAFE.search(text):
        return text
    shown = _UNSAFE.sub(lambda found: repr(found.group())[1:-1], text[:limit])
    return shown + ("..." if len(text) > limit else "")
