"""Chains and batches: Laravel's Bus for Conveyor.

``chain([...])`` runs jobs one after another; ``batch([...])`` fans jobs out and fires
``then`` / ``catch`` / ``finally`` callbacks exactly once; ``find_batch(id)`` reads a batch from
anywhere. See docs/chains-and-batches.md.
"""

from .batch import Batch, PendingBatch, batch, find_batch
from .callbacks import JobFailure, RunCallback, StartBatch
from .chain import PendingChain, chain

__all__ = [
    "Batch",
    "JobFailure",
    "PendingBatch",
    "PendingChain",
    "RunCallback",
    "StartBatch",
    "batch",
    "chain",
    "find_batch",
]
