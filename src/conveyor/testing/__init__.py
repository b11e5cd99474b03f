"""Testing: fake the queue, run one job, drain what was dispatched, isolate a real queue.

See docs/testing.md. The pytest fixtures ``conveyor_fake``, ``conveyor_queue`` and
``conveyor_app`` come from ``conveyor.testing.pytest_plugin``, registered as a pytest plugin, so
they exist in any project that installs Conveyor, with no import.
"""

from .assertions import RecordedBatch
from .drain import Drained
from .fake import QueueFake, current_fake
from .isolated import IsolatedQueue
from .recorder import Recorded, State
from .run import JobRun, run_job, run_job_async

__all__ = [
    "Drained",
    "IsolatedQueue",
    "JobRun",
    "QueueFake",
    "Recorded",
    "RecordedBatch",
    "State",
    "current_fake",
    "run_job",
    "run_job_async",
]
