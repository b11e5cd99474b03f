"""Reading the rich tables the commands print, by cell, so tests do not depend on widths."""

from __future__ import annotations


def rows(output: str) -> list[list[str]]:
    """Cells of every table row in ``output`` (box-drawn lines starting with a bar)."""
    found = []
    for line in output.splitlines():
        line = line.strip()
        if line.startswith("│") and line.endswith("│"):
            found.append([cell.strip() for cell in line.strip("│").split("│")])
    return found


def row(output: str, first_cell: str) -> list[str]:
    matches = [r for r in rows(output) if r and r[0] == first_cell]
    assert len(matches) == 1, f"expected one row for {first_cell!r} in:\n{output}"
    return matches[0]
