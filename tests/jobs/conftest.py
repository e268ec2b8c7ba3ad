"""Fixtures shared by the tests of `jobs`."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.jobs.browser import ensure_chromium
from tests.jobs.cdp import Browser


@pytest.fixture(scope="session")
def chromium() -> str:
    """Path of a headless Chromium (Debian's package, installed when missing and root); skip without one."""
    path, reason = ensure_chromium()
    if path is None:
        pytest.skip(reason)
    return path


@pytest.fixture()
def browser(chromium: str, tmp_path: Path) -> Iterator[Browser]:
    """A fresh headless Chromium with its own profile, closed after the test."""
    b = Browser(chromium, tmp_path / "profile")
    yield b
    b.close()


@pytest.fixture(scope="session")
def tiny_model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny-preset checkpoint with seeded random weights (exactly rotation/flip invariant), for wiring tests."""
    import torch

    from embedder.checkpoint import save_checkpoint
    from embedder.config import Preset
    from embedder.model import BTAModel

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("model") / "tiny.pt"
    save_checkpoint(path, BTAModel(Preset.TINY.config), {"note": "random init, for wiring tests"})
    return path
