"""Freed memory given back to the system, so a stage's peak does not stay resident under the next ones."""
from __future__ import annotations

import ctypes

import pyarrow as pa


def release_freed_memory() -> None:
    """Give back the unused pages of Arrow's memory pool and the C heap's free pages (glibc's `malloc_trim`).

    Arrow's allocator keeps the pages of freed buffers (a store read of 2,048 panels' grey images
    left ~140 MB resident), and the C heap those of freed small allocations (a descriptor index's
    inverted lists: ~100 MB at 1,000 papers), until asked.
    """
    pa.default_memory_pool().release_unused()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass
