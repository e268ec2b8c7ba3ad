"""The panel record: what the scanner emits and every later stage keys on.

This is a contract shared by `scanner`, `index` and `jobs`; change it on purpose.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pyarrow as pa

# Flags that keep a record out of matching by default (still stored and reported as noise).
FLAG_TINY = "tiny"                # icon, bullet: too few pixels or too small on the page
FLAG_UNIFORM = "uniform"          # near-constant image: blank, solid fill
FLAG_BOILERPLATE = "boilerplate"  # the same pixels on many pages / documents (publisher logo)
FLAG_CHART = "chart"              # a piece of a chart: a flat or gradient bar drawn as an image, a plot of a split figure
FLAG_TEXT = "text"                # a text/label piece of a split figure
NOISE_FLAGS = frozenset({FLAG_TINY, FLAG_UNIFORM, FLAG_BOILERPLATE, FLAG_CHART, FLAG_TEXT})
# Informational flags.
FLAG_COMPOUND = "compound"        # a figure that was split into panels (its panels point to it)


Bbox = tuple[float, float, float, float]


def format_bbox(bbox: Sequence[float]) -> str:
    """`"x0 y0 x1 y1"` with two decimals (PDF points): the bbox text of reports and truth files."""
    return " ".join(f"{float(v):.2f}" for v in bbox)


def parse_bbox(text: str) -> Bbox:
    """'x0 y0 x1 y1' -> tuple of floats (commas tolerated); ValueError unless exactly 4 numbers."""
    parts = str(text).replace(",", " ").split()
    if len(parts) != 4:
        raise ValueError(f"bbox must have 4 numbers, got {text!r}")
    x0, y0, x1, y1 = (float(p) for p in parts)
    return (x0, y0, x1, y1)


@dataclass(frozen=True)
class PanelRecord:
    """One panel (or whole figure) occurrence with its provenance.

    Coordinates are PDF points, top-left origin, as PyMuPDF reports page
    coordinates; for image files the bbox is the whole image in pixels taken as
    points (x0=y0=0, x1=width, y1=height) and `page` is 1 (or the frame number
    for multi-page TIFF).
    """

    figure_id: str          # stable across runs: derived from doc content hash, page, placement, panel
    doc: str                # path relative to the scanned root, POSIX separators
    doc_sha256: str         # content hash of the whole input file
    page: int               # 1-based
    x0: float
    y0: float
    x1: float
    y1: float
    width: int              # pixels of `image`
    height: int
    image: bytes            # lossless RGB pixels of the panel, PNG-encoded
    parent_id: str | None = None   # figure_id of the compound figure this panel was cut from
    flags: tuple[str, ...] = field(default_factory=tuple)

    @property
    def bbox(self) -> Bbox:
        return (self.x0, self.y0, self.x1, self.y1)

    @property
    def is_noise(self) -> bool:
        """True when the record is excluded from matching by default."""
        return bool(NOISE_FLAGS.intersection(self.flags))


FIGURES_SCHEMA = pa.schema(
    [
        ("figure_id", pa.string()),
        ("doc", pa.string()),
        ("doc_sha256", pa.string()),
        ("page", pa.int32()),
        ("x0", pa.float32()),
        ("y0", pa.float32()),
        ("x1", pa.float32()),
        ("y1", pa.float32()),
        ("width", pa.int32()),
        ("height", pa.int32()),
        ("image", pa.binary()),
        ("parent_id", pa.string()),
        ("flags", pa.list_(pa.string())),
    ]
)


def records_to_table(records: list[PanelRecord]) -> pa.Table:
    """Columnar form of `records` with `FIGURES_SCHEMA` (an empty table for no records)."""
    columns = {name: [getattr(r, name) for r in records] for name in FIGURES_SCHEMA.names}
    columns["flags"] = [list(r.flags) for r in records]
    return pa.Table.from_pydict(columns, schema=FIGURES_SCHEMA)


def table_to_records(table: pa.Table) -> list[PanelRecord]:
    """Inverse of `records_to_table`."""
    rows = table.select(FIGURES_SCHEMA.names).to_pylist()
    return [PanelRecord(**{**row, "flags": tuple(row["flags"] or ())}) for row in rows]
