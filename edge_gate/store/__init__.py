"""edge_gate.store."""
