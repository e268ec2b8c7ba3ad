"""Wall time per stage of a run, and the status line announcing each stage."""
from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger(__name__)


@dataclass
class StageClock:
    """Wall time per stage, in the order the stages ran."""

    seconds: dict[str, float] = field(default_factory=dict)
    announce: Callable[[str], None] | None = None   # told when a stage starts (a status line on stderr)
    started: float = field(default_factory=time.monotonic)  # the run's start: make the clock first

    def timed(self, name: str) -> _Timer:
        return _Timer(self, name)

    def with_total(self) -> dict[str, float]:
        """Each stage's seconds so far, and "total": the seconds since the clock was made."""
        return {**self.seconds, "total": time.monotonic() - self.started}


class _Timer:
    def __init__(self, clock: StageClock, name: str) -> None:
        self.clock, self.name = clock, name

    def __enter__(self) -> None:
        log.info("stage %s", self.name)  # a line in the logs, with or without a terminal
        if self.clock.announce is not None:
            self.clock.announce(self.name)
        self.start = time.monotonic()

    def __exit__(self, *exc: object) -> None:
        self.clock.seconds[self.name] = self.clock.seconds.get(self.name, 0.0) + time.monotonic() - self.start


def stage_announcer(enabled: bool) -> Callable[[str], None] | None:
    """A callback printing `reusescan: <stage> ...` to stderr as each stage starts (None when quiet)."""
    if not enabled:
        return None

    def announce(stage: str) -> None:
        print(f"reusescan: {stage} ...", file=sys.stderr, flush=True)

    return announce
