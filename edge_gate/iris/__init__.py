"""edge_gate.iris."""
