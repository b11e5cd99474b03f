"""The internal jobs of chains and batches: running a callback, starting a batch a chain reached.

A callback function is named by ``module:qualname`` in the payload, so a worker only runs it if
it is a plain function defined by one of the application's ``app`` modules (or a module below
one), already loaded: never a function of the standard library, of Conveyor or of any other
package, and nothing is imported for it. A payload cannot make a worker call arbitrary code,
just as it cannot name an arbitrary job.
"""

from __future__ import annotations

import types
from collections.abc import Callable
from typing import Any

from ..errors import ConveyorError
from ..job import Job
from .firing import Prepared, start
from .links import RUN_CALLBACK_JOB, START_BATCH_JOB, lookup, not_storable
from .stores import store_for


class JobFailure(ConveyorError):
    """What a catch callback receives: the failed job's id and its error, traceback included.

    The original exception object stays in the worker that saw it; ``str()`` is its last line.
    """

    def __init__(self, job_id: str, error: str) -> None:
        self.job_id = job_id
        self.error = error
        lines = [line for line in error.strip().splitlines() if line.strip()]
        super().__init__(lines[-1] if lines else f"job {job_id} failed")


def runnable(target: str) -> Callable[..., Any]:
    """The function ``module:qualname`` names, if a callback may be it."""
    from ..app import current_app

    module = target.partition(":")[0]
    if not current_app().registry.lists(module):
        raise ConveyorError(
            f"callback {target!r}: module {module!r} is not one of this worker's app modules; "
            "start the worker with --app naming the module that defines it"
        )
    fn = lookup(target)
    if not isinstance(fn, types.FunctionType) or not_storable(fn) is not None:
        raise ConveyorError(
            f"callback {target!r} is not a function that its module, as the worker loaded "
            "it, defines"
        )
    return fn


class RunCallback(Job):
    """Runs one then / catch / finally callback of a batch, or a chain's catch callback."""

    job_name = RUN_CALLBACK_JOB
    target: str
    event: str
    batch_id: str = ""
    failed_job: str = ""
    error: str = ""

    def handle(self) -> Any:
        fn = runnable(self.target)
        if self.event == "chain_catch":
            return fn(self._failure())
        from .batch import find_batch

        batch = find_batch(self.batch_id, connection=self._ctx().connection)
        if batch is None:
            raise ConveyorError(f"batch {self.batch_id} no longer exists (pruned or deleted?)")
        if self.event == "catch":
            return fn(batch, self._failure())
        return fn(batch)

    def _failure(self) -> JobFailure:
        """The failure to report; looked up when the event fired without one at hand (a
        batch that was a chain's link finished cancelled: its first failed job, if any)."""
        from ..app import current_app
        from .batch import find_batch

        connection = self._ctx().connection
        failed_job, error = self.failed_job, self.error
        if not failed_job and self.batch_id:
            batch = find_batch(self.batch_id, connection=connection)
            failed_job = batch.failed_job_ids[0] if batch and batch.failed_job_ids else ""
        if failed_job and not error:
            record = current_app().driver(connection).failed.get(failed_job)
            error = record.exception if record else ""
        if not error:
            error = f"batch {self.batch_id} was cancelled" if self.batch_id else "job failed"
        return JobFailure(failed_job, error)


class StartBatch(Job):
    """A chain's link that is a batch: creating it is idempotent (its id is fixed), so a worker
    killed after creating it and before acknowledging this job creates nothing twice."""

    job_name = START_BATCH_JOB
    spec: dict[str, Any]
    chain: list[dict[str, Any]]
    catch: list[dict[str, Any]]

    def handle(self) -> None:
        from ..app import current_app

        store = store_for(current_app().driver(self._ctx().connection))
        start(store, Prepared.from_spec(self.spec), self.chain, self.catch, continued=True)
