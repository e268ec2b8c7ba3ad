"""Data generators, alterations, losses, training loops and evaluation for the BTA model."""
