"""Job name <-> class.

A name becomes code only if it resolves to a ``Job`` subclass: either one already defined in this
process, or one found by importing a module the application allowed (its ``app`` modules and
their packages). A payload can therefore never make the worker import or call arbitrary code.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Iterator

from .errors import UnknownJobError
from .job import Job


def _walk(cls: type[Job]) -> Iterator[type[Job]]:
    for sub in cls.__subclasses__():
        yield sub
        yield from _walk(sub)


class Registry:
    def __init__(self, allowed_modules: Iterable[str] = ()) -> None:
        self._explicit: dict[str, type[Job]] = {}
        self._allowed = tuple(m for m in allowed_modules if m)

    def register(self, cls: type[Job], name: str | None = None) -> None:
        self._explicit[name or cls.job_name] = cls

    def allow(self, module: str) -> None:
        self._allowed = (*self._allowed, module)

    def resolve(self, name: str) -> type[Job]:
        found = self._explicit.get(name) or self._defined(name)
        if found is None and self._may_import(name):
            module = name.partition(":")[0]
            try:
                importlib.import_module(module)
            except ImportError as exc:
                raise UnknownJobError(f"job {name!r}: cannot import {module!r}: {exc}") from None
            found = self._defined(name)
        if found is None:
            raise UnknownJobError(
                f"unknown job {name!r}: no Job subclass by that name is loaded in this worker; "
                "start the worker with --app naming the module that defines it"
            )
        return found

    def _defined(self, name: str) -> type[Job] | None:
        for cls in _walk(Job):
            if cls.job_name == name:
                self._explicit[name] = cls
                return cls
        return None

    def _may_import(self, name: str) -> bool:
        module = name.partition(":")[0]
        return any(module == m or module.startswith(m + ".") for m in self._allowed)
