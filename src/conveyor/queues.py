"""The one rule for queue names, the same on every backend, checked wherever a name comes in.

Without it the backends disagree and fail late, with their own raw errors: MariaDB/MySQL keep
a queue in a ``VARCHAR(191)`` column, PostgreSQL refuses a NUL in text and sends the queue as
a ``pg_notify`` payload (under 8000 bytes), Redis takes anything. The CLI splits ``--queue`` on
commas, and a name with spaces around it or control characters cannot be typed or read back.

A name is 1 to 80 characters: no control characters (C0, DEL, C1, NUL among them), no bidi
overrides or isolates (U+202A-U+202E, U+2066-U+2069), no lone surrogates, no comma, and no
whitespace at either end. 80 is well inside every limit (191 characters, 8000 bytes: 80
characters are at most 320 bytes of UTF-8) and leaves room for two names where a worker's
queue list shares one 191-character column.
"""

from __future__ import annotations

import re

from .errors import InvalidQueueName
from .text import UNSAFE_CHARS

MAX_QUEUE_NAME = 80

#: names already found valid: dispatch checks the queue of every job, and a hash lookup costs a
#: tenth of the regular expression (bounded, in case names are made per job)
_valid: set[str] = set()
_REMEMBERED = 1024

_FORBIDDEN = re.compile(f"[{UNSAFE_CHARS}\ud800-\udfff,]")


def check_queue_name(name: object) -> str:
    """``name`` if it is a valid queue name, else ``InvalidQueueName`` saying what is wrong."""
    if isinstance(name, str) and name in _valid:
        return name
    if not isinstance(name, str):
        raise InvalidQueueName(f"a queue name must be a string, got {name!r}")
    if not name:
        raise InvalidQueueName("a queue name cannot be empty")
    if len(name) > MAX_QUEUE_NAME:
        raise InvalidQueueName(
            f"queue name {name[:20]!r}... is {len(name)} characters;"
            f" at most {MAX_QUEUE_NAME} characters"
        )
    bad = _FORBIDDEN.search(name)
    if bad:
        what = "a comma" if bad.group() == "," else f"the character {bad.group()!r}"
        raise InvalidQueueName(f"queue name {name!r} contains {what}")
    if name != name.strip():
        raise InvalidQueueName(f"queue name {name!r} starts or ends with whitespace")
    if len(_valid) < _REMEMBERED:
        _valid.add(name)
    return name
