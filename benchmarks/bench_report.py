"""How big report.html is and how fast Chromium shows its first cards at thousands of pairs.

Fabricates `--pairs` scored pairs with small pictures (`tests.jobs.large_report`), writes
report.html as a scan does (from `DEFER_FROM_CARDS` cards on: the cards as data drawn
`PAGE_ITEMS` items a page, each distinct picture once, decoded only for the cards shown),
opens it in headless Chromium over the DevTools pipe and times: navigation to the first
three cards drawn with their pictures (`first_card_s`), to every picture of page 1 decoded
(`page_images_s`), and a click on "next" to page 2 with its pictures (`next_page_s`).
`--inline` also writes and opens the page the way it was written before paging existed
(every picture inline in every card, `_ImageCache`; 305 MB and minutes at 3,000 pairs).

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
from jobs.report_html import _ImageCache, report_html_chunks  # noqa: E402
from tests.jobs.browser import find_chromium  # noqa: E402
from tests.jobs.cdp import Browser  # noqa: E402
from tests.jobs.large_report import large_pairs  # noqa: E402

FIRST_CARDS = ("document.querySelectorAll('article.card').length > 0 && "
               "Array.from(document.querySelectorAll('article.card')).slice(0, 3).every(c => "
               "Array.from(c.querySelectorAll('img')).every(i => i.complete && i.naturalWidth > 0))")
ALL_IMAGES = ("document.images.length > 0 && Array.from(document.images).every(i => i.complete && i.naturalWidth > 0) && "
              "!document.querySelector('img[data-img]')")


def time_page(chromium: str, page: Path, profile: Path) -> dict[str, float]:
    """Seconds to the first cards drawn, to every picture shown decoded, and (a paged report) to page 2 drawn."""
    browser = Browser(chromium, profile)
    try:
        started = time.monotonic()
        browser.call("Page.navigate", url=page.as_uri())
        browser.wait_for(FIRST_CARDS, timeout=600)
        out = {"first_card_s": time.monotonic() - started}
        browser.wait_for(ALL_IMAGES, timeout=600)
        out["page_images_s"] = time.monotonic() - started
        if browser.evaluate("!!document.getElementById('nextpage')"):
            clicked = time.monotonic()
            browser.evaluate("document.getElementById('nextpage').click()")
            browser.wait_for("document.body.dataset.page === '2' && " + ALL_IMAGES, timeout=600)
            out["next_page_s"] = time.monotonic() - clicked
        return out
    finally:
        browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=3000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--inline", action="store_true", help="also the old way: every picture inline in every card")
    args = parser.parse_args()
    chromium = find_chromium()
    root = Path(tempfile.mkdtemp(prefix="bench-report-"))
    t = time.perf_counter()
    pairs = large_pairs(args.pairs)
    out: dict[str, Any] = {"pairs": args.pairs, "fabricate_s": round(time.perf_counter() - t, 1)}
    variants = {"paged": lambda: "".join(report_html_chunks(pairs, max_pairs=None))}
    if args.inline:
        variants["inline"] = lambda: "".join(report_html_chunks(pairs, max_pairs=None, images=_ImageCache()))
    for name, render in variants.items():
        t = time.perf_counter()
        page = atomic_write_bytes(root / f"{name}.html", render().encode("utf-8"))
        row: dict[str, Any] = {"write_s": round(time.perf_counter() - t, 1), "mb": round(page.stat().st_size / 1e6, 1)}
        if chromium:
            runs = [time_page(chromium, page, root / f"profile-{name}-{r}") for r in range(args.repeats)]
            for key in runs[0]:
                row[key] = round(statistics.median(r[key] for r in runs), 2)
                row[f"{key}_runs"] = [round(r[key], 2) for r in runs]
        out[name] = row
    out["load_average"] = os.getloadavg()[0]
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
