"""A hand-written SVG chart of drain throughput and idle latency per library (no plotting deps)."""

from __future__ import annotations

import math
from html import escape
from typing import Any

ROW, LABEL_W, BAR_W, PAD = 28, 190, 330, 14
COLORS = {"a": "#2f6fb3", "b": "#9cc3e6", "conveyor": "#d9822b", "conveyor_b": "#f3c089"}


def _panel(
    rows: list[tuple[str, float | None, float | None]], title: str, legend: tuple[str, str],
    unit: str, log: bool, y0: float, x0: float,
) -> tuple[list[str], float]:  # fmt: skip
    values = [v for _, a, b in rows for v in (a, b) if v]
    top = max(values) if values else 1.0
    low = min(values) if values else 1.0

    def width(v: float) -> float:
        if not log:
            return BAR_W * v / top
        lo, hi = math.log10(low / 2), math.log10(top * 1.2)
        return BAR_W * (math.log10(v) - lo) / (hi - lo) if hi > lo else BAR_W

    out = [f'<text x="{x0}" y="{y0 + 14}" class="t">{escape(title)}</text>']
    out.append(
        f'<rect x="{x0}" y="{y0 + 22}" width="10" height="10" fill="{COLORS["a"]}"/>'
        f'<text x="{x0 + 14}" y="{y0 + 31}" class="s">{escape(legend[0])}</text>'
        f'<rect x="{x0 + 150}" y="{y0 + 22}" width="10" height="10" fill="{COLORS["b"]}"/>'
        f'<text x="{x0 + 164}" y="{y0 + 31}" class="s">{escape(legend[1])}</text>'
    )
    y = y0 + 44
    for label, a, b in rows:
        mine = label.startswith("conveyor")
        out.append(f'<text x="{x0 + LABEL_W - 6}" y="{y + 14}" class="l">{escape(label)}</text>')
        for i, (value, key) in enumerate(((a, "a"), (b, "b"))):
            color = COLORS[("conveyor" if key == "a" else "conveyor_b") if mine else key]
            by = y + i * 11
            if value:
                w = max(width(value), 1.0)
                out.append(
                    f'<rect x="{x0 + LABEL_W}" y="{by}" width="{w:.1f}" height="8" fill="{color}"/>'
                    f'<text x="{x0 + LABEL_W + w + 4:.1f}" y="{by + 8}" class="v">'
                    f"{value:,.{0 if value >= 100 else 1 if value >= 10 else 2}f}</text>"
                )
        y += ROW
    out.append(f'<text x="{x0 + LABEL_W}" y="{y + 10}" class="s">{escape(unit)}</text>')
    return out, y + 20


def render(summaries: dict[str, dict[str, Any]], subtitle: str) -> str:
    def med(s: dict[str, Any], key: str) -> float | None:
        return s[key]["median"] if key in s else None

    drain = [(k, med(s, "drain_default"), med(s, "drain_one")) for k, s in summaries.items()]
    drain.sort(key=lambda r: -(r[1] or 0))
    lat = [(k, med(s, "latency_p50"), med(s, "latency_p99")) for k, s in summaries.items()]
    lat = [r for r in lat if r[1]]
    lat.sort(key=lambda r: r[1] or 0)
    legend = ("default concurrency", "one at a time")
    title = "Drain: no-op jobs/s (higher is better)"
    left, end_left = _panel(drain, title, legend, "jobs/s", False, 40, PAD)
    title = "Idle latency, dispatch to start (lower is better)"
    x0 = PAD + LABEL_W + BAR_W + 90
    right, end_right = _panel(lat, title, ("p50", "p99"), "ms, log scale", True, 40, x0)
    width = 2 * (LABEL_W + BAR_W + 90) + PAD
    height = max(end_left, end_right) + PAD
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height:.0f}" '
        f'viewBox="0 0 {width} {height:.0f}" font-family="Helvetica, Arial, sans-serif">'
        "<style>.t{font-size:14px;font-weight:bold}.s{font-size:11px;fill:#444}"
        ".l{font-size:12px;text-anchor:end}.v{font-size:10px;fill:#333}</style>"
        f'<rect width="100%" height="100%" fill="white"/>'
        f'<text x="{PAD}" y="22" class="s">{escape(subtitle)}</text>'
    )
    return head + "".join(left + right) + "</svg>\n"
