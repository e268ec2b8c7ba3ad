from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest

from tests.training.standin_alterations import install_if_missing


@pytest.fixture(autouse=True)
def _alterations() -> Iterator[None]:
    installed = install_if_missing()
    yield
    if installed:
        sys.modules.pop("training.alterations", None)


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """Tiny models on a shared 2-core machine run faster (and steadier) on one thread."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
