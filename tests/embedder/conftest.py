from __future__ import annotations

# Small models on a shared 2-core machine run faster (and steadier) on one thread:
# the same autouse fixture as the training tests.
from tests.training.conftest import _one_thread  # noqa: F401
