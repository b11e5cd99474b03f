"""Exactly once under four real workers that keep being SIGKILLed.

A job may run more than once (a worker killed after the job's work and before its
acknowledgement: delivery is at least once), but each chain link is handed over once (one job
id per link, and never two copies of it running side by side), and each batch event fires once
(one callback job per event).

Every run of a job has its own attempt number, with one exception the workers' docs state: a
prefetched job's start is counted with the control process's next round trip, so a job whose
whole worker is SIGKILLed before that runs again under the same number. Such a repeat is
allowed only where the earlier run's process died in a whole-worker kill and the repeat began
after it, so it can never hide two copies running side by side.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from conveyor import Conveyor, batch, chain, find_batch
from conveyor.envelope import decode

from .conftest import configure
from .jobs import Doomed, Notify, Step, read_records
from .procs import Pool, chaos, pool

pytestmark = pytest.mark.slow
CRASH_BACKENDS = ["sqlite", "postgres", "mysql", "redis"]


def _app(project: Path, backend: str, request: pytest.FixtureRequest) -> Conveyor:
    app = configure(project, backend, request)
    request.addfinalizer(app.close)
    return app


def _runs_by_key(project: Path) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for run in read_records(project, "run"):
        found[run["key"]].append(run)
    return found


def _assert_one_copy(runs: list[dict[str, Any]], what: str, workers: Pool) -> None:
    ids = {r["id"] for r in runs}
    assert len(ids) == 1, f"{what} was dispatched {len(ids)} times: {runs}"
    by_attempt: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for run in runs:
        by_attempt[run["attempt"]].append(run)
    for same in by_attempt.values():
        same.sort(key=lambda r: r["t"])
        for earlier, later in itertools.pairwise(same):
            killed = any(
                earlier["pid"] in pids and earlier["t"] <= t <= later["t"]
                for t, pids in workers.whole_kills
            )
            assert killed, f"{what} ran twice in one attempt, not after a kill: {runs}"


@pytest.mark.parametrize("backend", CRASH_BACKENDS)
def test_chain_hand_over_is_exactly_once_under_kills(
    project: Path, backend: str, request: pytest.FixtureRequest
) -> None:
    app = _app(project, backend, request)
    chains, links, doomed = 30, 5, {3, 11, 19, 27}
    for c in range(chains):
        jobs: list[Any] = [Step(key=f"{c}:{n}", sleep=0.04) for n in range(links)]
        if c in doomed:
            jobs[2] = Doomed(key=f"{c}:2")
        chain(jobs).catch(Notify(tag=f"catch-{c}")).using(app).dispatch()
    expected = {
        f"{c}:{n}" for c in range(chains) for n in range(links) if c not in doomed or n <= 2
    }

    def done() -> bool:
        runs = _runs_by_key(project)
        caught = {r["tag"] for r in read_records(project, "notify")}
        return expected <= set(runs) and len(caught) >= len(doomed)

    with pool(project, 4) as workers:
        chaos(workers, done, lambda: workers.kills < 12, timeout=60)
        assert workers.kills >= 3  # every kill landed while work remained
    runs = _runs_by_key(project)
    assert set(runs) == expected  # the links after a failed one never ran
    for key, key_runs in runs.items():
        _assert_one_copy(key_runs, f"link {key}", workers)
    for c in range(chains):  # a link first ran after its predecessor first completed
        for n in range(1, links):
            if f"{c}:{n}" in runs:
                first = min(r["t"] for r in runs[f"{c}:{n}"])
                assert first >= min(r["t"] for r in runs[f"{c}:{n - 1}"])
    notes = read_records(project, "notify")
    by_tag: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for note in notes:
        by_tag[note["tag"]].append(note)
    assert set(by_tag) == {f"catch-{c}" for c in doomed}
    for tag, fired in by_tag.items():
        _assert_one_copy(fired, f"callback {tag}", workers)


@pytest.mark.parametrize("backend", CRASH_BACKENDS)
def test_batch_callbacks_fire_exactly_once_under_kills(
    project: Path, backend: str, request: pytest.FixtureRequest
) -> None:
    app = _app(project, backend, request)

    def callbacks(name: str) -> dict[str, Notify]:
        return {e: Notify(tag=f"{name}-{e}") for e in ("then", "catch", "finally")}

    def dispatched(jobs: list[Any], name: str, allow: bool) -> str:
        cb = callbacks(name)
        pending = batch(jobs).then(cb["then"]).catch(cb["catch"]).finally_(cb["finally"])
        return pending.allow_failures(allow).name(name).using(app).dispatch().id

    good = dispatched([Step(key=f"g{i}", sleep=0.03) for i in range(120)], "good", False)
    mixed_jobs: list[Any] = [
        Doomed(key=f"m{i}") if i % 10 == 0 else Step(key=f"m{i}", sleep=0.03) for i in range(100)
    ]
    mixed = dispatched(mixed_jobs, "mixed", True)
    ids = (good, mixed)

    def finished() -> bool:
        return all(b is not None and b.finished() for b in (find_batch(i, app=app) for i in ids))

    def done() -> bool:
        return finished() and len({n["tag"] for n in read_records(project, "notify")}) >= 4

    with pool(project, 4) as workers:
        chaos(workers, done, lambda: not finished() and workers.kills < 15, timeout=60)
        assert workers.kills >= 3  # every kill landed while work remained
    runs = _runs_by_key(project)
    # a kill of the executor child can land on a Doomed job (tries = 1) before it records its
    # run: that attempt is lost and the job fails for good, unrun, as its policy says
    lost_unrun = {
        decode(r.payload).args["key"]
        for r in app.driver().failed.page(limit=100)
        if "WorkerLost" in r.exception
    } - set(runs)
    assert all(k.startswith("m") and int(k[1:]) % 10 == 0 for k in lost_unrun), lost_unrun
    assert len(runs) + len(lost_unrun) == 220
    for key, key_runs in runs.items():
        _assert_one_copy(key_runs, f"job {key}", workers)
    fired: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for note in read_records(project, "notify"):
        fired[note["tag"]].append(note)
    assert set(fired) == {"good-then", "good-finally", "mixed-catch", "mixed-finally"}
    for tag, notes in fired.items():
        _assert_one_copy(notes, f"callback {tag}", workers)
    good_batch, mixed_batch = (find_batch(i, app=app) for i in ids)
    assert good_batch is not None and mixed_batch is not None
    assert (good_batch.processed_jobs, good_batch.failed_jobs, good_batch.pending_jobs) == (
        120,
        0,
        0,
    )
    assert (mixed_batch.processed_jobs, mixed_batch.failed_jobs) == (90, 10)
    assert len(mixed_batch.failed_job_ids) == 10
    failed = app.driver().failed.page(limit=100)
    assert sorted(r.uuid for r in failed) == sorted(mixed_batch.failed_job_ids)
    assert all(mixed.encode() in r.payload for r in failed)
