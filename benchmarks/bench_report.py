"""How big report.html is and how fast Chromium opens it at thousands of pairs, inline vs deferred pictures.

Fabricates `--pairs` scored pairs with small pictures (`tests.jobs.large_report`), writes
the page twice: as report.html writes it (from `DEFER_FROM_CARDS` cards on, each
distinct picture once, filled in near the viewport) and the way it was written before
(every picture inline in every card, `_ImageCache`), then opens each in headless
Chromium over the DevTools pipe and times: the load event with the first three cards'
pictures shown (`open_s`), and every picture decoded (`all_images_s`).

    .venv/bin/python benchmarks/bench_report.py --pairs 3000 --repeats 3

Prints one JSON object (medians).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from jobs.report import atomic_write_bytes  # noqa: E402
from jobs.report_html import _ImageCache, render_report_html  # noqa: E402
from tests.jobs.browser import find_chromium  # noqa: E402
from tests.jobs.cdp import Browser  # noqa: E402
from tests.jobs.large_report import large_pairs  # noqa: E402

FIRST_CARDS = ("Array.from(document.querySelectorAll('article.card')).slice(0, 3).every(c => "
               "Array.from(c.querySelectorAll('img')).every(i => i.complete && i.naturalWidth > 0))")
ALL_IMAGES = ("Array.from(document.images).every(i => i.complete && i.naturalWidth > 0) && "
              "!document.querySelector('img[data-img]')")


def time_page(chromium: str, page: Path, profile: Path) -> dict[str, float]:
    """Seconds to the load event with the first cards drawn, and to every picture decoded."""
    browser = Browser(chromium, profile)
    try:
        started = time.monotonic()
        browser.open(page.as_uri())
        browser.wait_for(FIRST_CARDS, timeout=600)
        opened = time.monotonic() - started
        browser.wait_for(ALL_IMAGES, timeout=600)
        return {"open_s": opened, "all_images_s": time.monotonic() - started}
    finally:
        browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=3000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    chromium = find_chromium()
    root = Path(tempfile.mkdtemp(prefix="bench-report-"))
    t = time.perf_counter()
    pairs = large_pairs(args.pairs)
    out: dict[str, Any] = {"pairs": args.pairs, "fabricate_s": round(time.perf_counter() - t, 1)}
    variants = {
        "deferred": lambda: render_report_html(pairs, max_pairs=None),
        "inline": lambda: render_report_html(pairs, max_pairs=None, images=_ImageCache()),
    }
    for name, render in variants.items():
        t = time.perf_counter()
        page = atomic_write_bytes(root / f"{name}.html", render().encode("utf-8"))
        row: dict[str, Any] = {"write_s": round(time.perf_counter() - t, 1), "mb": round(page.stat().st_size / 1e6, 1)}
        if chromium:
            runs = [time_page(chromium, page, root / f"profile-{name}-{r}") for r in range(args.repeats)]
            for key in ("open_s", "all_images_s"):
                row[key] = round(statistics.median(r[key] for r in runs), 2)
                row[f"{key}_runs"] = [round(r[key], 2) for r in runs]
        out[name] = row
    out["load_average"] = os.getloadavg()[0]
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
