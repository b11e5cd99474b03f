"""The exceptions Conveyor raises, one tree so callers can catch ``ConveyorError``."""

from __future__ import annotations


class ConveyorError(Exception):
    """Base of every error Conveyor raises on purpose."""


class ConfigError(ConveyorError):
    """A setting is missing, malformed or contradicts another; the message names key and file."""


class SerializationError(ConveyorError):
    """A job argument cannot travel as JSON; raised at dispatch so nothing half-valid is queued."""

    def __init__(self, job: str, field: str | None, reason: str) -> None:
        self.job = job
        self.field = field
        self.reason = reason
        where = f"{job}.{field}" if field else job
        super().__init__(f"cannot serialize {where}: {reason}")


class PayloadTooLarge(SerializationError):
    """The encoded job is over the configured limit: large data belongs in storage, not queues."""


class PayloadError(ConveyorError):
    """A payload read from the queue cannot become a job: malformed, unknown class or wrong types.

    The worker never retries these: the same bytes would fail the same way. ``preview``, the
    payload's first bytes, goes to the failed store with the error, never into a log line.
    """

    def __init__(self, message: str, payload: bytes = b"") -> None:
        super().__init__(message)
        self.preview = payload[:120].decode("utf-8", "replace")


class UnknownJobError(PayloadError):
    """The payload names a job class that is not registered or importable in this worker."""


class ConnectionUnavailable(ConveyorError, ConnectionError):
    """The queue's server could not be reached; the job was not stored."""


class StorageUnavailable(ConnectionUnavailable):
    """The queue's server was reached but its storage refused the operation: a full or
    read-only disk, an I/O error, a stored value or key of the wrong type. Nothing changed.

    A subclass of ``ConnectionUnavailable`` because the cure is the same: a worker keeps its
    job, backs off and tries again, and resumes once the storage takes writes again.
    """


class MaxAttemptsExceeded(ConveyorError):
    """The job was attempted as many times as it may be; raised as the reason for failing it."""


class JobTimedOut(ConveyorError):
    """The job ran past its timeout and its process was killed."""


class WorkerLost(ConveyorError):
    """The process running the job died (segfault, ``os._exit``, OOM kill) before reporting."""


class InvalidQueueName(ConveyorError, ValueError):
    """A queue name breaks the one rule every backend can keep (see ``conveyor.queues``)."""
