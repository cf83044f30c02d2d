"""edge_gate.fingerprint."""
