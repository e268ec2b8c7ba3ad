"""Starting or joining Ray for a command, and shutting it down afterwards."""
from __future__ import annotations

import contextlib
import importlib
import json
import logging
import os
import threading
from collections.abc import Iterator
from typing import Any

import ray
import ray.data

logger = logging.getLogger(__name__)

# The project's packages, shipped to a joined cluster's workers (see `code_runtime_env`).
CODE_PACKAGES = ("jobs", "scanner", "embedder", "index", "training")
SHIP_CODE_ENV = "REUSESCAN_SHIP_CODE"  # "0": workers import their own installed reusescan instead


def code_runtime_env() -> dict[str, Any] | None:
    """A Ray runtime env carrying this process's copy of the project's packages (`py_modules`), or None.

    Workers of a cluster joined with `--address` run on other machines: without it they would
    import whatever reusescan their node has installed (another version, or none), or find the
    driver's files only because Ray puts the driver's working directory on their `sys.path`, which
    holds only when that directory exists on their node. Ray uploads the packages once per job (the
    shipped checkpoint in `embedder/weights` included, about 13 MB) and caches them per node. Not
    added when the job was submitted with its own `py_modules` (merging would conflict) or when
    REUSESCAN_SHIP_CODE=0 (nodes that install reusescan themselves).
    """
    if os.environ.get(SHIP_CODE_ENV, "1") == "0":
        return None
    from ray._private.runtime_env.constants import RAY_JOB_CONFIG_JSON_ENV_VAR

    submitted = json.loads(os.environ.get(RAY_JOB_CONFIG_JSON_ENV_VAR, "{}") or "{}")
    if (submitted.get("runtime_env") or {}).get("py_modules"):
        return None
    modules = [importlib.import_module(name) for name in CODE_PACKAGES]
    return {"py_modules": modules, "excludes": ["__pycache__", "*.pyc"]}


_stopping: threading.Thread | None = None  # a `ray.shutdown` still running in the background (`ray_session`)


def _wait_for_stop() -> None:
    """Return once a background `ray.shutdown` of an earlier session has finished."""
    global _stopping
    if _stopping is not None:
        _stopping.join()
        _stopping = None


def _shutdown_logged() -> None:
    """`ray.shutdown` in the background thread: an error is logged (nobody is there to catch it)."""
    try:
        ray.shutdown()
    except Exception:
        logger.exception("stopping Ray failed")


def _stop(*, in_background: bool) -> None:
    """`ray.shutdown`, or start it in a (non-daemon) thread that `_wait_for_stop` joins."""
    global _stopping
    if in_background:
        _stopping = threading.Thread(target=_shutdown_logged, name="ray-shutdown")
        _stopping.start()
    else:
        ray.shutdown()


@contextlib.contextmanager
def ray_session(address: str | None = None, *, num_cpus: int | None = None, progress: bool = True,
                stop_in_background: bool = False) -> Iterator[None]:
    """Run the body with Ray initialised.

    `address=None` starts a local Ray instance inside this process (the embedded
    default); `"auto"`, `"HOST:6379"` or `"ray://HOST:10001"` joins an existing cluster,
    shipping this process's code to its workers (`code_runtime_env`). A Ray
    that is already initialised (a test, a notebook) is used as it is and left
    running.

    `stop_in_background`: leaving the block starts `ray.shutdown` in a thread and returns at once,
    for a caller whose remaining work needs no Ray (a scan writing its report): the shutdown,
    ~1.4 s of waiting for Ray's processes to exit, then overlaps that work. The thread is not a
    daemon, so Python waits for it before exiting; the next session waits for it before starting.
    """
    _wait_for_stop()
    already = ray.is_initialized()
    if not already:
        kwargs: dict[str, object] = {"include_dashboard": False, "log_to_driver": False,
                                     "configure_logging": True, "logging_level": logging.WARNING}
        if address:
            kwargs["address"] = address
            runtime_env = code_runtime_env()
            if runtime_env is not None:
                kwargs["runtime_env"] = runtime_env
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
            _stop(in_background=stop_in_background)
