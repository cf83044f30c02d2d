"""edge_gate.store: the gate's two SQLite stores.

``templates.db`` (enrolments, watchlist, template version) is written by
``edge-gate sync`` through :class:`TemplateStoreWriter` and read by the lane
daemon through :class:`TemplateStore`; templates are sealed at rest with the
gate's own key. ``audit.db`` is the lane's hash-chained audit log.
"""

from edge_gate.store._audit import (
    AUDIT_DB_NAME,
    AuditEntry,
    AuditLog,
    AuditRecord,
    RowsInLostFileError,
    VerifyResult,
)
from edge_gate.store._spool import AuditSpool, SpoolIntegrityError

__all__ = [
    "AUDIT_DB_NAME",
    "AuditEntry",
    "AuditLog",
    "AuditRecord",
    "AuditSpool",
    "RowsInLostFileError",
    "SpoolIntegrityError",
    "VerifyResult",
]

# Template store (templates.db), trusted time and keys.
from edge_gate.store._clock import TrustedClock, clock_is_trustworthy
from edge_gate.store._keys import (
    generate_key_file,
    load_key,
    resolve_key_path,
)
from edge_gate.store._records import (
    EYES,
    FINGERS,
    DocumentRecord,
    EnrolmentRecord,
    check_record,
    record_from_json,
    record_to_json,
)
from edge_gate.store._templates import (
    TEMPLATES_DB,
    Enrolment,
    TemplateStatus,
    TemplateStore,
)
from edge_gate.store._writer import TemplateStoreWriter, TemplateUpdate

__all__ += [
    "EYES",
    "FINGERS",
    "TEMPLATES_DB",
    "DocumentRecord",
    "Enrolment",
    "EnrolmentRecord",
    "TemplateStatus",
    "TemplateStore",
    "TemplateStoreWriter",
    "TemplateUpdate",
    "TrustedClock",
    "check_record",
    "clock_is_trustworthy",
    "generate_key_file",
    "load_key",
    "record_from_json",
    "record_to_json",
    "resolve_key_path",
]
