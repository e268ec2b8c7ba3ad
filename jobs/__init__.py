"""The only stage that wires the others together (on Ray) and hosts the click CLI."""
