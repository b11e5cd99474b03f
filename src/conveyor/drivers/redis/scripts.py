"""The Lua scripts, read from the ``.lua`` files beside this module.

A script may pull in a shared library file with a ``--! include NAME.lua`` line; the library's
text replaces that line, so what Redis runs is one self-contained script. Scripts are sent by
SHA1 (``EVALSHA``) and loaded only when the server says it does not know them (first use, or
after a restart emptied its script cache).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources

_INCLUDE = "--! include "
NAMES = (
    "push", "reserve", "ack_reserve", "ack_many_claim", "begin", "ack", "release", "extend",
    "fail", "fail_handoff", "size", "clear", "heartbeat", "failed_record", "failed_forget",
    "failed_flush", "failed_page",
)  # fmt: skip


@dataclass(frozen=True)
class Script:
    name: str
    source: str
    sha: str


def _read(name: str) -> str:
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


def _expand(text: str) -> str:
    lines = []
    for line in text.splitlines():
        if line.startswith(_INCLUDE):
            lines.append(_read(line[len(_INCLUDE) :].strip()).rstrip())
        else:
            lines.append(line)
    return "\n".join(lines) + "\n"


def load_all() -> dict[str, Script]:
    found = {}
    for name in NAMES:
        source = _expand(_read(f"{name}.lua"))
        found[name] = Script(name, source, hashlib.sha1(source.encode()).hexdigest())
    return found
