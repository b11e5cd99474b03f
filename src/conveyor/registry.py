"""Job name <-> class, and which modules a payload may name.

A name becomes code only if it resolves to a ``Job`` subclass already defined in this process by
a module the application trusts: Conveyor's own, or one of its ``app`` modules and the modules
below them. Nothing is imported on a payload's say-so: the worker imports its ``app`` modules at
start, and a payload naming a module they did not load is an unknown job. A process that lists
no ``app`` modules (a script running jobs in-process, a test) trusts the job classes it defined.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from .errors import UnknownJobError
from .job import Job

#: Conveyor's own jobs (a batch's callbacks, a batch a chain reaches) live below this package
_OWN = "conveyor.bus."


def _walk(cls: type[Job]) -> Iterator[type[Job]]:
    for sub in cls.__subclasses__():
        yield sub
        yield from _walk(sub)


def _within(module: str, allowed: Iterable[str]) -> bool:
    return any(module == m or module.startswith(m + ".") for m in allowed)


class Registry:
    def __init__(self, allowed_modules: Iterable[str] = ()) -> None:
        self._explicit: dict[str, type[Job]] = {}
        self._found: dict[str, type[Job]] = {}
        self._allowed = tuple(m for m in allowed_modules if m)

    def register(self, cls: type[Job], name: str | None = None) -> None:
        self._explicit[name or cls.job_name] = cls

    def allow(self, module: str) -> None:
        self._allowed = (*self._allowed, module)
        self._found.clear()

    def lists(self, module: str) -> bool:
        """Whether ``module`` is one of the ``app`` modules or below one: the modules whose
        functions a payload may name as a callback."""
        return _within(module, self._allowed)

    def resolve(self, name: str) -> type[Job]:
        found = self._explicit.get(name) or self._found.get(name) or self._defined(name)
        if found is None:
            raise UnknownJobError(
                f"unknown job {name!r}: no Job subclass by that name is defined by this "
                "worker's app modules; start the worker with --app naming the module that "
                "defines it"
            )
        return found

    def _defined(self, name: str) -> type[Job] | None:
        for cls in _walk(Job):
            if cls.job_name == name and self._trusts(cls.__module__):
                self._found[name] = cls
                return cls
        return None

    def _trusts(self, module: str) -> bool:
        if module.startswith(_OWN):
            return True
        return self.lists(module) if self._allowed else True
