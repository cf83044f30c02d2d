"""edge_gate.sync."""
