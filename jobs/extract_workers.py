"""What runs inside the extraction pool's worker processes (`jobs.extract_run`).

Kept apart and light on purpose: a worker unpickles these functions by importing
this module (and with it `jobs`, which keeps PyMuPDF's layout add-on unloaded: see `scanner`).
"""
from __future__ import annotations

import resource
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from scanner.extract import DocumentResult, ExtractLimits


def extract_guarded(path: Path, root: Path, limits: ExtractLimits, hard_cpu_s: float | None) -> DocumentResult:
    """`extract_document` in a pool worker, with a hard CPU-time limit as a last resort.

    The per-document timeout (SIGALRM) only fires when control is back in Python; a
    MuPDF call that spins in C is stopped by RLIMIT_CPU instead: the kernel kills the
    worker, the pool notices, and the document is reported as a crashed worker.
    """
    # Imported here, in the worker: scanner.extract imports PyMuPDF, which the parent need not load.
    from scanner.extract import extract_document

    if hard_cpu_s is None:
        return extract_document(path, root, limits)
    soft, hard = resource.getrlimit(resource.RLIMIT_CPU)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    budget = int(usage.ru_utime + usage.ru_stime + max(1.0, hard_cpu_s)) + 1
    if hard != resource.RLIM_INFINITY:
        budget = min(budget, hard)
    resource.setrlimit(resource.RLIMIT_CPU, (budget, hard))
    try:
        return extract_document(path, root, limits)
    finally:
        resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))
