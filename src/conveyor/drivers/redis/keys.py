"""Key names. Every key of one queue shares the hash tag ``{prefix:queue}``, so each script
touches a single Redis Cluster slot; the failed store and the control plane share ``{prefix}``.
"""

from __future__ import annotations

from dataclasses import dataclass

from redis.crc import key_slot


@dataclass(frozen=True)
class QueueKeys:
    queue: str
    pending: str
    delayed: str
    reserved: str
    payload: str
    attempts: str
    token: str
    claims: str
    notify: str
    handoff: str

    @classmethod
    def of(cls, prefix: str, queue: str) -> QueueKeys:
        tag = f"{{{prefix}:{queue}}}"
        return cls(
            queue, f"{tag}:pending", f"{tag}:delayed", f"{tag}:reserved", f"{tag}:payload",
            f"{tag}:attempts", f"{tag}:token", f"{tag}:claims", f"{tag}:notify",
            f"{tag}:failed-handoff",
        )  # fmt: skip

    @property
    def slot(self) -> int:
        return key_slot(self.pending.encode())

    def for_reserve(self) -> list[str]:
        """The 9 keys reserve.lua takes per queue, in its order."""
        return [self.pending, self.delayed, self.reserved, self.payload, self.attempts,
                self.token, self.claims, self.notify, self.handoff]  # fmt: skip

    def for_settle(self) -> list[str]:
        """The keys every settling script starts with: reserved, token, claims, pending
        (lib_settle.lua; pending, because a late settlement takes a swept job off it)."""
        return [self.reserved, self.token, self.claims, self.pending]

    def for_store(self) -> list[str]:
        """The 4 keys lib_store.lua's store_jobs takes, in its order."""
        return [self.payload, self.pending, self.delayed, self.notify]

    def jobs(self) -> list[str]:
        """Every key that holds jobs (what ``clear`` drops), the payload hash first."""
        return [self.payload, self.pending, self.delayed, self.reserved, self.attempts,
                self.token, self.claims, self.notify]  # fmt: skip


@dataclass(frozen=True)
class FailedKeys:
    seq: str
    records: str
    ids: str
    times: str
    uuids: str
    queue_of: str
    uuid_of: str
    queue_prefix: str

    @classmethod
    def of(cls, prefix: str) -> FailedKeys:
        base = f"{{{prefix}}}:failed"
        return cls(
            f"{base}:seq", f"{base}:records", f"{base}:ids", f"{base}:times", f"{base}:uuids",
            f"{base}:queue-of", f"{base}:uuid-of", f"{base}:queue:",
        )  # fmt: skip

    def store(self) -> list[str]:
        """The 7 keys lib_failed.lua's failed_keys() reads, in its order."""
        return [self.seq, self.records, self.ids, self.times, self.uuids, self.queue_of,
                self.uuid_of]  # fmt: skip

    def index(self, queue: str | None) -> str:
        return self.ids if queue is None else self.queue_prefix + queue


@dataclass(frozen=True)
class ControlKeys:
    queues: str
    restart: str
    workers: str
    seen: str

    @classmethod
    def of(cls, prefix: str) -> ControlKeys:
        tag = f"{{{prefix}}}"
        return cls(f"{tag}:queues", f"{tag}:restart", f"{tag}:workers", f"{tag}:workers:seen")
