"""rescore_pixel_check's --align: the shipped search ranges changed as asked, a misspelt setting named."""
from __future__ import annotations

from types import ModuleType

import pytest

from embedder.verify import AlignConfig
from tests.benchmarks import BENCHMARKS, load_benchmark


@pytest.fixture
def rescore(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.syspath_prepend(str(BENCHMARKS))  # it imports bench_pixel_check, as a script beside it does
    return load_benchmark("rescore_pixel_check")


def test_the_search_is_changed_as_asked(rescore: ModuleType) -> None:
    shipped = AlignConfig()
    changed = rescore.changed_search(shipped, ["refine_top=2", "screen=0.7", "aspects=[1.0]"])
    assert (changed.refine_top, changed.screen, changed.aspects) == (2, 0.7, (1.0,))
    assert changed.scales == shipped.scales and changed.angles == shipped.angles  # the rest as shipped


def test_a_setting_the_search_lacks_is_named(rescore: ModuleType) -> None:
    with pytest.raises(SystemExit, match="no setting 'refine'"):
        rescore.changed_search(AlignConfig(), ["refine=2"])
