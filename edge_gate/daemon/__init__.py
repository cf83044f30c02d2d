"""edge_gate.daemon."""
