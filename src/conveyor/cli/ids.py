"""Ids as a user types them: a stored id, or a unique prefix of one (as git takes commits).

Job and batch ids are 32 hex digits, and an 80-column table cuts them (``700ba75…``); typing
the first few is enough when no other stored id starts with them. Six characters at least:
with 16**6 (16.8 million) prefixes, two ids of a store of thousands rarely share one, and a
shorter prefix is more likely a typo than a choice.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator

from ..bus.batch_store import BatchStore
from ..drivers.base import FailedJobStore, FailedRecord
from .common import USAGE, fail

MIN_PREFIX = 6
#: records read per page while looking for a prefix
PAGE = 500
#: candidates an ambiguous prefix lists
SHOWN = 5


def unique(given: str, ids: Iterable[str], what: str) -> str | None:
    """The one id of ``ids`` starting with ``given``; None if there is none or ``given`` is
    too short to be a prefix. Two or more: one line listing them, exit 2."""
    if len(given) < MIN_PREFIX:
        return None
    found = sorted({i for i in ids if i.startswith(given)})
    if len(found) > 1:
        listed = ", ".join(found[:SHOWN]) + (", ..." if len(found) > SHOWN else "")
        fail(f"{given} is the start of {len(found)} {what} ids ({listed}): type more of it", USAGE)
    return found[0] if found else None


def _failed_uuids(store: FailedJobStore) -> Iterator[str]:
    before: int | None = None
    while True:
        page = store.page(before=before, limit=PAGE)
        yield from (record.uuid for record in page)
        before = page[-1].id if page else None
        if before is None or len(page) < PAGE:
            return


def failed_record(store: FailedJobStore, given: str) -> FailedRecord | None:
    """The failed record whose id or uuid is ``given``, or whose uuid starts with it.

    A prefix reads the whole store's records, a page at a time: a command typed by a person,
    not a hot path."""
    found = store.get(given)
    if found is not None:
        return found
    uuid = unique(given, _failed_uuids(store), "failed job")
    return None if uuid is None else store.get(uuid)


def _batch_ids(store: BatchStore) -> Iterator[str]:
    before: float | None = None
    seen: set[str] = set()
    while True:
        page = store.page(PAGE, before)
        fresh = [record.id for record in page if record.id not in seen]
        yield from fresh
        seen.update(fresh)
        if len(page) < PAGE or not fresh:
            return
        # pages go by creation time, strictly before ``before``: start the next one just above
        # the oldest of this one, so batches created in the same instant are not skipped
        before = math.nextafter(page[-1].created_at, math.inf)


def stored_batch_id(store: BatchStore, given: str) -> str | None:
    """The stored batch id ``given`` is, or is the unique start of; None if none."""
    if store.find(given) is not None:
        return given
    return unique(given, _batch_ids(store), "batch")
