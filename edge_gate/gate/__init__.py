"""edge_gate.gate."""
