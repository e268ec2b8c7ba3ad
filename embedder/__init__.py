"""Stage 2: the BTA model (encoder, projector, similarity head) and batch inference."""
