"""Stage 1: figures and panels out of PDFs and image files, with provenance."""
import sys

# PyMuPDF imports its optional layout add-on (`pymupdf_layout`, which PyMuPDF 2.0 installs with itself) at
# import time, and the add-on loads an ONNX model then: 0.5 s of CPU in every process that opens a PDF (the
# driver, each extraction worker, each recycled one). reusescan never uses it; marking it absent before
# PyMuPDF is first imported keeps it out of every process that imports this package (`jobs` does first).
sys.modules.setdefault("pymupdf.layout", None)  # type: ignore[arg-type]
