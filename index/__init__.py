"""Stage 3: the Parquet figure store, FAISS indexes, candidate pairs and reuse groups."""
