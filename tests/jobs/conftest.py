"""Fixtures shared by the tests of `jobs`."""
from __future__ import annotations

import pytest

from tests.jobs.browser import ensure_chromium


@pytest.fixture(scope="session")
def chromium() -> str:
    """Path of a headless Chromium (Debian's package, installed when missing and root); skip without one."""
    path, reason = ensure_chromium()
    if path is None:
        pytest.skip(reason)
    return path
