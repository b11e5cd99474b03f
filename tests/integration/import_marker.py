"""Leaves a file behind when imported: a worker must never import it on a payload's say-so."""

from pathlib import Path

Path("imported-marker").write_text("imported\n")
