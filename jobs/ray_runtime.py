"""Starting or joining Ray for a command, and shutting it down afterwards."""
from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator

import ray
import ray.data

logger = logging.getLogger(__name__)


@contextlib.contextmanager
def ray_session(address: str | None = None, *, num_cpus: int | None = None, progress: bool = True) -> Iterator[None]:
    """Run the body with Ray initialised.

    `address=None` starts a local Ray instance inside this process (the embedded
    default); `"auto"` or `"ray://HOST:10001"` joins an existing cluster. A Ray
    that is already initialised (a test, a notebook) is used as it is and left
    running.
    """
    already = ray.is_initialized()
    if not already:
        kwargs: dict[str, object] = {"include_dashboard": False, "log_to_driver": False,
                                     "configure_logging": True, "logging_level": logging.WARNING}
        if address:
            kwargs["address"] = address
        else:
            kwargs["num_cpus"] = num_cpus or os.cpu_count() or 1
        logger.info("starting Ray (%s)", address or f"local, {kwargs.get('num_cpus')} CPUs")
        ray.init(**kwargs)  # type: ignore[arg-type]
    # Ray Data logs every execution plan at INFO; show that only with -v.
    if logging.getLogger().getEffectiveLevel() > logging.INFO:
        logging.getLogger("ray.data").setLevel(logging.WARNING)
        logging.getLogger("ray").setLevel(logging.WARNING)
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = progress
    ctx.verbose_progress = False
    try:
        yield
    finally:
        if not already:
            ray.shutdown()
