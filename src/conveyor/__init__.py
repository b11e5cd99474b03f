"""Conveyor: background jobs for Python, the way Laravel's queues do them."""

from .app import Conveyor, current_app, set_app
from .bus import Batch, JobFailure, PendingBatch, PendingChain, batch, chain, find_batch
from .config import ConnectionSettings, Settings, load_settings
from .dispatch import (
    PendingDispatch,
    dispatch,
    dispatch_if,
    dispatch_many,
    dispatch_sync,
    dispatch_unless,
)
from .errors import (
    ConfigError,
    ConnectionUnavailable,
    ConveyorError,
    JobTimedOut,
    MaxAttemptsExceeded,
    PayloadError,
    PayloadTooLarge,
    SerializationError,
    StorageUnavailable,
    UnknownJobError,
    WorkerLost,
)
from .events import (
    EventBus,
    JobExceptionOccurred,
    JobFailed,
    JobProcessed,
    JobProcessing,
    JobQueued,
    JobReleased,
    WorkerLooping,
    WorkerStopping,
)
from .events import (
    JobTimedOut as JobTimedOutEvent,
)
from .job import Job, job

__all__ = [
    "Batch",
    "ConfigError",
    "ConnectionSettings",
    "ConnectionUnavailable",
    "Conveyor",
    "ConveyorError",
    "EventBus",
    "Job",
    "JobExceptionOccurred",
    "JobFailed",
    "JobFailure",
    "JobProcessed",
    "JobProcessing",
    "JobQueued",
    "JobReleased",
    "JobTimedOut",
    "JobTimedOutEvent",
    "MaxAttemptsExceeded",
    "PayloadError",
    "PayloadTooLarge",
    "PendingBatch",
    "PendingChain",
    "PendingDispatch",
    "SerializationError",
    "Settings",
    "StorageUnavailable",
    "UnknownJobError",
    "WorkerLooping",
    "WorkerLost",
    "WorkerStopping",
    "batch",
    "chain",
    "current_app",
    "dispatch",
    "dispatch_if",
    "dispatch_many",
    "dispatch_sync",
    "dispatch_unless",
    "find_batch",
    "job",
    "load_settings",
    "set_app",
]
__version__ = "0.1.0"
