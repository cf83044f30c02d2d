"""edge_gate.document."""
