"""Stage 1: figures and panels out of PDFs and image files, with provenance."""
