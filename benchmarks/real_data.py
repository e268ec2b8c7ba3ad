"""Get the real material reusescan is developed against (needs internet; never run by tests or demos).

    python benchmarks/real_data.py OUT            # git clone --depth 1 + pip download, then copy
    python benchmarks/real_data.py OUT --bare NAME=GITDIR ...   # read from local bare git mirrors

Writes, idempotently (existing files are kept):
- OUT/pdfs/PMCxxxx.pdf       open-access Hindawi case reports (CC BY) from ContentMine/ami
- OUT/images/cellprofiler/…  CellProfiler/examples images (BSD-3), as 8-bit PNG
- OUT/images/neubias/…       NEUBIAS/training-resources image_data/ (CC BY 4.0), as 8-bit PNG
- OUT/images/stardist/…      the sample images of the stardist wheel (BSD-3), as 8-bit PNG
- OUT/manifest.csv           one line per file: source, repository path, licence, destination

Stacks (more than `MAX_FRAMES` frames or z-slices), label masks, tiny images and files
over `MAX_BYTES` are skipped; large images are downscaled to at most `MAX_SIDE` px.
The selection functions (`select_*`) are pure and tested; the rest is plumbing.
"""
from __future__ import annotations

import argparse
import csv
import io
import re
import subprocess
import sys
import zipfile
from collections import defaultdict
from collections.abc import Callable, Iterable
from pathlib import Path, PurePosixPath
from typing import NamedTuple

REPOS = {
    "ami": "https://github.com/ContentMine/ami.git",
    "cellprofiler": "https://github.com/CellProfiler/examples.git",
    "neubias": "https://github.com/NEUBIAS/training-resources.git",
}
LICENCES = {
    "ami": "CC BY (open-access Hindawi articles, via Europe PMC)",
    "cellprofiler": "BSD-3-Clause (CellProfiler/examples LICENSE)",
    "neubias": "CC BY 4.0 (NEUBIAS/training-resources LICENSE.md)",
    "stardist": "BSD-3-Clause (stardist wheel, stardist/data/images)",
}
IMAGE_EXT = (".tif", ".tiff", ".png", ".jpg", ".jpeg", ".bmp")
MAX_BYTES = 25_000_000
MAX_FRAMES = 4
MAX_SIDE = 2048
MIN_SIDE = 64
PER_FOLDER = 12
HINDAWI = re.compile(r"^src/test/resources/org/xmlcml/ami2/hindawiepmc/(PMC\d+)/fulltext\.pdf$")
MASK_NAME = re.compile(r"(^|[_\-. ])(mask|masks|label|labels|labeled|labelled|seg|segmentation|gt|annotation)s?([_\-. ]|$)", re.I)


class Pick(NamedTuple):
    source: str   # ami / cellprofiler / neubias / stardist
    path: str     # path in the repository (or the wheel)
    dest: str     # path relative to OUT


def select_hindawi(paths: Iterable[str]) -> list[Pick]:
    """`…/hindawiepmc/PMCnnn/fulltext.pdf` -> `pdfs/PMCnnn.pdf`, sorted."""
    out = []
    for p in paths:
        m = HINDAWI.match(p)
        if m:
            out.append(Pick("ami", p, f"pdfs/{m.group(1)}.pdf"))
    return sorted(out, key=lambda k: k.dest)


def _png_dest(source: str, path: str, strip: str = "") -> str:
    rel = PurePosixPath(path[len(strip):] if strip and path.startswith(strip) else path)
    return str(PurePosixPath("images", source, rel.with_suffix(".png")))


def _images(paths_sizes: Iterable[tuple[str, int]], keep: Callable[[str], bool]) -> list[tuple[str, int]]:
    return sorted(
        (p, s) for p, s in paths_sizes
        if p.lower().endswith(IMAGE_EXT) and 0 < s <= MAX_BYTES and keep(p) and not MASK_NAME.search(PurePosixPath(p).stem)
    )


def _cap_per_folder(items: list[tuple[str, int]], cap: int) -> list[str]:
    seen: dict[str, int] = defaultdict(int)
    out = []
    for p, _ in items:
        folder = str(PurePosixPath(p).parent)
        if seen[folder] < cap:
            seen[folder] += 1
            out.append(p)
    return out


def select_cellprofiler(paths_sizes: Iterable[tuple[str, int]], per_folder: int = PER_FOLDER) -> list[Pick]:
    """Images under an example's `images/` folder, at most `per_folder` per folder, not masks."""
    items = _images(paths_sizes, lambda p: "/images/" in f"/{p}")
    return [Pick("cellprofiler", p, _png_dest("cellprofiler", p)) for p in _cap_per_folder(items, per_folder)]


def select_neubias(paths_sizes: Iterable[tuple[str, int]], per_folder: int = 1000) -> list[Pick]:
    """Images directly under `image_data/` (any depth), not masks/labels."""
    items = _images(paths_sizes, lambda p: p.startswith("image_data/"))
    return [Pick("neubias", p, _png_dest("neubias", p, "image_data/")) for p in _cap_per_folder(items, per_folder)]


def select_stardist(names: Iterable[str]) -> list[Pick]:
    """The 2-D sample images of the wheel (`histo.jpg`, `img2d.tif`); masks and 3-D stacks skipped."""
    keep = {"histo.jpg", "img2d.tif"}
    return sorted(
        (Pick("stardist", n, _png_dest("stardist", n, "stardist/data/images/")) for n in names
         if n.startswith("stardist/data/images/") and PurePosixPath(n).name in keep),
        key=lambda k: k.dest,
    )


# ------------------------------------------------------------------ conversion


def to_png8(data: bytes, name: str) -> bytes | None:
    """8-bit RGB/gray PNG of one 2-D image (first plane of up to MAX_FRAMES); None when not usable."""
    import numpy as np
    from PIL import Image

    arr = None
    if name.lower().endswith((".tif", ".tiff")):
        try:
            import tifffile

            arr = tifffile.imread(io.BytesIO(data))
        except Exception:
            arr = None
    if arr is None:
        try:
            with Image.open(io.BytesIO(data)) as im:
                if getattr(im, "n_frames", 1) > MAX_FRAMES:
                    return None
                im.seek(0)
                arr = np.asarray(im.convert("RGB") if im.mode in ("P", "CMYK", "LA", "PA", "1") else im)
        except Exception:
            return None
    arr = np.squeeze(np.asarray(arr))
    if arr.ndim == 3 and arr.shape[-1] not in (3, 4) and arr.shape[0] <= MAX_FRAMES:
        arr = np.moveaxis(arr, 0, -1) if arr.shape[0] in (2, 3, 4) else arr[0]
    if arr.ndim == 3 and arr.shape[-1] == 2:
        arr = np.concatenate([arr, np.zeros_like(arr[..., :1])], axis=-1)
    if arr.ndim == 3 and arr.shape[-1] == 4:
        arr = arr[..., :3]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[-1] != 3):
        return None  # a stack
    if min(arr.shape[:2]) < MIN_SIDE:
        return None
    if arr.dtype != np.uint8:
        a = arr.astype(np.float64)
        lo, hi = np.percentile(a, 0.5), np.percentile(a, 99.5)
        if hi <= lo:
            return None
        arr = (np.clip((a - lo) / (hi - lo), 0, 1) * 255).round().astype(np.uint8)
    if int(arr.max()) == int(arr.min()):
        return None
    img = Image.fromarray(arr)
    if max(img.size) > MAX_SIDE:
        s = MAX_SIDE / max(img.size)
        img = img.resize((max(1, round(img.width * s)), max(1, round(img.height * s))), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=False)
    return buf.getvalue()


# ------------------------------------------------------------------ sources


class Repo:
    """A git repository, read through `git ls-tree` / `git show` (works for bare mirrors and clones)."""

    def __init__(self, git_dir: Path) -> None:
        self.git_dir = git_dir

    def _git(self, *args: str) -> bytes:
        return subprocess.run(["git", f"--git-dir={self.git_dir}", *args], check=True, capture_output=True).stdout

    def files(self) -> list[tuple[str, int]]:
        out = []
        for line in self._git("ls-tree", "-r", "-l", "HEAD").decode().splitlines():
            meta, path = line.split("\t", 1)
            size = meta.split()[-1]
            out.append((path, int(size) if size.isdigit() else 0))
        return out

    def read(self, path: str) -> bytes | None:
        try:
            return self._git("show", f"HEAD:{path}")
        except subprocess.CalledProcessError:
            return None  # blob absent (e.g. a partial mirror)


def clone(name: str, work: Path) -> Path:
    dest = work / name
    if not dest.exists():
        subprocess.run(["git", "clone", "--depth", "1", REPOS[name], str(dest)], check=True)
    return dest / ".git"


def stardist_wheel(work: Path) -> Path:
    wheels = sorted(work.glob("stardist-*.whl"))
    if not wheels:
        subprocess.run([sys.executable, "-m", "pip", "download", "stardist", "--no-deps", "-d", str(work)], check=True)
        wheels = sorted(work.glob("stardist-*.whl"))
    return wheels[-1]


def materialise(out: Path, picks: list[Pick], read: Callable[[str], bytes | None], manifest: list[dict[str, str]]) -> None:
    for pk in picks:
        dest = out / pk.dest
        if not dest.exists():
            data = read(pk.path)
            if data is None:
                continue
            payload = data if pk.dest.endswith(".pdf") else to_png8(data, pk.path)
            if payload is None:
                continue
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(payload)
        manifest.append({"source": pk.source, "path": pk.path, "licence": LICENCES[pk.source], "dest": pk.dest})


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--work", type=Path, help="Where clones and the wheel go (default OUT/.work).")
    ap.add_argument("--bare", action="append", default=[], metavar="NAME=GITDIR", help="Use a local git dir for ami/cellprofiler/neubias.")
    ap.add_argument("--wheel", type=Path, help="A stardist wheel already downloaded.")
    args = ap.parse_args(argv)
    out: Path = args.out
    work: Path = args.work or out / ".work"
    work.mkdir(parents=True, exist_ok=True)
    bare = dict(b.split("=", 1) for b in args.bare)
    manifest: list[dict[str, str]] = []
    for name, select in (("ami", None), ("cellprofiler", select_cellprofiler), ("neubias", select_neubias)):
        repo = Repo(Path(bare[name]) if name in bare else clone(name, work))
        files = repo.files()
        picks = select_hindawi(p for p, _ in files) if select is None else select(files)
        materialise(out, picks, repo.read, manifest)
    wheel = args.wheel or stardist_wheel(work)
    with zipfile.ZipFile(wheel) as zf:
        materialise(out, select_stardist(zf.namelist()), zf.read, manifest)
    with open(out / "manifest.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["source", "path", "licence", "dest"])
        w.writeheader()
        w.writerows(manifest)
    counts: dict[str, int] = defaultdict(int)
    for m in manifest:
        counts[m["source"]] += 1
    print(dict(counts))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
