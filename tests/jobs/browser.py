"""Find (or install) a headless Chromium for the real-browser report tests.

The report tests must run in a real browser, so on a Debian machine where
Chromium is missing and we are root, install Debian's `chromium` package with
apt-get. Anywhere installation is impossible the caller gets a clear reason to
skip with instead of a silent pass.
"""
from __future__ import annotations

import logging
import os
import shutil
import subprocess
from pathlib import Path

from jobs.case_export import find_chromium

log = logging.getLogger(__name__)

# Flags that keep a headless run offline, quiet and deterministic.
HEADLESS_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
)


def ensure_chromium(timeout: float = 900.0) -> tuple[str | None, str]:
    """Return `(path, "")` for a usable Chromium, installing Debian's package if needed.

    When nothing can be found or installed returns `(None, reason)`.
    """
    found = find_chromium()
    if found:
        return found, ""
    if not shutil.which("apt-get"):
        return None, "chromium is not installed and apt-get is not available to install it"
    if hasattr(os, "geteuid") and os.geteuid() != 0:
        return None, "chromium is not installed and we are not root (run: apt-get install -y chromium)"
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for cmd in (["apt-get", "update"], ["apt-get", "install", "-y", "--no-install-recommends", "chromium"]):
        log.info("running %s", " ".join(cmd))
        try:
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return None, f"could not install chromium: {' '.join(cmd)}: {exc}"
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout)[-500:]
            return None, f"could not install chromium: {' '.join(cmd)} exited {proc.returncode}: {tail}"
    found = find_chromium()
    if not found:
        return None, "apt-get install chromium succeeded but no chromium binary is on PATH"
    return found, ""


def run_chromium(binary: str, url: str, profile_dir: Path, *extra: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    """Run headless Chromium on `url` with a private profile and the offline flags."""
    cmd = [binary, *HEADLESS_FLAGS, f"--user-data-dir={profile_dir}", *extra, url]
    log.info("running %s", " ".join(cmd))
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


if __name__ == "__main__":  # `python tests/jobs/browser.py` installs chromium ahead of the tests
    logging.basicConfig(level=logging.INFO)
    path, why = ensure_chromium()
    print(path or f"unavailable: {why}")
