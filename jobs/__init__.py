"""The only stage that wires the others together (on Ray) and hosts the click CLI."""
import scanner  # noqa: F401  first: keeps PyMuPDF's unused layout add-on unloaded in every process (see scanner)
