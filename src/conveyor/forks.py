"""How many times this process's ancestry has forked, to tell a child from its parent cheaply.

Objects that hold sockets (drivers, connections) must not use their parent's after a fork.
Comparing ``os.getpid()`` on every call is a system call on every dispatch; comparing this
counter, which a fork hook bumps in the child, is a global read.
"""

from __future__ import annotations

import os

_generation = 0


def _forked() -> None:
    global _generation
    _generation += 1


os.register_at_fork(after_in_child=_forked)


def generation() -> int:
    """A number that differs in a forked child from what it was in its parent."""
    return _generation
