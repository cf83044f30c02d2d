"""edge_gate.turnstile."""
