"""edge_gate.store."""

from edge_gate.store._audit import (
    AUDIT_DB_NAME,
    AuditEntry,
    AuditLog,
    AuditRecord,
    VerifyResult,
)

__all__ = ["AUDIT_DB_NAME", "AuditEntry", "AuditLog", "AuditRecord", "VerifyResult"]
