"""Turning repetitions into the published tables: median with min-max, and ratios to Conveyor."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any

MB = 1024 * 1024


@dataclass(frozen=True)
class Metric:
    key: str
    title: str
    unit: str
    higher_is_better: bool
    scale: float = 1.0


METRICS = (
    Metric("dispatch_single", "Dispatch, one call per job", "jobs/s", True),
    Metric("dispatch_bulk", "Dispatch, bulk API (1,000 per call)", "jobs/s", True),
    Metric("drain_default", "Drain, default concurrency, worker start to N-th job", "jobs/s", True),
    Metric("drain_default_steady", "Drain, default concurrency, first to last job", "jobs/s", True),
    Metric("drain_one", "Drain one job at a time, worker start to N-th job", "jobs/s", True),
    Metric("drain_one_steady", "Drain one job at a time, first to last job", "jobs/s", True),
    Metric("latency_p50", "Idle latency, dispatch to start, p50", "ms", False),
    Metric("latency_p99", "Idle latency, dispatch to start, p99", "ms", False),
    Metric("io", "10 ms I/O-bound jobs at default concurrency, start to N-th", "jobs/s", True),
    Metric("rss_idle", "RSS of an idle worker, all its processes", "MB", False, 1 / MB),
    Metric("rss_after", "RSS after draining N jobs, all its processes", "MB", False, 1 / MB),
)


def summarize(reps: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Median, min and max of each metric over the repetitions that measured it."""
    out: dict[str, dict[str, float]] = {}
    for metric in METRICS:
        values = [r[metric.key] * metric.scale for r in reps if metric.key in r]
        if values:
            out[metric.key] = {
                "median": statistics.median(values), "min": min(values), "max": max(values),
                "n": len(values),
            }  # fmt: skip
    return out


def reference(label: str, backend: str, summaries: dict[str, Any]) -> str | None:
    """The Conveyor row a library is compared with: same backend if measured, else SQLite."""
    if label.startswith("conveyor "):
        return None
    for candidate in (f"conveyor ({backend})", "conveyor (sqlite)"):
        if candidate in summaries and candidate != label:
            return candidate
    return None


def advantage(metric: Metric, conveyor: float, other: float) -> float | None:
    """How many times better Conveyor is than ``other`` (above 1: Conveyor wins)."""
    if conveyor <= 0 or other <= 0:
        return None
    return conveyor / other if metric.higher_is_better else other / conveyor


def _load(values: list[float] | None) -> str:
    return " / ".join(f"{v:.2f}" for v in values) if values else "?"


def _fmt(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def metric_table(metric: Metric, summaries: dict[str, Any], backends: dict[str, str]) -> str:
    rows = [(label, s[metric.key]) for label, s in summaries.items() if metric.key in s]
    if not rows:
        return ""
    rows.sort(key=lambda r: r[1]["median"], reverse=metric.higher_is_better)
    lines = [
        f"### {metric.title} ({metric.unit}, {'higher' if metric.higher_is_better else 'lower'}"
        " is better)",
        "",
        "| library (backend) | median | min - max | vs Conveyor |",
        "| --- | ---: | ---: | ---: |",
    ]
    for label, s in rows:
        ref = reference(label, backends[label], summaries)
        ratio = "—"
        if ref and metric.key in summaries[ref]:
            adv = advantage(metric, summaries[ref][metric.key]["median"], s["median"])
            ratio = f"{adv:.2f} vs {ref.split()[1].strip('()')}" if adv else "—"
        spread = f"{_fmt(s['min'])} - {_fmt(s['max'])}"
        lines.append(f"| {label} | {_fmt(s['median'])} | {spread} | {ratio} |")
    return "\n".join(lines) + "\n"


def overview(summaries: dict[str, Any]) -> str:
    keys = ("dispatch_single", "dispatch_bulk", "drain_default", "drain_one", "latency_p50",
            "latency_p99", "io", "rss_idle", "rss_after")  # fmt: skip
    heads = ("dispatch /s", "bulk /s", "drain /s", "drain 1-at-a-time /s", "p50 ms", "p99 ms",
             "10 ms I/O /s", "RSS idle MB", "RSS after MB")  # fmt: skip
    lines = [
        "| library (backend) | " + " | ".join(heads) + " |",
        "| --- |" + " ---: |" * len(heads),
    ]
    for label, s in summaries.items():
        cells = [_fmt(s[k]["median"]) if k in s else "—" for k in keys]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def markdown(results: dict[str, Any]) -> str:
    summaries = {label: t["summary"] for label, t in results["targets"].items()}
    backends = {label: t["backend"] for label, t in results["targets"].items()}
    cfg, machine = results["config"], results["machine"]
    parts = [
        f"# Benchmark run {results['started']}",
        "",
        f"Machine: {machine['cpu']}, {machine['cores']} cores, load average (1, 5, 15 min) at "
        f"start {_load(machine['load_start'])}, at end {_load(machine.get('load_end'))}; Python "
        f"{machine['python']}; servers: {', '.join(machine['servers'].values())}.",
        f"N = {cfg['n']:,} no-op jobs ({cfg['n_io']:,} for I/O), {cfg['reps']} repetition(s), "
        f"latency over {cfg['latency_samples']} jobs {cfg['latency_pace'] * 1000:g} ms apart. "
        "Median of the repetitions, min - max beside it.",
        "",
        "**vs Conveyor**: how many times better Conveyor (on the backend named) is than that row; "
        "above 1 Conveyor wins, below 1 the other library wins. Compared on the same backend "
        "when Conveyor ran there, else with Conveyor on SQLite.",
        "",
        "## Overview (medians)",
        "",
        overview(summaries),
    ]
    for metric in METRICS:
        table = metric_table(metric, summaries, backends)
        if table:
            parts += [table]
    parts += _notes(results)
    return "\n".join(parts)


def _notes(results: dict[str, Any]) -> list[str]:
    lines = ["## Libraries", "", "| library (backend) | versions | default concurrency |",
             "| --- | --- | --- |"]  # fmt: skip
    for label, t in results["targets"].items():
        versions = ", ".join(f"{k} {v}" for k, v in t["info"].get("versions", {}).items())
        lines.append(f"| {label} | {versions} | {t['info'].get('default_concurrency', '')} |")
    errors = [
        f"- {label}, repetition {i + 1}: {scenario}: {message}"
        for label, t in results["targets"].items()
        for i, rep in enumerate(t["reps"])
        for scenario, message in rep.get("errors", {}).items()
    ]
    capped = [
        f"- {label}: N capped at {t['info']['max_n']:,} (its drain is bound per job; the rate"
        " does not depend on N, only the run time does)"
        for label, t in results["targets"].items()
        if t["info"].get("max_n") and t["info"]["max_n"] < results["config"]["n"]
    ]
    if capped:
        lines += ["", "## Smaller N", "", *capped]
    skipped = [f"- {what}: {why}" for what, why in results["skipped"].items()]
    if errors:
        lines += ["", "## Scenarios that failed or were not run", "", *errors]
    amendments = [f"- {note}" for note in results.get("amendments", [])]
    if amendments:
        lines += ["", "## Amendments to this run", "", *amendments]
    if skipped:
        lines += ["", "## Not measured", "", *skipped]
    return [*lines, ""]
