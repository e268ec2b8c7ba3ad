"""The pure parts of benchmarks/real_data.py (path selection, conversion); never touches the network."""
from __future__ import annotations

import io

import numpy as np
from PIL import Image

from tests.benchmarks import load_benchmark

rd = load_benchmark("real_data")


def test_select_hindawi_takes_only_the_fulltext_pdfs() -> None:
    base = "src/test/resources/org/xmlcml/ami2/hindawiepmc"
    paths = [f"{base}/PMC2/fulltext.pdf", f"{base}/PMC1/fulltext.pdf", f"{base}/PMC1/scholarly.html",
             f"{base}/PMC3/sub/fulltext.pdf", "src/test/resources/org/xmlcml/ami2/bmc/x/fulltext.pdf"]
    picks = rd.select_hindawi(paths)
    assert [(p.path, p.dest) for p in picks] == [(f"{base}/PMC1/fulltext.pdf", "pdfs/PMC1.pdf"), (f"{base}/PMC2/fulltext.pdf", "pdfs/PMC2.pdf")]


def test_select_cellprofiler_images_capped_per_folder_without_masks() -> None:
    files = [(f"ExampleFly/images/{i:02d}.TIF", 1000) for i in range(5)] + [
        ("ExampleFly/images/nuclei_mask.png", 10), ("ExampleFly/pipeline.cppipe", 10),
        ("ExampleHuge/images/big.tif", rd.MAX_BYTES + 1), ("ExampleX/notimages/a.png", 10)]
    picks = rd.select_cellprofiler(files, per_folder=3)
    assert [p.dest for p in picks] == [f"images/cellprofiler/ExampleFly/images/{i:02d}.png" for i in range(3)]
    assert all(p.source == "cellprofiler" for p in picks)


def test_select_neubias_and_stardist() -> None:
    files = [("image_data/xy_8bit__nuclei.tif", 10), ("image_data/sub/a.jpg", 10), ("image_data/xy_labels.tif", 10),
             ("image_data/macro.ijm", 10), ("docs/figure.png", 10)]
    assert [p.dest for p in rd.select_neubias(files)] == ["images/neubias/sub/a.png", "images/neubias/xy_8bit__nuclei.png"]
    names = ["stardist/data/images/histo.jpg", "stardist/data/images/img2d.tif", "stardist/data/images/mask2d.tif",
             "stardist/data/images/img3d.tif", "stardist/models.py"]
    assert [p.dest for p in rd.select_stardist(names)] == ["images/stardist/histo.png", "images/stardist/img2d.png"]


def test_to_png8_stretches_16_bit_and_skips_stacks_and_tiny() -> None:
    import tifffile

    buf = io.BytesIO()
    tifffile.imwrite(buf, (np.arange(128 * 96, dtype=np.uint16).reshape(96, 128) * 3))
    png = rd.to_png8(buf.getvalue(), "a.tif")
    with Image.open(io.BytesIO(png)) as im:
        assert im.size == (128, 96) and np.asarray(im).dtype == np.uint8 and np.asarray(im).max() == 255
    stack = io.BytesIO()
    tifffile.imwrite(stack, np.zeros((10, 96, 128), dtype=np.uint8) + np.arange(128, dtype=np.uint8))
    assert rd.to_png8(stack.getvalue(), "s.tif") is None
    tiny = io.BytesIO()
    Image.fromarray(np.arange(32 * 32, dtype=np.uint8).reshape(32, 32)).save(tiny, format="PNG")
    assert rd.to_png8(tiny.getvalue(), "t.png") is None
